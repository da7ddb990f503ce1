"""The one libssh2 call helper: a :class:`Caller` retries a non-blocking libssh2 call on EAGAIN
on the hub, and every way such a call can fail becomes one :class:`CallFailed`, translated once.

Callers say which calls drive a session-level libssh2 state machine (``exclusive=True``):
those may not overlap on one session and take the waiter's lock. The error contract:
:meth:`Caller.attempt` raises :class:`CallFailed` (layers with their own exception classes,
such as SFTP and SCP, translate it where they name the path); :meth:`Caller.call` raises the
session-level pssh exception of :meth:`CallFailed.error` (Timeout, SessionError,
ConnectionLostError). A call on a closed client raises SessionError before touching libssh2.
"""
from time import monotonic
from typing import Any, Callable, Optional

from ssh2.error_codes import LIBSSH2_ERROR_EAGAIN
from ssh2.exceptions import SSH2Error
from ssh2.utils import handle_error_codes

from pssh._pure import error_code
from pssh.core.hub import DeadlineExceeded, WaiterClosed, deadline_after
from pssh.exceptions import ConnectionLostError, PSSHError, SessionError, Timeout

__all__ = ["Caller", "CallFailed", "call", "describe", "wait_error", "OP_DEADLINE"]

# SOCKET_NONE/SEND/DISCONNECT/RECV, BAD_SOCKET: the connection itself is gone.
CONNECTION_LOST_CODES = frozenset((-1, -7, -13, -43, -45))
CHANNEL_CLOSED = -26
SFTP_PROTOCOL = -31
SFTP_STATUS_NAMES = {
    1: "end of file", 2: "no such file or directory", 3: "permission denied", 4: "failure",
    5: "bad message", 6: "no connection", 7: "connection lost", 8: "operation unsupported",
    11: "file already exists", 14: "no space on filesystem", 15: "quota exceeded"}

# Default of ``deadline``: the client's op_timeout from the start of the call.
OP_DEADLINE = object()



def describe(exc: BaseException) -> str:
    """``TypeName: message`` (just the type name when the message is empty)."""
    text = str(exc)
    return "%s%s" % (type(exc).__name__, ": " + text if text else "")

class CallFailed(Exception):
    """A libssh2 call that gave no result: the libssh2 ``code`` (with the SFTP ``status`` when
    the server sent one, and ssh2-python's exception ``exc``), or ``timed_out`` (its deadline
    passed), or ``closed`` (the connection was closed while it waited)."""

    def __init__(self, code: Optional[int], status: Optional[int] = None, exc=None,
                 timed_out: bool = False, closed: bool = False):
        super().__init__(code, status)
        self.code = code
        self.status = status
        self.exc = exc
        self.timed_out = timed_out
        self.closed = closed

    @classmethod
    def of(cls, failure: BaseException) -> "CallFailed":
        """``failure`` (a wait failure or an ssh2-python error) as a CallFailed."""
        if isinstance(failure, cls):
            return failure
        if isinstance(failure, DeadlineExceeded):
            return cls(None, timed_out=True, exc=failure)
        if isinstance(failure, WaiterClosed):
            return cls(None, closed=True, exc=failure)
        if isinstance(failure, SSH2Error):
            return cls(error_code(failure), exc=failure)
        raise TypeError("not a call failure: %r" % (failure,))

    @classmethod
    def from_code(cls, code: int) -> "CallFailed":
        """The failure of a loop that returned libssh2's negative ``code``."""
        try:
            handle_error_codes(code)
            exc = SSH2Error("libssh2 error %s" % code)
        except SSH2Error as raised:
            exc = raised
        return cls(code, exc=exc)

    @property
    def connection_lost(self) -> bool:
        return self.code in CONNECTION_LOST_CODES

    @property
    def lost(self) -> bool:
        """Nothing more can be done on what carried the call: the connection is lost or
        closed, the call timed out mid-request, or its channel is closed."""
        return self.timed_out or self.closed or self.connection_lost \
            or self.code == CHANNEL_CLOSED

    def describe(self) -> str:
        if self.timed_out:
            return "timed out"
        if self.closed:
            return "client closed"
        if self.status is not None:
            return SFTP_STATUS_NAMES.get(self.status, "SFTP status %s" % self.status)
        if self.lost:
            return "connection lost"
        return self._cause_text()

    def _cause_text(self):
        if self.exc is None:
            return "libssh2 error %s" % self.code
        return describe(self.exc)

    def error(self, host: str, port: int, what: str) -> PSSHError:
        """The pssh exception for ``what`` on ``host:port`` failing this way."""
        # ``what`` goes into the format, not the arguments: 2.x code reads (fmt, host, port)
        # off ``args``; a "%" in it (a path) is escaped.
        what = what.replace("%", "%%")
        if self.timed_out:
            return Timeout(what + " on host %s:%s timed out", host, port, host=host, port=port)
        if self.closed:
            return SessionError("Client for host %s:%s was closed during " + what, host, port,
                                host=host, port=port, cause=self.exc)
        detail = self._cause_text()
        if self.connection_lost:
            return ConnectionLostError("Connection to host %s:%s lost during " + what + " - %s",
                                       host, port, detail, host=host, port=port, cause=self.exc)
        return SessionError(what + " failed on host %s:%s - %s", host, port, detail,
                            host=host, port=port, cause=self.exc)


