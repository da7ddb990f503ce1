"""pssh._hub.SocketWaiter on a local socketpair: wake-ups, deadlines, close, watcher reuse."""

import socket
import time

import gevent
import pytest

from pssh.core.hub import READ, WRITE, DeadlineExceeded, SocketWaiter, WaiterClosed, deadline_after
from pssh.exceptions import ConnectionLostError

GUARD = 5


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def waiter(pair):
    w = SocketWaiter(pair[0])
    yield w
    w.close()


def spawn_waiting(w, directions, deadline=None):
    """A greenlet blocked in ``w.wait``; returns once it is registered."""
    g = gevent.spawn(w.wait, directions, deadline)
    gevent.idle()  # run it until it blocks in the hub
    assert not g.dead
    return g


def fill(sock):
    """Write into ``sock`` until the kernel buffer is full; returns bytes written."""
    total = 0
    while True:
        try:
            total += sock.send(b"\0" * 65536)
        except BlockingIOError:
            return total


def test_deadline_after():
    assert deadline_after(None) is None
    now = time.monotonic()
    assert now + 0.9 <= deadline_after(1) <= time.monotonic() + 1


def test_read_wakes_when_peer_writes(pair, waiter):
    a, b = pair
    gevent.spawn(b.send, b"x")  # runs once the main greenlet waits
    started = time.monotonic()
    waiter.wait(READ, deadline_after(GUARD))
    assert time.monotonic() - started < 1
    assert a.recv(1) == b"x"


def test_already_readable_returns_at_once(pair, waiter):
    a, b = pair
    b.send(b"ready")
    started = time.monotonic()
    waiter.wait(READ, deadline_after(GUARD))
    assert time.monotonic() - started < 1


def test_write_ready_socket(pair, waiter):
    waiter.wait(WRITE, deadline_after(GUARD))


def test_zero_directions_mean_read(pair, waiter):
    with pytest.raises(DeadlineExceeded):
        waiter.wait(0, deadline_after(0.05))
    assert waiter._watchers[WRITE] is None
    assert waiter._watchers[READ] is not None


def test_deadline_raises_promptly(waiter):
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        waiter.wait(READ, deadline_after(0.2))
    assert 0.15 <= time.monotonic() - started < 1.5
    assert waiter._waiting[READ] == []
    assert not waiter._watchers[READ].active


def test_past_deadline_raises_without_waiting(waiter):
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        waiter.wait(READ, time.monotonic() - 1)
    assert time.monotonic() - started < 0.5
    assert waiter._waiting[READ] == []


def test_bind_and_call(pair, waiter):
    assert waiter.bind(None) is waiter
    bound = waiter.bind(deadline_after(0.05))
    with pytest.raises(DeadlineExceeded):
        bound(READ)
    gevent.spawn(pair[1].send, b"y")
    with gevent.Timeout(GUARD, AssertionError("waiter(READ) hung")):
        waiter(READ)


def test_close_wakes_pending_waiters_with_the_error(waiter):
    first = spawn_waiting(waiter, READ)
    second = gevent.spawn(waiter.wait, READ | WRITE)  # WRITE is ready: returns at once
    error = ConnectionLostError("session of %s closed", "h", host="h")
    waiter.close(error)
    with pytest.raises(ConnectionLostError) as info:
        first.get(timeout=GUARD)
    assert info.value is error
    second.join(timeout=GUARD)
    assert second.dead
    # later waits fail at once with the same error; the watchers are gone
    with pytest.raises(ConnectionLostError):
        waiter.wait(READ, deadline_after(GUARD))
    assert waiter.closed
    assert waiter._watchers == [None, None, None]


def test_close_without_error_gives_waiter_closed(waiter):
    g = spawn_waiting(waiter, READ)
    waiter.close()
    waiter.close()  # idempotent
    with pytest.raises(WaiterClosed):
        g.get(timeout=GUARD)


