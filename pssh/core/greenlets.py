"""Greenlets whose failures belong to the caller who joins them, not to gevent's hub printout.

The parallel transfer methods hand their greenlets back to the user, who gets each host's error
from ``greenlet.get()`` or ``gevent.joinall(..., raise_error=True)``. gevent's hub would also print
a traceback for every one of them: for a thousand unreachable hosts, tens of thousands of lines
of noise about errors that are reported anyway. parallel-ssh silenced that by setting the hub
class's ``NOT_ERROR`` to every exception, for every greenlet of the process. Here only the
greenlets that pssh spawns for a user to join are quiet, through the per-hub ``handle_error``
override that gevent documents; the hub reports everything else exactly as before.
"""
import gevent
from gevent import get_hub

__all__ = ["JoinedGreenlet", "spawn_joined", "spawn_quiet"]

_MARK = "_pssh_quiet_joined"


class JoinedGreenlet(gevent.Greenlet):
    """A greenlet whose ordinary exception is reported by ``get()``/``joinall`` only."""


def _install(hub):
    if getattr(hub, _MARK, False):
        return
    report = hub.handle_error

    def handle_error(context, type_, value, tb):
        if (isinstance(context, JoinedGreenlet) and isinstance(type_, type)
                and issubclass(type_, Exception)):
            return
        report(context, type_, value, tb)

    hub.handle_error = handle_error
    setattr(hub, _MARK, True)


def spawn_joined(pool, func, *args, **kwargs):
    """Start ``func(*args, **kwargs)`` in ``pool`` (waiting for a free slot as ``pool.spawn``
    does) as a :class:`JoinedGreenlet`; returns it."""
    _install(get_hub())
    greenlet = JoinedGreenlet(func, *args, **kwargs)
    pool.start(greenlet)
    return greenlet


def spawn_quiet(func, *args, **kwargs):
    """Start ``func(*args, **kwargs)`` as a :class:`JoinedGreenlet` outside any pool: its
    error is for whoever calls ``get()``."""
    _install(get_hub())
    return JoinedGreenlet.spawn(func, *args, **kwargs)
