"""The libssh2 call helper: retry a non-blocking libssh2 call on EAGAIN, waiting on the hub,
and the one translation of a wait that ended without a result into a pssh exception.

Callers say which calls drive a session-level libssh2 state machine (``exclusive=True``):
those may not overlap on one session and take the waiter's lock.
"""
from time import monotonic

from ssh2.error_codes import LIBSSH2_ERROR_EAGAIN

from pssh.core.hub import DeadlineExceeded, WaiterClosed
from pssh.exceptions import SessionError, Timeout

__all__ = ["call", "wait_error"]


def call(session, waiter, func, args, deadline, exclusive=False):
    """``func(*args)`` until it stops returning EAGAIN, waiting on the socket until ``deadline``.

    ``exclusive``: ``func`` is a session-level request (opening a channel, a tunnel, SFTP or
    SCP, disconnecting); a second caller while one is pending would continue the first
    caller's request and receive its result, so these run one at a time per session.
    Raises DeadlineExceeded / WaiterClosed (see :func:`wait_error`) and libssh2's errors.
    """
    if exclusive:
        timeout = None if deadline is None else max(0.0, deadline - monotonic())
        if not waiter.lock.acquire(timeout=timeout):
            raise DeadlineExceeded()
        try:
            return _call(session, waiter, func, args, deadline)
        finally:
            waiter.lock.release()
    return _call(session, waiter, func, args, deadline)


def _call(session, waiter, func, args, deadline):
    while True:
        rc = func(*args)
        if rc.__class__ is int and rc == LIBSSH2_ERROR_EAGAIN:
            waiter.wait(session.block_directions(), deadline)
            continue
        waiter.settle()
        return rc


def wait_error(failure, host, port, what):
    """The pssh exception for ``what`` on ``host:port`` ending in ``failure``:
    :class:`Timeout` for DeadlineExceeded, :class:`SessionError` for WaiterClosed (closed)."""
    # ``what`` goes into the format, not the arguments: 2.x code reads (fmt, host, port) off
    # ``args``; a "%" in it (a path) is escaped.
    what = what.replace("%", "%%")
    if isinstance(failure, DeadlineExceeded):
        return Timeout(what + " on host %s:%s timed out", host, port, host=host, port=port)
    if isinstance(failure, WaiterClosed):
        return SessionError("Client for host %s:%s was closed during " + what, host, port,
                            host=host, port=port, cause=failure)
    raise TypeError("not a wait failure: %r" % (failure,))
