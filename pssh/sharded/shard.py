"""What runs inside a shard process (a local worker process or a Dask worker).

A shard keeps one :class:`pssh.ParallelSSHClient` per batch of hosts it was given, keyed by
the sharded client's id and the batch id, for as long as that sharded client lives: a later
command on the same hosts reuses the open connections. Every function here is a plain
module-level function so that it pickles by reference for both executors.

All pssh work of a process happens on one thread: the process's main thread for local
shards, and one dedicated thread per process for Dask workers (their tasks run on a thread
pool, and gevent's hub and a client's sockets belong to the thread that created them).
"""
import logging
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import gevent

from pssh.parallel import ParallelSSHClient, raise_fd_limit
from pssh.sharded.records import HostResult, TransferResult, collect_output

__all__ = ["init_local_shard", "shard_pid", "run_batches", "forget_client"]

logger = logging.getLogger(__name__)

# Descriptors a shard asks for: its batches together may hold thousands of connections.
_WANTED_FDS = 1 << 16

# client id -> {batch id: ParallelSSHClient}
_CLIENTS = {}
_pssh_thread = None
_pssh_thread_lock = threading.Lock()


def init_local_shard(log_level):
    """Initializer of a local shard process: Ctrl-C is the parent's to handle (it kills the
    shards), logging follows the parent's ``pssh`` level, and the open-file limit is raised."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if log_level is not None:
        logging.basicConfig(level=log_level,
                            format="%(asctime)s %(processName)s %(name)s %(levelname)s: "
                                   "%(message)s")
    raise_fd_limit(_WANTED_FDS)


def shard_pid():
    return os.getpid()


def _on_pssh_thread(func, *args):
    """Run ``func(*args)`` on this process's one pssh thread (see the module docstring)."""
    global _pssh_thread
    if threading.current_thread() is threading.main_thread():
        return func(*args)
    with _pssh_thread_lock:
        if _pssh_thread is None:
            raise_fd_limit(_WANTED_FDS)
            _pssh_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pssh-shard")
    return _pssh_thread.submit(func, *args).result()


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


def _run_command(client, entries, spec):
    """HostResults of one batch for ``spec`` = (command, (), run kwargs, (cap, spool dir))."""
    command, _args, kwargs, (cap, spool_dir) = spec
    outputs = client.run_command(command, stop_on_errors=False, **kwargs)
    readers = [gevent.spawn(collect_output, index, host_out, cap, spool_dir,
                            lambda out=host_out: client.join([out]))
               for (index, _host, _config), host_out in zip(entries, outputs)]
    gevent.joinall(readers)
    return [reader.get() for reader in readers]


def _transfer(client, entries, spec):
    """TransferResults of one batch for ``spec`` = (method name, args, kwargs, None)."""
    method, args, kwargs, _extra = spec
    greenlets = getattr(client, method)(*args, **kwargs)
    gevent.joinall(greenlets)
    return [TransferResult(index, host, getattr(config, "alias", None),
                           exception=greenlet.exception)
            for (index, host, config), greenlet in zip(entries, greenlets)]


_OPERATIONS = {"run": _run_command, "transfer": _transfer}


def _run_batch(client_id, options, batch, operation, spec):
    batch_id, entries, per_host = batch
    try:
        client = _batch_client(client_id, batch_id, entries, options)
    except Exception as exc:  # noqa: BLE001 - e.g. a bad option fails every host of the batch
        return [_failed(operation, index, host, config, exc) for index, host, config in entries]
    if per_host:
        # host_args / copy_args for this batch's hosts only, in the batch's order.
        spec = spec[:2] + (dict(spec[2], **per_host),) + spec[3:]
    return _OPERATIONS[operation](client, entries, spec)


def _failed(operation, index, host, config, exc):
    alias = getattr(config, "alias", None)
    if operation == "run":
        return HostResult(index, host, alias, exception=exc)
    return TransferResult(index, host, alias, exception=exc)


def _run_batches_here(client_id, options, batches, operation, spec):
    workers = [gevent.spawn(_run_batch, client_id, options, batch, operation, spec)
               for batch in batches]
    gevent.joinall(workers, raise_error=True)
    return [record for worker in workers for record in worker.get()]


def run_batches(client_id, options, batches, operation, spec):
    """Run ``operation`` on every batch at once; returns the records of all their hosts.

    ``batches``: [(batch id, [(index, host, host_config)], per-host keyword arguments)].
    """
    return _on_pssh_thread(_run_batches_here, client_id, options, batches, operation, spec)


def _forget_here(client_id):
    for client in _CLIENTS.pop(client_id, {}).values():
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing the rest matters more
            logger.debug("closing a batch client failed", exc_info=True)
    return True


def forget_client(client_id):
    """Close and drop every connection this shard holds for ``client_id``."""
    return _on_pssh_thread(_forget_here, client_id)