class Caller:
    """Runs the libssh2 calls of one connection (``session`` and its socket ``waiter``) for
    ``host:port``; ``op_timeout`` bounds each call unless it names its own deadline;
    ``is_closed()`` says whether the client was closed."""

    __slots__ = ("host", "port", "session", "waiter", "op_timeout", "is_closed")

    def __init__(self, host: str, port: int, session, waiter, op_timeout: Optional[float],
                 is_closed: Callable[[], bool]):
        self.host = host
        self.port = port
        self.session = session
        self.waiter = waiter
        self.op_timeout = op_timeout
        self.is_closed = is_closed

    def closed_error(self) -> SessionError:
        return SessionError("Client for host %s:%s is closed", self.host, self.port,
                            host=self.host, port=self.port)

    def attempt(self, func: Callable, *args, deadline: Any = OP_DEADLINE,
                exclusive: bool = False, sftp=None):
        """``func(*args)`` until it stops returning EAGAIN; raises :class:`CallFailed`.
        ``sftp``: the SFTP session whose last status explains an SFTP protocol error."""
        if self.is_closed():
            raise self.closed_error()
        if deadline is OP_DEADLINE:
            deadline = deadline_after(self.op_timeout)
        try:
            return call(self.session, self.waiter, func, args, deadline, exclusive)
        except (DeadlineExceeded, WaiterClosed, SSH2Error) as exc:
            failure = CallFailed.of(exc)
        if sftp is not None and failure.code == SFTP_PROTOCOL:
            try:
                failure.status = sftp.last_error()
            except SSH2Error:
                pass
        raise failure

    def call(self, func: Callable, *args, what: str, deadline: Any = OP_DEADLINE,
             exclusive: bool = False):
        """:meth:`attempt`, naming ``what`` it does in the pssh exception it raises."""
        try:
            return self.attempt(func, *args, deadline=deadline, exclusive=exclusive)
        except CallFailed as failure:
            raise failure.error(self.host, self.port, what) from failure.exc

    def check(self, rc: int, what: str) -> int:
        """``rc`` of a backend loop; raises the pssh exception when it is an error code."""
        if rc < 0:
            raise CallFailed.from_code(rc).error(self.host, self.port, what)
        return rc


def call(session, waiter, func, args, deadline, exclusive=False):
    """``func(*args)`` until it stops returning EAGAIN, waiting on the socket until ``deadline``.

    ``exclusive``: ``func`` is a session-level request (opening a channel, a tunnel, SFTP or
    SCP, disconnecting); a second caller while one is pending would continue the first
    caller's request and receive its result, so these run one at a time per session.
    Raises DeadlineExceeded / WaiterClosed and libssh2's errors (:class:`Caller` turns them
    into :class:`CallFailed`).
    """
    if exclusive:
        timeout = None if deadline is None else max(0.0, deadline - monotonic())
        if not waiter.lock.acquire(timeout=timeout):
            raise DeadlineExceeded()
        try:
            return _retry(session, waiter, func, args, deadline)
        finally:
            waiter.lock.release()
    return _retry(session, waiter, func, args, deadline)


def _retry(session, waiter, func, args, deadline):
    while True:
        rc = func(*args)
        if rc.__class__ is int and rc == LIBSSH2_ERROR_EAGAIN:
            waiter.wait(session.block_directions(), deadline)
            continue
        waiter.settle()
        return rc


def wait_error(failure, host, port, what):
    """The pssh exception for ``what`` on ``host:port`` ending in ``failure`` (DeadlineExceeded:
    :class:`Timeout`; WaiterClosed: :class:`SessionError`); see :meth:`CallFailed.error`."""
    if not isinstance(failure, (DeadlineExceeded, WaiterClosed)):
        raise TypeError("not a wait failure: %r" % (failure,))
    return CallFailed.of(failure).error(host, port, what)
