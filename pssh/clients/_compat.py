"""Shared pieces of the 2.x module layout that have no counterpart in pssh.

parallel-ssh 2.x ran proxies through a thread (``LocalForwarder``) serving
local ports (``TunnelServer``) and sent keepalives from a ``KeepAlive``
greenlet. pssh tunnels over the gevent hub without threads or listening
ports, and sends keepalives from a hub timer, so these names exist only so
that imports and ``mock.patch`` of them keep working; patching them changes
nothing in pssh, and using them raises :class:`InvalidAPIUseError` naming
the replacement.
"""
import logging
import threading

from pssh.exceptions import InvalidAPIUseError

__all__ = ["LocalForwarder", "TunnelServer", "KeepAlive", "FORWARDER", "thread_pool"]

logger = logging.getLogger("pssh.clients.native.tunnel")

_NO_FORWARDER = ("pssh has no proxy forwarder thread: proxies (proxy_host=, proxy_jump=) are "
                 "tunnelled over the gevent hub by the clients themselves")


class LocalForwarder:
    """Placeholder for 2.x's proxy thread; ``enqueue`` raises, ``shutdown`` does nothing."""

    def __init__(self):
        self.in_q = None
        self.out_q = None
        self.started = threading.Event()
        self.shutdown_triggered = threading.Event()

    def enqueue(self, client, host, port):
        raise InvalidAPIUseError(_NO_FORWARDER)

    def start(self):
        raise InvalidAPIUseError(_NO_FORWARDER)

    def run(self):
        raise InvalidAPIUseError(_NO_FORWARDER)

    def shutdown(self):
        """Nothing to stop: there is no forwarder thread."""

    def cleanup_server(self, client):
        """Nothing to clean up: tunnels close with their bastion connection."""


class TunnelServer:
    """Placeholder for 2.x's local listening tunnel; constructing one raises."""

    def __init__(self, client, host, port, bind_address="127.0.0.1", num_retries=3):
        raise InvalidAPIUseError(_NO_FORWARDER)


class KeepAlive:
    """Placeholder for 2.x's keepalive greenlet; constructing one raises.

    pssh sends keepalives every ``keepalive_seconds`` from a timer of the
    client (``keepalive_seconds=0`` turns them off).
    """

    def __init__(self, *args, **kwargs):
        raise InvalidAPIUseError("pssh sends keepalives from the client itself; set "
                                 "keepalive_seconds (0 turns them off)")


FORWARDER = LocalForwarder()


def thread_pool():
    """gevent's thread pool of the current hub (2.x's ``THREAD_POOL``).

    pssh runs no handshake or authentication in threads; the pool is offered
    for user code that used 2.x's, and is looked up only when asked for, so
    importing the 2.x modules creates no hub.
    """
    import gevent
    return gevent.get_hub().threadpool
