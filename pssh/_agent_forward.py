"""SSH agent forwarding: serving the server's ``auth-agent@openssh.com`` channels.

With ``forward_ssh_agent=True`` every command channel asks the server for
agent forwarding (``auth-agent-req@openssh.com``). When a remote program then
talks to its ``$SSH_AUTH_SOCK``, sshd opens an ``auth-agent@openssh.com``
channel back to us. libssh2 1.11 accepts such a channel only when the session
has an AUTHAGENT callback, and hands the new channel to it from deep inside
whichever libssh2 call happened to read the open request. The callback
therefore does no I/O: it spawns a greenlet that relays agent messages
between the channel and a fresh connection to the local agent, one
connection per channel as OpenSSH does (the agent keeps per-connection state
such as session bindings).

Agent messages are length-prefixed requests each answered by one reply, so
the relay moves whole messages; it waits on the session socket through the
session's :class:`~pssh._hub.SocketWaiter` like every other channel user.
Connections to the local agent are capped per process (:func:`local_agent_slots`, also
taken by agent authentication): hundreds of hosts asking at once would otherwise exhaust
the agent's file descriptors.
"""
import ctypes
import logging
import os
import socket
import struct
import threading
import weakref
from typing import Optional

import gevent
import gevent.lock
import gevent.socket

from pssh._connect import call
from pssh._hub import DeadlineExceeded, WaiterClosed, deadline_after
from pssh._libssh2 import AUTHAGENT_CALLBACK, CALLBACK_AUTHAGENT, LIB, pointer

__all__ = ["AgentForwarder", "forwarding_unavailable", "local_agent_slots", "local_agent_socket",
           "MAX_AGENT_CONNECTIONS"]

logger = logging.getLogger("pssh.agent")

MAX_AGENT_CONNECTIONS = 64
MAX_MESSAGE = 256 * 1024  # the size limit OpenSSH's agent enforces
_LENGTH = struct.Struct(">I")
_CLOSE_SECONDS = 5

# Session pointer -> forwarder. The C callback only gets raw pointers. Weak: a forwarder
# lives as long as its client or an output of a command that asked for forwarding.
_FORWARDERS = weakref.WeakValueDictionary()
_THREAD_STATE = threading.local()


def forwarding_unavailable() -> Optional[str]:
    """Why agent forwarding cannot work in this process, or None."""
    if LIB is None:
        from pssh._libssh2 import unavailable_reason
        return unavailable_reason
    return None


def local_agent_slots():
    """The cap on connections to the local agent, shared by agent authentication and
    forwarding (a semaphore of this thread: gevent primitives belong to one hub)."""
    slots = getattr(_THREAD_STATE, "slots", None)
    if slots is None:
        slots = _THREAD_STATE.slots = gevent.lock.BoundedSemaphore(MAX_AGENT_CONNECTIONS)
    return slots


def _on_agent_channel(session_ptr, channel_ptr, _abstract):
    forwarder = _FORWARDERS.get(session_ptr)
    if forwarder is None or not channel_ptr:
        return
    forwarder.accept(channel_ptr)


_CALLBACK = AUTHAGENT_CALLBACK(_on_agent_channel)
_CALLBACK_ADDRESS = ctypes.cast(_CALLBACK, ctypes.c_void_p)


class _ChannelGone(Exception):
    """The agent channel reached EOF or failed; the relay ends."""


