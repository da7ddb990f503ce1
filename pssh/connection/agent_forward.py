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
A remote host decides how many agent channels it opens and how long it keeps them, so
everything it can hold is bounded:

* at most :data:`MAX_FORWARDED_CHANNELS` agent channels per connection at once; one more
  is closed at once, unanswered. (Unsetting the callback would make libssh2 1.11.1 answer
  with an open failure, but its packet has a stray trailing byte and OpenSSH drops the whole
  connection for it.)
* a channel with no complete request for ``idle_timeout`` seconds
  (:data:`FORWARD_IDLE_SECONDS`) is closed;
* a channel connects to the local agent only with its first complete request, taking one
  of :data:`MAX_FORWARDED_AGENT_CONNECTIONS` process-wide forwarding slots
  (:func:`forwarding_agent_slots`) until it closes;
* agent authentication has its own :data:`MAX_AGENT_CONNECTIONS` slots
  (:func:`local_agent_slots`), so no amount of forwarding makes a handshake wait;
* a message over 256 KiB is refused in either direction before its body is read;
* only requests listing identities, signing and extensions (:data:`FORWARDED_REQUESTS`)
  reach the local agent; adding, removing or locking keys is answered with a failure.

Both slot pools are counted across every thread of the process (:class:`ProcessSlots`):
hundreds of hosts asking at once would otherwise exhaust the agent's file descriptors.
"""
import collections
import ctypes
import logging
import os
import socket
import struct
import weakref
from typing import Optional

import gevent
import gevent.event
import gevent.socket
from gevent.monkey import get_original

from pssh.core.calls import call
from pssh.core.hub import DeadlineExceeded, Doorbell, WaiterClosed, deadline_after
from pssh.exceptions import InvalidAPIUseError
from pssh.core import libssh2
from pssh.core.libssh2 import AUTHAGENT_CALLBACK, CALLBACK_AUTHAGENT, LIB, pointer

__all__ = ["AgentForwarder", "ProcessSlots", "check_forwarding_request", "forwarding_unavailable",
           "local_agent_slots",
           "forwarding_agent_slots", "local_agent_socket", "MAX_AGENT_CONNECTIONS",
           "MAX_FORWARDED_AGENT_CONNECTIONS", "MAX_FORWARDED_CHANNELS", "FORWARD_IDLE_SECONDS",
           "FORWARDED_REQUESTS"]

logger = logging.getLogger(__name__)

MAX_AGENT_CONNECTIONS = 64             # authentication, per process
MAX_FORWARDED_AGENT_CONNECTIONS = 64   # forwarding, per process
MAX_FORWARDED_CHANNELS = 8             # forwarding, per connection
FORWARD_IDLE_SECONDS = 60
# Waits on the local agent and for a forwarding slot when the client has no timeout.
AGENT_REQUEST_TIMEOUT = 60
MAX_MESSAGE = 256 * 1024  # the size limit OpenSSH's agent enforces
_LENGTH = struct.Struct(">I")
# Requests a remote host may make of the local agent: list identities, sign, extensions
# (OpenSSH's session-bind among them). Adding, removing and locking keys would let one host
# empty or lock the agent every other connection of the run authenticates with.
_REQUEST_IDENTITIES, _SIGN_REQUEST, _EXTENSION = 11, 13, 27
FORWARDED_REQUESTS = frozenset((_REQUEST_IDENTITIES, _SIGN_REQUEST, _EXTENSION))
_REQUEST_NAMES = {17: "add identity", 18: "remove identity", 19: "remove all identities",
                  20: "add smartcard key", 21: "remove smartcard key", 22: "lock",
                  23: "unlock", 25: "add constrained identity",
                  26: "add constrained smartcard key"}
_AGENT_FAILURE = _LENGTH.pack(1) + bytes((5,))  # SSH_AGENT_FAILURE
_CLOSE_SECONDS = 5

# Session pointer -> forwarder. The C callback only gets raw pointers. Weak: a forwarder
# lives as long as its client or an output of a command that asked for forwarding.
_FORWARDERS = weakref.WeakValueDictionary()


def forwarding_unavailable() -> Optional[str]:
    """Why agent forwarding cannot work in this process, or None."""
    if LIB is None:
        return libssh2.unavailable_reason
    return None


def check_forwarding_request(agent) -> None:
    """Raise InvalidAPIUseError when ``forward_ssh_agent=True`` cannot be honoured."""
    if agent is not None:
        raise InvalidAPIUseError(
            "forward_ssh_agent=True forwards the system agent ($SSH_AUTH_SOCK); it cannot "
            "forward the keys of a programmatic agent= (pssh.agent.SSHAgent)")
    reason = forwarding_unavailable()
    if reason:
        raise InvalidAPIUseError("forward_ssh_agent=True is unavailable: %s" % reason)


class ProcessSlots:
    """A counting semaphore shared by every thread of the process.

    gevent's own locks wait on one hub, so a semaphore per thread would multiply the cap
    by the number of threads running clients. Here the count lives under a thread lock;
    a waiter blocks only its greenlet, on its own hub, and is granted a slot in FIFO order
    through an async watcher of its hub's loop (the one loop call another thread may make).
    """

    def __init__(self, size: int):
        self.size = size
        # a real thread lock even if the application monkey-patched threading
        self._lock = get_original("_thread", "allocate_lock")()
        self._free = size
        self._queue = collections.deque()

    @property
    def in_use(self) -> int:
        """Slots held now."""
        return self.size - self._free

    def acquire(self, timeout: Optional[float] = None) -> bool:
        """Take a slot, waiting at most ``timeout`` seconds (None: no limit); False if none
        came free in time."""
        with self._lock:
            if self._free and not self._queue:
                self._free -= 1
                return True
            ticket = _Ticket()
            self._queue.append(ticket)
        try:
            ticket.wait(timeout)
        except BaseException:
            if self._withdraw(ticket):
                self.release()
            raise
        return self._withdraw(ticket)

    def release(self) -> None:
        """Give a slot back: to the longest waiter if there is one."""
        with self._lock:
            if self._queue:
                ticket = self._queue.popleft()
                ticket.granted = True
                ticket.wake()
                return
            if self._free >= self.size:
                raise ValueError("ProcessSlots released more often than acquired")
            self._free += 1

    def _withdraw(self, ticket):
        with self._lock:
            if not ticket.granted:
                self._queue.remove(ticket)
        ticket.close()
        return ticket.granted


class _Ticket:
    """One waiter of :class:`ProcessSlots`, woken on the hub of the thread that waits."""

    __slots__ = ("granted", "_event", "_doorbell")

    def __init__(self):
        self.granted = False
        self._event = gevent.event.Event()
        self._doorbell = Doorbell(self._event.set)

    def wait(self, timeout):
        self._event.wait(timeout)

    def wake(self):
        self._doorbell.ring()

    def close(self):
        self._doorbell.close()


_AUTH_SLOTS = ProcessSlots(MAX_AGENT_CONNECTIONS)
_FORWARD_SLOTS = ProcessSlots(MAX_FORWARDED_AGENT_CONNECTIONS)


def local_agent_slots() -> ProcessSlots:
    """The process-wide cap on local agent connections used by agent authentication."""
    return _AUTH_SLOTS


def forwarding_agent_slots() -> ProcessSlots:
    """The process-wide cap on local agent connections relaying forwarded agent channels,
    apart from authentication's so forwarding can never make a handshake wait."""
    return _FORWARD_SLOTS


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
    """Relays the agent channels of one session to the local agent at ``socket_path``.

    ``max_channels`` and ``idle_timeout`` bound what the remote host can hold open (see the
    module notes); ``timeout`` bounds waiting for a forwarding slot, the local agent and
    each reply sent to the channel.
    """

    def __init__(self, host, port, session, waiter, socket_path, timeout=None,
                 max_channels=MAX_FORWARDED_CHANNELS, idle_timeout=FORWARD_IDLE_SECONDS):
        self.host = host
        self.port = port
        self.session = session
        self.waiter = waiter
        self.socket_path = socket_path
        self.timeout = timeout or AGENT_REQUEST_TIMEOUT
        self.max_channels = max_channels
        self.idle_timeout = idle_timeout
        self.served = 0
        self.refused = 0   # channels closed over the cap
        self.rejected = 0  # requests answered with a failure, never forwarded
        self._relays = set()
        self._session_ptr = pointer(session)
        _FORWARDERS[self._session_ptr] = self
        LIB.session_callback_set2(self._session_ptr, CALLBACK_AUTHAGENT, _CALLBACK_ADDRESS)

    @property
    def active(self):
        """Number of agent channels being relayed now."""
        return len(self._relays)

    def accept(self, channel_ptr):
        """Called from the libssh2 callback: relay a new agent channel, or close it at once
        when this connection is at its cap."""
        if len(self._relays) >= self.max_channels:
            self.refused += 1
            # Once per connection at WARNING: the remote host chooses how often to try.
            log = logger.warning if self.refused == 1 else logger.debug
            log("[%s] agent forwarding: %d agent channels open, the cap per connection; "
                "one more closed unanswered", self.host, len(self._relays))
            gevent.spawn(self._free, channel_ptr)
            return
        relay = gevent.spawn(self._relay, channel_ptr)
        self._relays.add(relay)
        relay.link(self._relays.discard)

    def close(self):
        """Stop accepting channels; relays end when the session's waiter closes."""
        if _FORWARDERS.get(self._session_ptr) is self:
            del _FORWARDERS[self._session_ptr]

    # relay ---------------------------------------------------------------

    def _relay(self, channel):
        slots = forwarding_agent_slots()
        session_alive = True
        holds_slot = False
        agent = None
        try:
            scratch = ctypes.create_string_buffer(16384)
            while True:
                request = self._read_message(channel, scratch,
                                             deadline_after(self.idle_timeout))
                if request is None:
                    break
                if not _forwardable(request):
                    self._refuse_request(request)
                    self._write(channel, _AGENT_FAILURE)
                    continue
                if agent is None:
                    # Taken at the first complete request: a channel that never sends one
                    # holds nothing but its place under this connection's cap.
                    if not slots.acquire(timeout=self.timeout):
                        logger.warning("[%s] agent forwarding: %d local agent connections "
                                       "busy for %ss; channel refused", self.host,
                                       slots.size, self.timeout)
                        return
                    holds_slot = True
                    agent = self._connect_agent()
                agent.sendall(request)
                self._write(channel, _recv_message(agent))
            self.served += 1
        except WaiterClosed:
            session_alive = False
        except (OSError, _ChannelGone, DeadlineExceeded) as exc:
            logger.warning("[%s] agent forwarding to %s failed: %s", self.host,
                           self.socket_path, exc or type(exc).__name__)
        finally:
            if agent is not None:
                agent.close()
            if holds_slot:
                slots.release()
            if session_alive:
                self._free(channel)

    def _refuse_request(self, request):
        kind = request[_LENGTH.size] if len(request) > _LENGTH.size else None
        # Once per connection at WARNING: the remote host chooses how often to ask.
        log = logger.debug if self.rejected else logger.warning
        self.rejected += 1
        log("[%s] agent forwarding: remote request %s refused (only identity "
                       "listing, signing and extensions are forwarded)", self.host,
                       _REQUEST_NAMES.get(kind, "of type %s" % kind))

    def _connect_agent(self):
        agent = gevent.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        agent.settimeout(self.timeout)
        try:
            agent.connect(self.socket_path)
        except OSError:
            agent.close()
            raise
        return agent

    def _read_exact(self, channel, size, scratch, deadline):
        data = bytearray()
        while len(data) < size:
            want = min(size - len(data), len(scratch))
            try:
                rc = call(self.session, self.waiter, LIB.channel_read_ex,
                          (channel, 0, scratch, want), deadline)
            except DeadlineExceeded:
                raise _ChannelGone("no complete agent request within %ss; channel closed"
                                   % self.idle_timeout) from None
            if rc > 0:
                data += ctypes.string_at(scratch, rc)
            elif rc == 0:
                if data:
                    raise _ChannelGone("channel ended inside a message")
                return None
            else:
                raise _ChannelGone("reading the agent channel failed (libssh2 error %d)" % rc)
        return bytes(data)

    def _read_message(self, channel, scratch, deadline):
        header = self._read_exact(channel, _LENGTH.size, scratch, deadline)
        if header is None:
            return None
        (length,) = _LENGTH.unpack(header)
        if length > MAX_MESSAGE:
            raise _ChannelGone("agent request of %d bytes is over the limit" % length)
        body = self._read_exact(channel, length, scratch, deadline)
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


def _forwardable(request):
    return len(request) > _LENGTH.size and request[_LENGTH.size] in FORWARDED_REQUESTS


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
