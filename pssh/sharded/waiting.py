"""The dispatcher's inbox: finished steps handed over by executor threads.

A caller whose thread runs a gevent hub (a gevent application, the ``pssh`` CLI with its
progress greenlet) must not be frozen while shards work, so there the wait parks the
calling greenlet on the hub; an executor thread wakes it through a libev async watcher, the
one thread-safe way into a hub, which costs nothing while nothing arrives. Any other caller
waits on the queue as usual.
"""
import queue
from typing import Any, Optional

import gevent
from gevent.event import Event

from pssh.core.hub import Doorbell

try:
    from gevent._hub_local import get_hub_if_exists
except ImportError:  # pragma: no cover - every supported gevent has it
    def get_hub_if_exists():
        return gevent.get_hub()

__all__ = ["Inbox"]


class Inbox:
    """A queue that executor threads put into and the dispatcher's thread waits on."""

    def __init__(self):
        self._items = queue.Queue()
        hub = get_hub_if_exists()
        self._doorbell = None
        self._arrived = None
        if hub is not None and gevent.getcurrent() is not hub:
            self._arrived = Event()
            self._doorbell = Doorbell(self._arrived.set, hub)

    def put(self, item: Any) -> None:
        """Called from any thread."""
        self._items.put(item)
        if self._doorbell is not None:
            self._doorbell.ring()

    def get(self, timeout: Optional[float]) -> Any:
        """The next item; raises :class:`queue.Empty` after ``timeout`` seconds."""
        if self._arrived is None:
            return self._items.get(timeout=timeout)
        while True:
            try:
                return self._items.get_nowait()
            except queue.Empty:
                pass
            if not self._arrived.wait(timeout):
                return self._items.get_nowait()
            # cleared before looking: a wake-up for an item put after this is kept
            self._arrived.clear()

    def close(self) -> None:
        if self._doorbell is not None:
            self._doorbell.close()
