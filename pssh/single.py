"""SSHClient: one SSH connection to one host, its channels, commands and shells.

Ownership runs output → channel → session → socket: a :class:`HostOutput` holds its client
and its :class:`~pssh.connection.channel.Channel` (which owns the libssh2 channel and its
pump), a channel holds its session, and the session holds the socket. Closing goes in that
order and the socket's file descriptor is released only together with the libssh2 session, so
libssh2 never writes to a descriptor that was reused. Every libssh2 call goes through the
connection's :class:`~pssh.core.calls.Caller`.
"""
import copy
import functools
import logging
import os
import warnings
import weakref
from time import monotonic

import gevent
from ssh2.exceptions import ChannelRequestDenied, SSH2Error

from pssh.connection.agent_forward import (
    AgentForwarder, check_forwarding_request, local_agent_socket)
from pssh.connection import connect as _connect
from pssh.connection.channel import Channel
from pssh.core import calls
from pssh.core.calls import Caller
from pssh.core.hub import DeadlineExceeded, WaiterClosed, deadline_after
from pssh.constants import DEFAULT_CONNECT_TIMEOUT, DEFAULT_RETRIES, RETRY_DELAY
from pssh.exceptions import ConnectionLostError, SessionError, Timeout
from pssh.output import (
    DEFAULT_DECODE_ERRORS, DEFAULT_MAX_UNREAD_OUTPUT, BufferData, HostOutput, HostOutputBuffers,
    Stdin, host_logger)
from pssh.shell import InteractiveShell
from pssh.connection.settings import NAMES, ConnectSettings
from pssh.connection.tunnel import open_tunnel
from pssh.transfer.client import TransferMixin

__all__ = ["SSHClient", "logger"]

logger = logging.getLogger(__name__)