def wait_readable(w, sock, deadline):
    """What a libssh2 caller does: retry after every wake-up until the socket has data."""
    while True:
        try:
            if sock.recv(1, socket.MSG_PEEK):
                return
        except BlockingIOError:
            pass
        w.wait(READ, deadline)


def test_two_greenlets_on_one_socket_both_woken(pair, waiter):
    a, b = pair
    g1 = gevent.spawn(wait_readable, waiter, a, deadline_after(GUARD))
    g2 = gevent.spawn(wait_readable, waiter, a, deadline_after(GUARD))
    gevent.idle()
    gevent.idle()
    assert not g1.dead and not g2.dead
    assert len(waiter._waiting[READ]) == 2
    b.send(b"z")
    gevent.joinall([g1, g2], timeout=GUARD, raise_error=True)
    assert g1.successful() and g2.successful()
    assert waiter._waiting[READ] == []


def test_watchers_reused_across_waits(pair, waiter):
    a, b = pair
    b.send(b"1")
    waiter.wait(READ, deadline_after(GUARD))
    read_watcher = waiter._watchers[READ]
    assert read_watcher is not None and not read_watcher.active
    for i in range(5):
        a.recv(16)
        gevent.spawn(b.send, b"%d" % i)
        waiter.wait(READ, deadline_after(GUARD))
        assert waiter._watchers[READ] is read_watcher
        assert not read_watcher.active
    waiter.wait(WRITE, deadline_after(GUARD))
    write_watcher = waiter._watchers[WRITE]
    for _ in range(3):
        waiter.wait(WRITE, deadline_after(GUARD))
        assert waiter._watchers[WRITE] is write_watcher
    assert waiter._watchers[READ] is read_watcher


def test_settle_wakes_a_waiter_whose_bytes_were_consumed(pair, waiter):
    # Another user of the session read the socket; without settle() the sleeper would never wake
    a, b = pair
    g = spawn_waiting(waiter, READ, deadline_after(GUARD))
    b.send(b"data")
    assert a.recv(16) == b"data"  # consumed without yielding to the hub
    waiter.settle()
    g.join(timeout=2)
    assert g.successful(), "the waiter was not woken by settle()"


def test_settle_without_waiters_is_a_no_op(waiter):
    waiter.settle()
    assert waiter._waiting == [None, [], []]


def test_sending_while_a_writer_waits(pair, waiter):
    a, b = pair
    assert waiter.sending is False
    fill(a)
    g = spawn_waiting(waiter, WRITE, deadline_after(GUARD))
    assert waiter.sending is True
    while True:  # drain the peer: the socket becomes writable again
        try:
            if not b.recv(1 << 20):
                break
        except BlockingIOError:
            break
    g.get(timeout=GUARD)
    assert waiter.sending is False


def test_send_backlog_while_bytes_are_unsent(pair, waiter):
    a, b = pair
    assert waiter.send_backlog is False
    a.send(b"x" * 1000)  # queued until the peer reads it
    assert waiter.send_backlog is True
    assert b.recv(4096) == b"x" * 1000
    assert waiter.send_backlog is False


def test_send_backlog_while_a_writer_waits(pair, waiter):
    a, b = pair
    fill(a)
    g = spawn_waiting(waiter, WRITE, deadline_after(GUARD))
    assert waiter.send_backlog is True
    g.kill()


# -- Doorbell: into the hub from other threads --------------------------------------------------

def test_doorbell_rung_from_threads_wakes_the_hub_and_none_is_lost():
    import threading

    import gevent.event

    from pssh.core.hub import Doorbell

    arrived = gevent.event.Event()
    rung = []
    doorbell = Doorbell(arrived.set)
    try:
        for round_number in range(50):
            arrived.clear()
            thread = threading.Thread(target=lambda: (rung.append(1), doorbell.ring()))
            thread.start()
            # the hub sleeps in this wait: only the ring from the other thread can end it
            assert arrived.wait(5), "ring %d was lost" % round_number
            thread.join()
    finally:
        doorbell.close()
    assert len(rung) == 50
    doorbell.ring()  # after close: nothing, no error
    doorbell.close()
