"""2.x import path ``pssh.clients.native.single``: re-exports only.

``Session`` is ssh2-python's session class, as in 2.x; patching it here does
not change the sessions pssh creates (they are made in
``pssh.connection.connect``).
``KeepAlive`` and ``FORWARDER`` are placeholders (:mod:`pssh.clients._compat`).
``THREAD_POOL`` is gevent's thread pool, looked up on first access.
"""
from ssh2.session import Session

from pssh.clients._compat import FORWARDER, KeepAlive, thread_pool
from pssh.single import SSHClient, logger

__all__ = ["SSHClient", "Session", "KeepAlive", "THREAD_POOL", "FORWARDER", "logger"]


def __getattr__(name):
    if name == "THREAD_POOL":
        return thread_pool()
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