class SSHClient(TransferMixin):
    """One authenticated SSH connection; see README.rst for the options."""

    IDENTITIES = tuple(os.path.expanduser("~/.ssh/%s" % name) for name in (
        "id_rsa", "id_dsa", "identity", "id_ecdsa", "id_ed25519"))
    DEFAULT_CONNECT_TIMEOUT = DEFAULT_CONNECT_TIMEOUT

    def __init__(self, host, user=None, password=None, port=None, pkey=None, alias=None,
                 num_retries=DEFAULT_RETRIES, retry_delay=RETRY_DELAY, allow_agent=True,
                 timeout=None, forward_ssh_agent=False, proxy_host=None, proxy_port=None,
                 proxy_pkey=None, proxy_user=None, proxy_password=None,
                 _auth_thread_pool=True, keepalive_seconds=60, identity_auth=True,
                 ipv6_only=False, compress=False, keyboard_interactive=False,
                 host_key_policy=None, known_hosts=None, ssh_config=None, _options=None,
                 proxy_jump=None, agent=None, cert_file=None, _proxy_hop=None,
                 max_unread_output=DEFAULT_MAX_UNREAD_OUTPUT, _settings=None):
        if _settings is None:
            if forward_ssh_agent:
                check_forwarding_request(agent)
            given = {name: value for name, value in locals().items() if name in NAMES}
            given.update(_options or ())
            _settings = ConnectSettings.build(
                host, given, ssh_config=ssh_config, proxy_hop=_proxy_hop,
                identities=self.IDENTITIES, default_connect_timeout=self.DEFAULT_CONNECT_TIMEOUT)
        self.settings = _settings
        # The resolved options stay readable as attributes, as in 2.x.
        for name in NAMES:
            setattr(self, name, getattr(_settings, name))
        self.host = host
        self.session = None
        self.sock = None
        self._waiter = None
        self.caller = None
        self._keepalive = None
        self._channels = {}
        self._closed = False
        self._agent_forwarder = None
        self._agent_forwarding_granted = False
        self.max_unread_output = max_unread_output or None
        self._open_connection(self.settings)

    # connection -----------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran (or the connection was dropped by it)."""
        return self._closed

    @property
    def waiter(self):
        """The :class:`~pssh.core.hub.SocketWaiter` of this connection's socket, shared by
        every user of the session (channels, SFTP, tunnels through this host)."""
        return self._waiter

    def _is_closed(self):
        return self._closed

    def _open_connection(self, settings):
        open_proxied = None
        if settings.proxy_hop is not None:
            # The bastion is an SSHClient too: tunnel gets this class as its client factory.
            open_proxied = functools.partial(open_tunnel, settings,
                                             client_factory=_bastion_client)
        self.sock, self._waiter, self.session = _connect.connect(settings, open_proxied)
        self.caller = Caller(settings.host, settings.port, self.session, self._waiter,
                             settings.op_timeout, self._is_closed)
        self.configure_keepalive()
        if self.forward_ssh_agent:
            self._start_agent_forwarding()

    def _connect(self, host: str = None, port: int = None, retries: int = 1) -> None:
        """2.x internal: (re)connect to ``host:port`` (default: this client's), ``retries``
        being the attempt to start at (of ``num_retries``). pssh connects, handshakes and
        authenticates in one step, so this replaces the current connection."""
        settings = self.settings
        if host is not None or port is not None or retries != 1:
            settings = copy.copy(settings)
            if host is not None and host != settings.host:
                settings.host, settings.hostname = host, None
            settings.port = port or settings.port
            settings.num_retries = max(1, (settings.num_retries or 1) - max(retries, 1) + 1)
        if self.session is not None:
            self.close()
            self._closed = False
            self._channels = {}
        self._open_connection(settings)

    def _disconnect(self) -> None:
        """2.x internal: end the session and close the socket (pssh: :meth:`close`)."""
        self.close()

    def _start_agent_forwarding(self):
        self._agent_forwarding_granted = False
        path = local_agent_socket()
        if path is None:
            logger.warning("[%s] forward_ssh_agent: SSH_AUTH_SOCK is not set, so there is no "
                           "local agent to forward", self.host)
            return
        self._agent_forwarder = AgentForwarder(self.host, self.port, self.session,
                                               self._waiter, path,
                                               self.settings.agent_forward_timeout)

    def _request_agent_forwarding(self, channel, deadline):
        try:
            self.caller.call(channel.request_auth_agent, deadline=deadline,
                             what="Agent forwarding request")
        except SessionError as exc:
            if not isinstance(exc.cause, ChannelRequestDenied):
                raise
            if self._agent_forwarding_granted:
                # sshd grants one request per connection; its agent socket then serves
                # every later command of the connection, so this refusal loses nothing.
                logger.debug("[%s] agent forwarding already set up on this connection",
                             self.host)
                return
            # As OpenSSH does: the command still runs, only without an agent.
            logger.warning("[%s] the server refused agent forwarding", self.host)
        else:
            self._agent_forwarding_granted = True

    def auth(self):
        """Authenticate the connected session again with the configured methods."""
        deadline = deadline_after(self.settings.connect_timeout)
        _connect.authenticate(self.settings, self.session, self._waiter, deadline)

    def configure_keepalive(self):
        """Start libssh2 keepalives every ``keepalive_seconds`` (0/None: off)."""
        if not self.keepalive_seconds:
            return
        self.session.keepalive_config(False, int(self.keepalive_seconds))
        loop = gevent.get_hub().loop
        timer = loop.timer(self.keepalive_seconds, self.keepalive_seconds)
        # The timer must not keep the client alive: it holds a weak reference.
        timer.start(_send_keepalive, weakref.ref(self))
        self._keepalive = timer

    def eagain(self, func, *args, **kwargs):
        """2.x helper: ``func(*args, **kwargs)`` retried on EAGAIN, waiting on the socket
        (bounded by ``timeout``); returns its result."""
        if kwargs:
            func, args = functools.partial(func, *args, **kwargs), ()
        return self.caller.call(func, *args, what=getattr(func, "__name__", "operation"))

    def eagain_write(self, write_func, data) -> None:
        """2.x helper: write all of ``data`` with ``write_func`` (a libssh2 write returning
        ``(rc, bytes_written)``), waiting on the socket while it would block."""
        data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        deadline = deadline_after(self.settings.op_timeout)
        done = [0]

        def write_once():
            # ssh2-python's write may take part of the data and then report EAGAIN with
            # the count taken; it accepts bytes only (no memoryview).
            rc, written = write_func(data[done[0]:] if done[0] else data)
            done[0] += written
            return rc
        while done[0] < len(data):
            self.caller.check(self.caller.call(write_once, deadline=deadline, what="Writing"),
                              "Writing")

    def poll(self, timeout=None) -> None:
        """2.x helper: wait (at most ``timeout`` s) until the socket is ready in the
        directions libssh2 is blocked on; returns at once when it is blocked on none."""
        directions = self.session.block_directions()
        if not directions:
            return
        try:
            self._waiter.wait(directions, deadline_after(timeout))
        except DeadlineExceeded:
            pass

    def read_output(self, stdout_buffer, timeout=None):
        """2.x helper: the lines (bytes, without line ends) of ``stdout_buffer`` (an iterable
        of byte chunks such as :class:`pssh.clients.reader.ConcurrentRWBuffer`) until its end;
        :class:`Timeout` after ``timeout`` s."""
        return self._byte_lines(stdout_buffer, timeout)

    def read_stderr(self, stderr_buffer, timeout=None):
        """2.x helper: as :meth:`read_output`, for the standard error buffer."""
        return self._byte_lines(stderr_buffer, timeout)

    def _byte_lines(self, chunks, timeout):
        error = Timeout("Timeout of %s s reading output of host %s", timeout, self.host,
                        host=self.host, port=self.port)
        deadline = deadline_after(timeout)
        chunks = iter(chunks)
        rest = b""
        while True:
            # The timer runs only while waiting for a chunk, never while the caller holds
            # a line: it must not fire into unrelated code.
            remaining = None if deadline is None else deadline - monotonic()
            if remaining is not None and remaining <= 0:
                raise error
            with gevent.Timeout(remaining, error):
                chunk = next(chunks, None)
            if chunk is None:
                break
            lines = (rest + bytes(chunk)).split(b"\n")
            rest = lines.pop()
            for line in lines:
                yield line[:-1] if line.endswith(b"\r") else line
        if rest:
            yield rest

    # channels and commands ----------------------------------------------

    def _start_deadline(self):
        # Starting a command is bounded even without a timeout: a server that never answers
        # a channel request must not hold the caller forever.
        return deadline_after(self.settings.connect_timeout)

    def open_session(self):
        """A new session channel (``ssh2.channel.Channel``)."""
        deadline = self._start_deadline()
        return self.caller.call(self.session.open_session, deadline=deadline,
                                what="Opening a channel", exclusive=True)

    def execute(self, cmd, use_pty=False, channel=None):
        """Deprecated: run ``cmd`` on a (new) channel and return the channel."""
        warnings.warn("SSHClient.execute is deprecated, use run_command", DeprecationWarning,
                      stacklevel=2)
        channel = channel or self.open_session()
        if use_pty:
            self.caller.call(channel.pty, what="PTY request")
        self.caller.call(channel.execute, cmd, what="Command execution")
        return channel

    def _build_command(self, command, sudo, user, shell):
        if not (sudo or user or shell):
            return command
        shell = shell or "$SHELL -c"
        wrapped = "%s '%s'" % (shell, command)
        if user:
            return "sudo -u %s -S %s" % (user, wrapped)
        if sudo:
            return "sudo -S %s" % (wrapped,)
        return wrapped

    def run_command(self, command, sudo=False, user=None, use_pty=False, shell=None,
                    encoding="utf-8", timeout=None, read_timeout=None, idle_timeout=None):
        """Start ``command`` and return its :class:`HostOutput` without waiting for it."""
        fqc = self._build_command(command, sudo, user, shell).encode(encoding)
        deadline = self._start_deadline()
        channel = self.caller.call(self.session.open_session, deadline=deadline,
                                   what="Opening a channel", exclusive=True)
        if self._agent_forwarder is not None:
            self._request_agent_forwarding(channel, deadline)
        if use_pty:
            self.caller.call(channel.pty, deadline=deadline, what="PTY request")
        self.caller.call(channel.execute, fqc, deadline=deadline, what="Command execution")
        return self.open_output(channel, encoding, read_timeout or timeout, idle_timeout, fqc)

    def open_output(self, channel, encoding: str = "utf-8", read_timeout=None,
                    idle_timeout=None, fully_qualified_command=None) -> HostOutput:
        """The :class:`HostOutput` of ``channel`` (an ``ssh2.channel.Channel`` that runs a
        command or a shell), reading it from now on."""
        io = Channel(channel, self.caller, self.settings.connect_timeout, self._agent_forwarder,
                     self.max_unread_output).start()
        self._channels[id(channel)] = io
        state = io.state
        buffers = HostOutputBuffers(BufferData(state.pump, state.stdout),
                                    BufferData(state.pump, state.stderr))
        output = HostOutput(self.host, channel, Stdin(io, self, encoding), self,
                            alias=self.alias, encoding=encoding, read_timeout=read_timeout,
                            buffers=buffers, fully_qualified_command=fully_qualified_command,
                            idle_timeout=idle_timeout, decode_errors=DEFAULT_DECODE_ERRORS,
                            _io=io)
        weakref.finalize(output, _forget_channel, self._channels, id(channel))
        return output

    def _channel_io(self, channel):
        return self._channels.get(id(channel))

    def wait_finished(self, host_output, timeout=None):
        """Wait until the command of ``host_output`` finished: EOF, exit status, channel closed."""
        if not isinstance(host_output, HostOutput):
            raise ValueError("%s is not a HostOutput" % (host_output,))
        io = host_output.channel_io
        if host_output.channel is None or io is None:
            return
        io.wait_finished(timeout)

    def finished(self, channel):
        """True once the command on ``channel`` has finished (None without a channel)."""
        if channel is None:
            return None
        io = self._channel_io(channel)
        if io is None:
            return channel.eof()
        return io.finished

    def get_exit_status(self, channel):
        """Exit status of the command on ``channel``; None until it finished."""
        if channel is None:
            return None
        io = self._channel_io(channel)
        if io is None:
            return channel.get_exit_status() if channel.eof() else None
        return io.exit_code

    def close_channel(self, channel):
        """Close ``channel`` (with a PTY this ends the remote command)."""
        io = self._channel_io(channel)
        if io is not None:
            io.close()
        else:
            self.caller.call(channel.close, what="Closing the channel")

    def open_shell(self, encoding="utf-8", read_timeout=None):
        """An :class:`InteractiveShell` on a new channel (no PTY)."""
        deadline = self._start_deadline()
        channel = self.caller.call(self.session.open_session, deadline=deadline,
                                   what="Opening a channel", exclusive=True)
        if self._agent_forwarder is not None:
            self._request_agent_forwarding(channel, deadline)
        self.caller.call(channel.shell, deadline=deadline, what="Starting a shell")
        output = self.open_output(channel, encoding, read_timeout)
        return InteractiveShell(channel, self, encoding=encoding, read_timeout=read_timeout,
                                output=output)

    def read_output_buffer(self, output_buffer, prefix=None, callback=None, callback_args=None,
                           encoding="utf-8"):
        """Decode, log and yield lines of an iterable of raw lines (2.x helper)."""
        for line in output_buffer:
            text = line.decode(encoding, DEFAULT_DECODE_ERRORS) if isinstance(line, bytes) \
                else line
            host_logger.info("[%s]%s\t%s", self.host, prefix or "", text)
            yield text
        if callback is not None:
            callback(*(callback_args or ()))

    # lifecycle ------------------------------------------------------------

    def disconnect(self):
        """Deprecated no-op kept for 2.x compatibility; use :meth:`close`."""
        warnings.warn("SSHClient.disconnect is a no-op; use close() or a with block",
                      DeprecationWarning, stacklevel=2)

    def close(self):
        """Close every channel, then the session, then the socket."""
        if self._closed or self.session is None:
            self._closed = True
            return
        self._closed = True
        if self._keepalive is not None:
            self._keepalive.close()
            self._keepalive = None
        if self._agent_forwarder is not None:
            self._agent_forwarder.close()
        for io in list(self._channels.values()):
            io.wake()
        session, waiter = self.session, self._waiter
        try:
            calls.call(session, waiter, session.disconnect, (),
                       deadline_after(self.settings.disconnect_timeout), exclusive=True)
        except (SSH2Error, DeadlineExceeded, WaiterClosed):
            pass  # the socket goes anyway; its end is all that is left to do
        waiter.close(ConnectionLostError("Client for host %s:%s was closed", self.host,
                                         self.port, host=self.host, port=self.port))
        _connect._discard(self.sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        timer = getattr(self, "_keepalive", None)
        if timer is not None:
            timer.close()


def _bastion_client(settings):
    return SSHClient(settings.host, _settings=settings)


def _send_keepalive(client_ref):
    client = client_ref()
    if client is None or client.closed or client.waiter.send_backlog:
        # libssh2 sends a keepalive once and never retries it: a keepalive cut short by a
        # full socket would leave a half-sent packet that fails every later send of the
        # session. So it goes out only when the socket has nothing queued.
        return
    try:
        client.session.keepalive_send()
    except SSH2Error:
        pass


def _forget_channel(channels, channel_id):
    # The HostOutput is gone: nobody can read this command's output any more.
    io = channels.pop(channel_id, None)
    if io is not None:
        io.orphan()


