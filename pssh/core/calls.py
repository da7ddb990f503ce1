"""The libssh2 call helper: retry a non-blocking libssh2 call on EAGAIN, waiting on the hub.

Owns which session-level calls may not overlap (the per-session lock of the waiter).
"""
from time import monotonic

from ssh2.error_codes import LIBSSH2_ERROR_EAGAIN

from pssh.core.hub import DeadlineExceeded

__all__ = ["call", "EXCLUSIVE_CALLS"]

# Session-level libssh2 state machines: a second caller while one is pending
# would continue the first caller's request and receive its result.
EXCLUSIVE_CALLS = frozenset(("open_session", "direct_tcpip_ex", "direct_tcpip", "sftp_init",
                             "scp_send64", "scp_recv2", "disconnect"))


def call(session, waiter, func, args, deadline):
    """Call a libssh2 function until it stops returning EAGAIN, waiting on the socket."""
    if getattr(func, "__name__", None) in EXCLUSIVE_CALLS:
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


