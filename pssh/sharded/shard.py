"""What runs inside a shard process (a local worker process or a Dask worker).

A shard keeps one :class:`pssh.ParallelSSHClient` per batch of hosts it was given, keyed by
the sharded client's id and the batch id, for as long as that sharded client lives: a later
command on the same hosts reuses the open connections.

All pssh work of a process runs on one thread with its own gevent hub (the *pssh thread*),
whatever thread the executor runs tasks on: gevent's hub and a client's sockets belong to the
thread that created them, and Dask runs tasks on a thread pool. Executor tasks only hand
batches to that thread and wait for finished ones (:func:`step`), so the batches of a shard
run at the same time and each finished batch is reported at once. :func:`cancel_call` stops
a call whose consumer left; it arrives outside the task slot that the call's step holds
(a local shard's control queue, Dask's ``Client.run``).

Every function called by the parent is a plain module-level function, pickled by reference.
"""
import logging
import os
import queue
import signal
import threading
import time
from collections import deque
from concurrent.futures import Future

import gevent
from gevent.event import Event

from pssh.core.hub import Doorbell
from pssh.parallel import ParallelSSHClient, raise_fd_limit
from pssh.sharded.records import HostResult, TransferResult, collect_output

__all__ = ["init_local_shard", "shard_pid", "step", "cancel_call", "forget_client"]

logger = logging.getLogger(__name__)

# Descriptors a shard asks for: its batches together may hold thousands of connections.
_WANTED_FDS = 1 << 16
# How long a cancel waits for the call's batches to close their channels.
_CANCEL_TIMEOUT = 10.0
# How long a cancel may take to send a batch's commands their SIGTERM.
_SIGNAL_TIMEOUT = 2.0


