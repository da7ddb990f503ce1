"""Waiting on session sockets through the gevent hub.

This is the only module that knows how to wait. Each SSH session owns one
:class:`SocketWaiter`; it keeps one lazily created io watcher per direction
and reuses it for every wait, so no poll object is made per wait.

Several greenlets may use one libssh2 session at once (several channels, a
writer and a reader). A libssh2 call made by one of them can read packets that
belong to another from the socket into libssh2's own buffers; the other one,
asleep on socket readiness, would then never wake up (a lost wake-up). To
prevent that, before a greenlet goes to sleep it checks whether the session
consumed socket bytes since the last check and, if so, wakes every other
waiter of that session so that it retries its call. On Linux the byte count is
exact (TCP_INFO bytes received minus bytes still queued); elsewhere the check
falls back to waking peers whenever the caller itself had been woken by the
socket.
"""
import socket
import struct
import sys
from time import monotonic

from gevent import get_hub
from gevent.hub import Waiter
from gevent.lock import Semaphore
from gevent.monkey import get_original

__all__ = ["READ", "WRITE", "SocketWaiter", "DeadlineExceeded", "WaiterClosed", "deadline_after",
           "unsent_bytes", "Doorbell"]

READ = 1   # LIBSSH2_SESSION_BLOCK_INBOUND and libev's EV_READ share this value
WRITE = 2  # LIBSSH2_SESSION_BLOCK_OUTBOUND and EV_WRITE

_READY = object()
_PEER = object()
_TIMEDOUT = object()
_CLOSED = object()


class DeadlineExceeded(Exception):
    """Raised inside a wait whose deadline passed; callers turn it into a named Timeout."""


class WaiterClosed(Exception):
    """Raised inside a wait when its session was closed meanwhile."""


def deadline_after(seconds):
    """Absolute monotonic deadline ``seconds`` from now, or None for no limit."""
    if seconds is None:
        return None
    return monotonic() + seconds


if sys.platform.startswith("linux"):
    import fcntl
    import termios

    _TCP_INFO = getattr(socket, "TCP_INFO", 11)
    _FIONREAD = termios.FIONREAD
    _BYTES_RECEIVED = struct.Struct("=Q")
    _INT = struct.Struct("i")
    _ZERO = b"\0\0\0\0"

    def _bytes_consumed(sock):
        """Bytes the application has read from ``sock`` so far, or None if unknown."""
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 192)
            if len(info) < 136:
                return None
            received = _BYTES_RECEIVED.unpack_from(info, 128)[0]
            queued = _INT.unpack(fcntl.ioctl(sock.fileno(), _FIONREAD, _ZERO))[0]
        except OSError:
            return None
        return received - queued
    _TIOCOUTQ = termios.TIOCOUTQ

    def unsent_bytes(sock):
        """Bytes written to ``sock`` that the kernel has not sent yet, or None if unknown."""
        try:
            return _INT.unpack(fcntl.ioctl(sock.fileno(), _TIOCOUTQ, _ZERO))[0]
        except OSError:
            return None
else:  # pragma: no cover - exercised only off Linux
    def _bytes_consumed(sock):
        return None

    def unsent_bytes(sock):
        return None


