"""The exception tree of pssh.

Every error raised by the library derives from :class:`PSSHError` and, where
one fits, from a builtin as well (``ConnectionError``, ``TimeoutError``), so
that generic handlers keep working. The positional ``args`` keep the layouts
of parallel-ssh 2.x (a ``%``-format string followed by its values); the
structured attributes ``host``, ``port`` and ``cause`` carry the same facts
for programs.
"""
import builtins

__all__ = [
    "PSSHError", "NoIPv6AddressFoundError", "UnknownHostError", "UnknownHostException",
    "ConnectionError", "ConnectionErrorException", "ConnectionRefusedError",
    "AuthenticationError", "AuthenticationException", "SSHError", "SSHException",
    "HostArgumentError", "HostArgumentException", "SessionError", "HandshakeError",
    "ConnectionLostError", "SFTPError", "SFTPIOError", "ProxyError", "Timeout",
    "SCPError", "PKeyFileError", "ShellError", "HostConfigError", "InvalidAPIUseError",
    "HostKeyError", "ResourceLimitError", "UnsafeRemotePathError",
]


class PSSHError(Exception):
    """Base of all pssh errors.

    ``str()`` renders ``args[0] % args[1:]`` when the first argument is a
    format string, which is how every raise site in pssh builds its message.
    """

    host = None
    port = None
    cause = None

    def __init__(self, *args, host=None, port=None, cause=None):
        super().__init__(*args)
        if host is not None:
            self.host = host
        if port is not None:
            self.port = port
        if cause is not None:
            self.cause = cause
            self.__cause__ = cause

    def __str__(self):
        args = self.args
        if len(args) >= 2 and isinstance(args[0], str):
            try:
                return args[0] % args[1:]
            except (TypeError, ValueError):
                # Extra structured args (e.g. join's finished/unfinished lists)
                # follow the values the format string names.
                wanted = args[0].count("%") - 2 * args[0].count("%%")
                try:
                    return args[0] % args[1:1 + wanted]
                except (TypeError, ValueError):
                    pass
        if len(args) == 1:
            return str(args[0])
        return Exception.__str__(self)

    def __reduce__(self):
        # Attributes set after construction (HostKeyError.reason, ...) travel as state, so
        # that an error pickled in a shard process arrives whole.
        return (_rebuild, (type(self), self.args, self.host, self.port, self.cause),
                self.__dict__ or None)


def _rebuild(cls, args, host, port, cause):
    return cls(*args, host=host, port=port, cause=cause)


class _OSErrorMixin:
    # OSError's constructor reads args[0] as errno; ours are format strings,
    # so restore the real meaning of errno/strerror after construction.
    def __init__(self, *args, host=None, port=None, cause=None):
        PSSHError.__init__(self, *args, host=host, port=port, cause=cause)
        self.args = args
        self.errno = getattr(cause, "errno", None)
        self.strerror = str(self)

    __str__ = PSSHError.__str__


class NoIPv6AddressFoundError(PSSHError):
    """``ipv6_only`` was requested and the host has no IPv6 address."""


class UnknownHostError(PSSHError):
    """The host name could not be resolved."""


class ConnectionError(_OSErrorMixin, PSSHError, builtins.ConnectionError):
    """The TCP connection could not be made or was lost."""


class ConnectionRefusedError(ConnectionError, builtins.ConnectionRefusedError):
    """Every address of the host refused the connection (never retried).

    ``args`` are 2.x's ``(errno, strerror, host, port)``: the socket's error with the host
    appended.
    """

    def __str__(self):
        args = self.args
        if len(args) == 4 and isinstance(args[0], int):
            return "Connection refused by host %s:%s - %s" % (args[2], args[3], args[1])
        return ConnectionError.__str__(self)


class ConnectionLostError(ConnectionError):
    """An established SSH connection broke (server died, socket closed)."""


class AuthenticationError(PSSHError):
    """No authentication method succeeded."""


class SSHError(PSSHError):
    """Generic SSH protocol error."""


class HostArgumentError(PSSHError):
    """Fewer ``host_args``/``copy_args`` than hosts."""


class SessionError(PSSHError):
    """Opening or using an SSH session or channel failed."""


class HandshakeError(SessionError, ConnectionError):
    """The SSH handshake with the server failed."""


class _PathMixin:
    # File transfer errors also name the file: ``path`` (the remote path, or the local one
    # for errors on the local side).
    path = None

    def __init__(self, *args, path=None, **kwargs):
        PSSHError.__init__(self, *args, **kwargs)
        if path is not None:
            self.path = path

    def __reduce__(self):
        return (_rebuild_path, (type(self), self.args, self.host, self.port, self.cause,
                                self.path), self.__dict__ or None)


def _rebuild_path(cls, args, host, port, cause, path):
    return cls(*args, host=host, port=port, cause=cause, path=path)


class SFTPError(_PathMixin, PSSHError):
    """SFTP session or remote file error."""


class SFTPIOError(SFTPError):
    """SFTP read, write or mkdir failure."""


class ProxyError(PSSHError):
    """Connecting through the proxy (bastion) failed."""


class Timeout(_OSErrorMixin, PSSHError, builtins.TimeoutError):
    """A configured timeout elapsed."""


class SCPError(_PathMixin, PSSHError):
    """SCP transfer error."""


class UnsafeRemotePathError(SFTPIOError, SCPError):
    """A recursive download (``copy_remote_file`` or ``scp_recv``) met remote entries it must
    not write locally (a name with ``/``, NUL, ``..``...; a tree deeper than the limit).

    The rest of the tree was downloaded (except past the depth limit, which stops the walk).
    ``rejected`` lists ``(remote path, reason)`` pairs; ``path`` is the remote directory
    being copied. Both an :class:`SFTPIOError` and an :class:`SCPError`, so the handlers
    of either transfer catch it.
    """

    rejected = ()

    def __init__(self, *args, rejected=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.rejected = list(rejected)


class PKeyFileError(PSSHError):
    """A private key file is missing or unreadable."""


class ShellError(PSSHError):
    """Writing to an interactive shell failed."""


class HostConfigError(PSSHError):
    """``host_config`` is not a list of :class:`pssh.config.HostConfig`."""


class InvalidAPIUseError(PSSHError):
    """The API was called with an impossible combination of arguments."""


class OutputBufferFullError(SessionError):
    """Reading cannot progress: a stream of the command holds ``max_unread_output`` bytes not
    read, so pssh stopped reading the channel. ``stream`` names the full stream."""

    stream = None


class HostKeyError(PSSHError):
    """The server's host key is unknown, changed or revoked under the policy in force.

    Besides ``host`` and ``port``: ``reason`` ("changed", "unknown", "revoked", or
    "unreadable": policy "strict" and a known_hosts file that cannot be read),
    ``fingerprint`` and ``key_type`` of the offered key (None for "unreadable"), and
    ``known_fingerprints`` and ``locations`` ("file:line", or the unreadable files' paths) of
    the known_hosts entries involved.
    """

    reason = None
    fingerprint = None
    key_type = None
    known_fingerprints = ()
    locations = ()


class ResourceLimitError(PSSHError, builtins.OSError):
    """A process resource limit (open files) is too low for the requested work."""

    __init__ = _OSErrorMixin.__init__
    __str__ = PSSHError.__str__


# 1.x and 2.x alias names
UnknownHostException = UnknownHostError
ConnectionErrorException = ConnectionError
AuthenticationException = AuthenticationError
SSHException = SSHError
HostArgumentException = HostArgumentError