def init_local_shard(log_level, control=None):
    """Initializer of a local shard process: Ctrl-C is the parent's to handle (it kills the
    shards), and logging follows the parent's ``pssh`` level. ``control`` (a queue of
    ``("cancel", client id, call id)``) reaches the shard while its one task slot is busy."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if log_level is not None:
        logging.basicConfig(level=log_level,
                            format="%(asctime)s %(processName)s %(name)s %(levelname)s: "
                                   "%(message)s")
    if control is not None:
        threading.Thread(target=_serve_control, args=(control,), name="pssh-shard-control",
                         daemon=True).start()


def _serve_control(control):
    while True:
        try:
            message = control.get()
        except (EOFError, OSError):
            return  # the parent is gone
        if message[0] == "cancel":
            try:
                cancel_call(*message[1:])
            except Exception:  # noqa: BLE001 - the next message must still be served
                logger.warning("cancelling a call failed", exc_info=True)


def shard_pid():
    return os.getpid()


class _PsshThread:
    """The thread running this process's gevent hub; other threads hand it work."""

    def __init__(self):
        raise_fd_limit(_WANTED_FDS)
        self._inbox = deque()
        self._doorbell = None
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,),
                                        name="pssh-shard", daemon=True)
        self._thread.start()
        started.wait()

    def _serve(self, started):
        # While the doorbell's watcher is active the loop never runs dry, so the wait
        # below lasts as long as the process.
        self._doorbell = Doorbell(self._take_inbox)
        started.set()
        Event().wait()

    def _take_inbox(self):
        while self._inbox:
            func, args = self._inbox.popleft()
            gevent.spawn(func, *args)

    def call_soon(self, func, *args):
        self._inbox.append((func, args))
        self._doorbell.ring()

    def call(self, func, *args):
        """``func(*args)`` on the pssh thread; waits for its result."""
        result = Future()

        def run():
            try:
                result.set_result(func(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                result.set_exception(exc)
        self.call_soon(run)
        return result.result()


_runtime = None
_runtime_lock = threading.Lock()
# client id -> {batch id: ParallelSSHClient}; touched on the pssh thread only
_CLIENTS = {}
# (client id, call id) -> [queue of (batch id, records), batches not yet reported]
_CALLS = {}
# Calls the parent stopped (its consumer left): their late batches do not start. Guarded by
# _runtime_lock; emptied with their client.
_CANCELLED = set()
# (client id, call id) -> [gevent Event set on cancel, greenlets of its batches running];
# touched on the pssh thread only
_RUNNING = {}


class _Stop(Exception):
    """A batch of a cancelled call stops (its records go nowhere)."""


def _pssh_thread():
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = _PsshThread()
        return _runtime


def _batch_client(client_id, batch_id, entries, options):
    clients = _CLIENTS.setdefault(client_id, {})
    client = clients.get(batch_id)
    if client is None:
        configs = [config for _index, _host, config in entries]
        host_config = configs if any(config is not None for config in configs) else None
        client = ParallelSSHClient([host for _index, host, _config in entries],
                                   host_config=host_config, **options)
        clients[batch_id] = client
    return client


def _wait_unless_cancelled(greenlets, cancelled):
    """Waits for ``greenlets``; raises :class:`_Stop` as soon as ``cancelled`` is set."""
    pending = [greenlet for greenlet in greenlets if not greenlet.ready()]
    if pending and not cancelled.is_set():
        for ready in gevent.iwait(pending + [cancelled]):
            if ready is cancelled or all(greenlet.ready() for greenlet in pending):
                break
    if cancelled.is_set():
        gevent.killall(greenlets, block=True, timeout=_CANCEL_TIMEOUT)
        raise _Stop()


def _close_channels(outputs):
    # The connections stay open for the client's next command; only the commands go: each is
    # sent SIGTERM first, since a command without a PTY would run on after its channel closed.
    # One deadline for the batch's signals: stalled hosts must not add up.
    deadline = time.monotonic() + _SIGNAL_TIMEOUT
    for host_out in outputs:
        if host_out.client is None or host_out.channel is None:
            continue
        try:
            remaining = deadline - time.monotonic()
            if remaining > 0:
                host_out.channel_io.signal("TERM", timeout=remaining)
        except Exception:  # noqa: BLE001 - closing the channel matters more
            logger.debug("signalling the command of %s failed", host_out.host, exc_info=True)
        try:
            host_out.client.close_channel(host_out.channel)
        except Exception:  # noqa: BLE001 - a broken connection has no channel to close
            logger.debug("closing the channel of %s failed", host_out.host, exc_info=True)


def _run_command(client, entries, spec, cancelled):
    """HostResults of one batch; ``spec`` = (command, (), run kwargs, (cap, spool dir))."""
    command, _args, kwargs, (cap, spool_dir) = spec
    # Not interrupted while the commands start: a channel opened after a cancel would be
    # missed; it is closed below with the others instead.
    outputs = client.run_command(command, stop_on_errors=False, **kwargs)
    readers = [gevent.spawn(collect_output, index, host_out, cap, spool_dir,
                            lambda out=host_out: client.join([out]))
               for (index, _host, _config), host_out in zip(entries, outputs)]
    try:
        _wait_unless_cancelled(readers, cancelled)
    except _Stop:
        _close_channels(outputs)
        raise
    return [reader.get() for reader in readers]


def _transfer(client, entries, spec, cancelled):
    """TransferResults of one batch; ``spec`` = (method name, args, kwargs, None)."""
    method, args, kwargs, _extra = spec
    greenlets = getattr(client, method)(*args, **kwargs)
    _wait_unless_cancelled(greenlets, cancelled)
    return [TransferResult(index, host, getattr(config, "alias", None),
                           exception=greenlet.exception)
            for (index, host, config), greenlet in zip(entries, greenlets)]


_OPERATIONS = {"run": _run_command, "transfer": _transfer}


def _failed(operation, entries, exc):
    record = HostResult if operation == "run" else TransferResult
    return [record(index, host, getattr(config, "alias", None), exception=exc)
            for index, host, config in entries]


def _run_batch(done, key, options, batch, operation, spec):
    """Runs on the pssh thread; puts ``(batch id, records)`` on ``done`` whatever happens,
    unless the call is cancelled (nobody waits for its records any more)."""
    batch_id, entries, per_host = batch
    with _runtime_lock:
        if key in _CANCELLED:
            return
    running = _RUNNING.setdefault(key, [Event(), set()])
    cancelled, greenlets = running
    current = gevent.getcurrent()
    greenlets.add(current)
    try:
        client = _batch_client(key[0], batch_id, entries, options)
        if per_host:
            # host_args / copy_args of this batch's hosts, in the batch's order
            spec = spec[:2] + (dict(spec[2], **per_host),) + spec[3:]
        records = _OPERATIONS[operation](client, entries, spec, cancelled)
    except _Stop:
        if operation != "run":
            # a transfer killed half-way leaves its connections in an unknown state
            _drop_batch_client(key[0], batch_id)
        return
    except Exception as exc:  # noqa: BLE001 - e.g. a bad option: every host of the batch
        records = _failed(operation, entries, exc)
    finally:
        greenlets.discard(current)
        if not greenlets and _RUNNING.get(key) is running:
            del _RUNNING[key]
    done.put((batch_id, records))


def _drop_batch_client(client_id, batch_id):
    client = _CLIENTS.get(client_id, {}).pop(batch_id, None)
    if client is not None:
        try:
            client.close()
        except Exception:  # noqa: BLE001 - it is dropped either way
            logger.debug("closing a batch client failed", exc_info=True)


def _cancel_here(key):
    """On the pssh thread: stop the batches of call ``key``, waiting (bounded) until their
    channels are closed."""
    running = _RUNNING.get(key)
    if running is None:
        return True
    cancelled, greenlets = running
    cancelled.set()
    gevent.joinall(list(greenlets), timeout=_CANCEL_TIMEOUT)
    return True


def step(client_id, call_id, options, batches, operation, spec):
    """Start ``batches`` (on top of those of this call already running here), then wait until
    at least one batch of the call has finished; returns ``[(batch id, records)]`` of every
    finished batch not reported yet.

    ``batches``: [(batch id, [(index, host, host_config)], per-host keyword arguments)].
    """
    runtime = _pssh_thread()
    key = (client_id, call_id)
    with _runtime_lock:
        if key in _CANCELLED:
            return []
        call = _CALLS.setdefault(key, [queue.Queue(), 0])
        call[1] += len(batches)
    for batch in batches:
        runtime.call_soon(_run_batch, call[0], key, options, batch, operation, spec)
    finished = [call[0].get()]
    while True:
        try:
            finished.append(call[0].get_nowait())
        except queue.Empty:
            break
    finished = [item for item in finished if item is not _CALL_CANCELLED]
    with _runtime_lock:
        call[1] -= len(finished)
        if call[1] <= 0:
            _CALLS.pop(key, None)
    return finished


# Put on a cancelled call's queue: wakes the step waiting there.
_CALL_CANCELLED = ("cancelled", [])


def cancel_call(client_id, call_id):
    """Stop call ``call_id`` of ``client_id`` here: batches not started do not start, and
    the running ones close their commands' channels (their connections stay open for the
    client's next command). Returns once they have (at most ``_CANCEL_TIMEOUT``)."""
    key = (client_id, call_id)
    with _runtime_lock:
        _CANCELLED.add(key)
        call = _CALLS.pop(key, None)
    if _runtime is not None:
        _pssh_thread().call(_cancel_here, key)
    if call is not None:
        call[0].put(_CALL_CANCELLED)
    return True


def _forget_here(client_id):
    for client in _CLIENTS.pop(client_id, {}).values():
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing the rest matters more
            logger.debug("closing a batch client failed", exc_info=True)
    return True


def forget_client(client_id):
    """Close and drop every connection this shard holds for ``client_id``."""
    with _runtime_lock:
        for key in [key for key in _CALLS if key[0] == client_id]:
            del _CALLS[key]
        _CANCELLED.difference_update([key for key in _CANCELLED if key[0] == client_id])
    if _runtime is None:
        return True
    return _pssh_thread().call(_forget_here, client_id)