class AgentForwarder:
    """Relays the agent channels of one session to the local agent at ``socket_path``."""

    def __init__(self, host, port, session, waiter, socket_path, timeout=None):
        self.host = host
        self.port = port
        self.session = session
        self.waiter = waiter
        self.socket_path = socket_path
        self.timeout = timeout or 60
        self.served = 0
        self._relays = set()
        self._session_ptr = pointer(session)
        _FORWARDERS[self._session_ptr] = self
        LIB.session_callback_set2(self._session_ptr, CALLBACK_AUTHAGENT, _CALLBACK_ADDRESS)

    @property
    def active(self):
        """Number of agent channels being relayed now."""
        return len(self._relays)

    def accept(self, channel_ptr):
        """Called from the libssh2 callback: start relaying a new agent channel."""
        relay = gevent.spawn(self._relay, channel_ptr)
        self._relays.add(relay)
        relay.link(self._relays.discard)

    def close(self):
        """Stop accepting channels; relays end when the session's waiter closes."""
        if _FORWARDERS.get(self._session_ptr) is self:
            del _FORWARDERS[self._session_ptr]

    # relay ---------------------------------------------------------------

    def _relay(self, channel):
        slots = local_agent_slots()
        session_alive = True
        agent = None
        try:
            if not slots.acquire(timeout=self.timeout):
                logger.warning("[%s] agent forwarding: %d local agent connections busy for "
                               "%ss; channel refused", self.host, MAX_AGENT_CONNECTIONS,
                               self.timeout)
                return
            try:
                agent = self._connect_agent()
                scratch = ctypes.create_string_buffer(16384)
                while True:
                    request = self._read_message(channel, scratch)
                    if request is None:
                        break
                    agent.sendall(request)
                    self._write(channel, _recv_message(agent))
                self.served += 1
            finally:
                slots.release()
        except WaiterClosed:
            session_alive = False
        except (OSError, _ChannelGone, DeadlineExceeded) as exc:
            logger.warning("[%s] agent forwarding to %s failed: %s", self.host,
                           self.socket_path, exc or type(exc).__name__)
        finally:
            if agent is not None:
                agent.close()
            if session_alive:
                self._free(channel)

    def _connect_agent(self):
        agent = gevent.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        agent.settimeout(self.timeout)
        try:
            agent.connect(self.socket_path)
        except OSError:
            agent.close()
            raise
        return agent

    def _read_exact(self, channel, size, scratch):
        data = bytearray()
        while len(data) < size:
            want = min(size - len(data), len(scratch))
            rc = call(self.session, self.waiter, LIB.channel_read_ex,
                      (channel, 0, scratch, want), None)
            if rc > 0:
                data += ctypes.string_at(scratch, rc)
            elif rc == 0:
                if data:
                    raise _ChannelGone("channel ended inside a message")
                return None
            else:
                raise _ChannelGone("reading the agent channel failed (libssh2 error %d)" % rc)
        return bytes(data)

    def _read_message(self, channel, scratch):
        header = self._read_exact(channel, _LENGTH.size, scratch)
        if header is None:
            return None
        (length,) = _LENGTH.unpack(header)
        if length > MAX_MESSAGE:
            raise _ChannelGone("agent request of %d bytes is over the limit" % length)
        body = self._read_exact(channel, length, scratch)
        if body is None:
            raise _ChannelGone("channel ended inside a message")
        return header + body

    def _write(self, channel, data):
        deadline = deadline_after(self.timeout)
        while data:
            # The same bytes object is passed again on EAGAIN: libssh2 resumes a
            # partly sent packet only for the buffer it started with.
            rc = call(self.session, self.waiter, LIB.channel_write_ex,
                      (channel, 0, data, len(data)), deadline)
            if rc < 0:
                raise _ChannelGone("writing the agent channel failed (libssh2 error %d)" % rc)
            data = data[rc:]

    def _free(self, channel):
        try:
            call(self.session, self.waiter, LIB.channel_free, (channel,),
                 deadline_after(_CLOSE_SECONDS))
        except (DeadlineExceeded, WaiterClosed):
            # libssh2 frees what is left of the channel with the session.
            pass


def _recv_exact(sock, size):
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise _ChannelGone("the local agent closed the connection")
        data += chunk
    return bytes(data)


def _recv_message(sock):
    header = _recv_exact(sock, _LENGTH.size)
    (length,) = _LENGTH.unpack(header)
    if length > MAX_MESSAGE:
        raise _ChannelGone("agent reply of %d bytes is over the limit" % length)
    return header + _recv_exact(sock, length)


def local_agent_socket():
    """The local agent's socket path from ``$SSH_AUTH_SOCK``, or None."""
    return os.environ.get("SSH_AUTH_SOCK") or None
