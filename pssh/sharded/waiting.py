"""The dispatcher's inbox: finished steps handed over by executor threads.

A caller whose thread runs a gevent hub (a gevent application, the ``pssh`` CLI with its
progress greenlet) must not be frozen while shards work, so there the wait parks the
calling greenlet on the hub; an executor thread wakes it through a libev async watcher, the
one thread-safe way into a hub, which costs nothing while nothing arrives. Any other caller
waits on the queue as usual.
"""
import queue
import threading
from typing import Any, Optional

import gevent
from gevent.event import Event

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
        self._lock = threading.Lock()  # no wake-up sent to a watcher being closed
        hub = get_hub_if_exists()
        self._watcher = None
        self._arrived = None
        if hub is not None and gevent.getcurrent() is not hub:
            self._arrived = Event()
            # Started now and kept so until close(): libev forgets a wake-up sent to a
            # watcher that is not started, which would lose an item put in between.
            self._watcher = hub.loop.async_()
            self._watcher.start(self._arrived.set)

    def put(self, item: Any) -> None:
        """Called from any thread."""
        self._items.put(item)
        with self._lock:
            if self._watcher is not None:
                self._watcher.send()

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
        with self._lock:
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
            watcher.close()