class SocketWaiter:
    """Waits for a session socket on behalf of any number of greenlets.

    ``waiter(directions)`` is the form the backend loops call on EAGAIN: it
    waits without a deadline. :meth:`wait` takes an absolute deadline.
    """

    __slots__ = ("_sock", "_hub", "_loop", "_watchers", "_waiting", "_closed",
                 "_mark", "_peer_woken", "lock", "__weakref__")

    def __init__(self, sock):
        self._sock = sock
        self._hub = get_hub()
        self._loop = self._hub.loop
        self._watchers = [None, None, None]
        self._waiting = [None, [], []]
        self._closed = None
        self._mark = None
        self._peer_woken = False
        # libssh2 keeps one state machine per session for opening channels,
        # SFTP and SCP: only one greenlet may be inside such a call at a time.
        self.lock = Semaphore()

    @property
    def sending(self):
        """True while some greenlet waits to finish a send on this socket."""
        return bool(self._waiting[WRITE])

    @property
    def send_backlog(self):
        """True when a send may not fit the socket at once: unsent bytes are queued, or a
        greenlet waits to send. Unknown counts as a backlog."""
        return bool(self._waiting[WRITE]) or unsent_bytes(self._sock) != 0

    @property
    def closed(self):
        return self._closed is not None

    def __call__(self, directions):
        self.wait(directions, None)

    def bind(self, deadline):
        """A callable for the backend loops that waits with ``deadline``."""
        if deadline is None:
            return self
        return lambda directions: self.wait(directions, deadline)

    def wait(self, directions, deadline=None):
        if self._closed is not None:
            raise self._closed
        directions &= READ | WRITE
        if not directions:
            # libssh2 reported EAGAIN without a direction: it waits for data.
            directions = READ
        self.settle()
        waiter = Waiter(self._hub)
        timer = None
        if directions & READ:
            self._register(READ, waiter)
        if directions & WRITE:
            self._register(WRITE, waiter)
        try:
            if deadline is not None:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    raise DeadlineExceeded()
                timer = self._loop.timer(remaining)
                timer.start(waiter.switch, _TIMEDOUT)
            why = waiter.get()
        finally:
            if timer is not None:
                timer.close()
            if directions & READ:
                self._unregister(READ, waiter)
            if directions & WRITE:
                self._unregister(WRITE, waiter)
        if why is _READY:
            self._peer_woken = False
            return
        if why is _PEER:
            self._peer_woken = True
            return
        if why is _TIMEDOUT:
            raise DeadlineExceeded()
        raise self._closed or WaiterClosed()

    def settle(self):
        """Wake the other waiters if this session read socket bytes since the last check.

        Call after any libssh2 call sequence on the session that ends without a wait.
        """
        waiting = self._waiting
        if not waiting[READ] and not waiting[WRITE]:
            return
        consumed = _bytes_consumed(self._sock)
        if consumed is None:
            if self._peer_woken:
                return
        elif consumed == self._mark:
            return
        self._mark = consumed
        woken = set()
        for direction in (READ, WRITE):
            for waiter in waiting[direction]:
                if waiter not in woken:
                    woken.add(waiter)
                    self._loop.run_callback(waiter.switch, _PEER)

    def kick(self):
        """Make every greenlet waiting on this session retry its call now."""
        for direction in (READ, WRITE):
            for waiter in self._waiting[direction]:
                self._loop.run_callback(waiter.switch, _PEER)

    def close(self, exc=None):
        """Fail every pending and future wait of this session with ``exc``."""
        if self._closed is not None:
            return
        self._closed = exc if exc is not None else WaiterClosed("session closed")
        for direction in (READ, WRITE):
            for waiter in self._waiting[direction]:
                self._loop.run_callback(waiter.switch, _CLOSED)
            watcher = self._watchers[direction]
            if watcher is not None:
                watcher.stop()
                watcher.close()
                self._watchers[direction] = None

    def _register(self, direction, waiter):
        waiting = self._waiting[direction]
        waiting.append(waiter)
        if len(waiting) == 1:
            watcher = self._watchers[direction]
            if watcher is None:
                watcher = self._watchers[direction] = self._loop.io(self._sock.fileno(), direction)
            watcher.start(self._fire, direction)

    def _unregister(self, direction, waiter):
        waiting = self._waiting[direction]
        try:
            waiting.remove(waiter)
        except ValueError:
            return
        if not waiting:
            watcher = self._watchers[direction]
            if watcher is not None:
                watcher.stop()

    def _fire(self, direction):
        # Runs in the hub. Every waiter of this direction retries its call;
        # the list is swapped first because woken greenlets re-register.
        waiting = self._waiting[direction]
        self._waiting[direction] = []
        watcher = self._watchers[direction]
        if watcher is not None:
            watcher.stop()
        for waiter in waiting:
            waiter.switch(_READY)


class Doorbell:
    """The way from another thread into a gevent hub: :meth:`ring`, from any thread, makes
    the hub run ``callback`` (rings made before it ran count once). A libev async watcher,
    made on the hub of the thread that creates the doorbell (or ``hub``), started at once
    and kept started until :meth:`close`: libev forgets a ring sent to a stopped watcher,
    which would lose a wake-up. Idle, it costs nothing."""

    __slots__ = ("_watcher", "_lock")

    def __init__(self, callback, hub=None):
        # a real thread lock even if the application monkey-patched threading: rings come
        # from threads, and none may reach a watcher being closed
        self._lock = get_original("_thread", "allocate_lock")()
        self._watcher = (hub or get_hub()).loop.async_()
        self._watcher.start(callback)

    def ring(self):
        with self._lock:
            if self._watcher is not None:
                self._watcher.send()

    def close(self):
        with self._lock:
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()
            watcher.close()
