"""ShardedClient: many hosts over several processes (local shards or Dask workers).

Hosts are cut into small batches. The first command hands batches to whichever shard has
room (a work queue: a slow shard does not hold the others); each batch then stays with the
shard that ran it, whose :class:`pssh.ParallelSSHClient` keeps that batch's connections
open, so later commands go to the same shard and reuse them. A shard that dies fails only
the hosts it had not reported, with :class:`ShardLostError`; its batches move to the other
shards for later commands. A consumer that leaves a run early cancels it in the shards.
The dispatcher waits on the calling thread's gevent hub when there is one, so the caller's
other greenlets keep running (:mod:`pssh.sharded.waiting`).
"""
import logging
import os
import queue
import time
import uuid
from collections import deque
from typing import Iterator, List, Optional

from pssh.exceptions import HostArgumentError
from pssh.parallel import ParallelSSHClient
from pssh.sharded import shard
from pssh.sharded.local import LocalShards
from pssh.sharded.records import (
    DEFAULT_OUTPUT_CAP, HostResult, ShardLostError, TransferResult)
from pssh.sharded.waiting import Inbox

__all__ = ["ShardedClient"]

logger = logging.getLogger(__name__)

# Batches a shard runs at once while batches wait for a shard (the first command).
_BATCHES_IN_FLIGHT = 4
# Batches per shard aimed for, so that the work queue can balance; and the size bounds.
_BATCHES_PER_SHARD = 4
_MAX_BATCH = 100
# How long a dispatcher whose consumer left waits for the shards to stop its batches.
_CANCEL_WAIT = 15.0


class _Batch:
    __slots__ = ("id", "entries", "shard")

    def __init__(self, batch_id, entries):
        self.id = batch_id
        self.entries = entries          # [(index, host, host_config or None)]
        self.shard = None               # shard index once a shard holds its connections


def _host_list(hosts):
    if hosts is None or isinstance(hosts, (str, bytes)):
        raise TypeError("hosts must be a list or other iterable of host names, not %r"
                        % (hosts,))
    return list(hosts)


def _split(entries, shard_count, batch_size):
    """Batches of ``batch_size`` entries; by default ``_BATCHES_PER_SHARD`` per shard (more
    when they would exceed ``_MAX_BATCH``), sizes differing by at most one, so that shards
    taking turns get equal shares."""
    if batch_size:
        return [entries[start:start + batch_size]
                for start in range(0, len(entries), batch_size)]
    count = min(len(entries), max(shard_count * _BATCHES_PER_SHARD,
                                  -(-len(entries) // _MAX_BATCH)))
    if not count:
        return []
    size, larger = divmod(len(entries), count)
    parts, start = [], 0
    for number in range(count):
        end = start + size + (1 if number < larger else 0)
        parts.append(entries[start:end])
        start = end
    return parts


def _make_shards(shards, executor, host_count):
    if executor is None:
        # never more processes than hosts: an idle shard costs a process and its memory
        return LocalShards(max(1, min(shards or os.cpu_count() or 1, host_count)))
    from pssh.sharded.dask_shards import DaskShards
    if isinstance(executor, str):
        return DaskShards.connect(executor, limit=shards)
    if hasattr(executor, "scheduler_info") and hasattr(executor, "submit"):
        return DaskShards(executor, limit=shards)
    raise TypeError("executor must be None (local processes), a distributed.Client or a "
                    "Dask scheduler address, not %s" % type(executor).__name__)


class ShardedClient:
    """Runs commands and copies on ``hosts`` over several shard processes.

    ``shards``: number of local shard processes (default: one per core; never more than
    hosts), or with a Dask ``executor`` (a ``distributed.Client``, or a scheduler address
    such as ``"tcp://10.0.0.5:8786"`` for a client of this ShardedClient's own) the most
    workers to use. ``batch_size``: hosts
    per batch (default: about four batches per shard, at most 100 hosts). ``output_cap``:
    characters kept per stream and host (None: no cap). ``spool_dir``: write each host's
    output to files there instead of keeping it (on the shard's machine). Every other
    keyword goes to each shard's :class:`pssh.ParallelSSHClient` as it is: key paths are
    read in the shards, and key bytes or passwords travel only when they were passed.
    """

    def __init__(self, hosts, shards: Optional[int] = None, executor=None,
                 batch_size: Optional[int] = None, output_cap: Optional[int] = DEFAULT_OUTPUT_CAP,
                 spool_dir: Optional[str] = None, **client_kwargs):
        self._hosts = _host_list(hosts)
        host_config = client_kwargs.pop("host_config", None)
        if host_config is not None and len(host_config) != len(self._hosts):
            raise ValueError("host_config has %s entries for %s hosts"
                             % (len(host_config), len(self._hosts)))
        # Options are checked here, once, so that a mistake fails the call, not every host.
        ParallelSSHClient([], **client_kwargs)
        self._options = client_kwargs
        self.output_cap = output_cap
        self.spool_dir = spool_dir
        if spool_dir is not None:
            os.makedirs(spool_dir, exist_ok=True)
        self._id = uuid.uuid4().hex
        self._shards = _make_shards(shards, executor, len(self._hosts))
        configs = host_config or [None] * len(self._hosts)
        entries = list(zip(range(len(self._hosts)), self._hosts, configs))
        self._batches = [_Batch(number, part) for number, part in enumerate(
            _split(entries, self._shards.count, batch_size))]
        self._closed = False

    @property
    def hosts(self) -> List[str]:
        return list(self._hosts)

    @property
    def shard_count(self) -> int:
        """Shards that can take work now (lost ones not counted; a Dask worker that joined
        the cluster counts from the next command on)."""
        return sum(self._shards.alive)

    @property
    def shard_pids(self) -> List[int]:
        """Process ids of the local shards (empty with Dask)."""
        return self._shards.pids if isinstance(self._shards, LocalShards) else []

    # commands ------------------------------------------------------------------------------

    def iter_run_command(self, command: str, sudo: bool = False, user: Optional[str] = None,
                         use_pty: bool = False, host_args=None, shell: Optional[str] = None,
                         encoding: str = "utf-8", read_timeout: Optional[float] = None,
                         idle_timeout: Optional[float] = None) -> Iterator[HostResult]:
        """Run ``command`` on every host; yields each host's :class:`HostResult` as its batch
        finishes (completion order; ``result.index`` is the host's position).

        Leaving the iterator before its end (``break``, ``close()``, an exception in the
        loop, the iterator collected) stops the run: batches not started never start, and
        the running ones close their commands' channels; their connections stay open for
        the next command. A remote command without a PTY is not signalled: it goes on until
        it ends or writes to its closed output."""
        per_host = self._per_host("host_args", host_args, "host arguments")
        kwargs = {"sudo": sudo, "user": user, "use_pty": use_pty, "shell": shell,
                  "encoding": encoding, "read_timeout": read_timeout,
                  "idle_timeout": idle_timeout}
        spec = (command, (), kwargs, (self.output_cap, self.spool_dir))
        return self._dispatch("run", spec, per_host)

    def run_command(self, command: str, **kwargs) -> List[HostResult]:
        """:meth:`iter_run_command` collected: one :class:`HostResult` per host, in host order."""
        return _in_host_order(self.iter_run_command(command, **kwargs))

    as_completed = iter_run_command

    # copies --------------------------------------------------------------------------------

    def copy_file(self, local_file, remote_file, recurse=False,
                  copy_args=None) -> List[TransferResult]:
        """SFTP upload to every host (``local_file`` is read on the shard's machine)."""
        return self._copy("copy_file", (local_file, remote_file), {"recurse": recurse},
                          copy_args)

    def copy_remote_file(self, remote_file, local_file, recurse=False, suffix_separator="_",
                         copy_args=None, encoding="utf-8") -> List[TransferResult]:
        """SFTP download from every host to ``local_file + suffix_separator + host`` (or the
        ``copy_args`` paths), written on the shard's machine."""
        return self._copy("copy_remote_file", (remote_file, local_file),
                          {"recurse": recurse, "suffix_separator": suffix_separator,
                           "encoding": encoding}, copy_args)

    def scp_send(self, local_file, remote_file, recurse=False,
                 copy_args=None) -> List[TransferResult]:
        """SCP upload to every host."""
        return self._copy("scp_send", (local_file, remote_file), {"recurse": recurse},
                          copy_args)

    def scp_recv(self, remote_file, local_file, recurse=False, copy_args=None,
                 suffix_separator="_") -> List[TransferResult]:
        """SCP download from every host (per-host file names as copy_remote_file)."""
        return self._copy("scp_recv", (remote_file, local_file),
                          {"recurse": recurse, "suffix_separator": suffix_separator},
                          copy_args)

    def _copy(self, method, args, kwargs, copy_args):
        per_host = self._per_host("copy_args", copy_args, "per-host copy arguments")
        return _in_host_order(self._dispatch("transfer", (method, args, kwargs, None),
                                             per_host))

    def _per_host(self, name, values, what):
        if not values:
            return None
        if len(values) < len(self._hosts):
            raise HostArgumentError("Number of %s (%s) is less than the number of hosts (%s)",
                                    what, len(values), len(self._hosts))
        return name, values

    # dispatching ---------------------------------------------------------------------------

    def _dispatch(self, operation, spec, per_host):
        if self._closed:
            raise ValueError("this ShardedClient is closed")
        self._shards.refresh()
        logger.debug("%s on %d hosts in %d batches over %d shards", operation,
                     len(self._hosts), len(self._batches), self._shards.count)
        return _Dispatch(self, operation, spec, per_host).results()

    def _task_batches(self, batches, per_host):
        if per_host is None:
            return [(batch.id, batch.entries, None) for batch in batches]
        name, values = per_host
        return [(batch.id, batch.entries, {name: [values[index] for index, _h, _c in
                                                  batch.entries]})
                for batch in batches]

    def _lost_records(self, operation, batches, shard_index, cause):
        hosts = [host for batch in batches for _index, host, _config in batch.entries]
        shown = ", ".join(map(str, hosts[:10])) + (" and %d more" % (len(hosts) - 10)
                                                     if len(hosts) > 10 else "")
        name = self._shards.name(shard_index) if shard_index is not None else "no shard"
        record = HostResult if operation == "run" else TransferResult
        records = []
        for batch in batches:
            for index, host, config in batch.entries:
                error = ShardLostError(
                    "%s was lost before host %s reported (%s unfinished host(s) on it: %s)",
                    name, host, len(hosts), shown, host=host, cause=cause, shard=name,
                    hosts=hosts)
                records.append(record(index, host, getattr(config, "alias", None),
                                      exception=error))
        return records

    # lifecycle -----------------------------------------------------------------------------

    def close(self):
        """Close every connection in every shard; local shard processes exit."""
        if not self._closed:
            self._closed = True
            self._shards.close(self._id)

    def terminate(self):
        """Stop at once (as on Ctrl-C): local shard processes are killed (their connections
        drop); Dask tasks are cancelled and the workers drop this client's connections."""
        if not self._closed:
            self._closed = True
            self._shards.kill(self._id)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def _in_host_order(records):
    return sorted(records, key=lambda record: record.index)


class _Dispatch:
    """One command or copy over every batch: the work queue and the affinity rules.

    Each shard has at most one :func:`pssh.sharded.shard.step` task in flight; it carries
    the batches handed to that shard since the last one and returns the batches that have
    finished there. Batches a shard already holds go back to it; the others wait in a queue
    and go to the shard with the fewest batches running, up to ``_BATCHES_IN_FLIGHT``.
    """

    def __init__(self, client, operation, spec, per_host):
        self.client = client
        self.shards = client._shards
        self.operation = operation
        self.spec = spec
        self.per_host = per_host
        self.call_id = uuid.uuid4().hex
        self.done = None  # the Inbox of finished steps, made on the iterating thread
        count = self.shards.count
        self.running = [dict() for _ in range(count)]   # batch id -> batch, per shard
        self.to_send = [[] for _ in range(count)]       # batches for the next step, per shard
        self.stepping = [None] * count                  # the shard's step in flight, if any
        self.waiting = deque()                          # batches no live shard holds

    def start(self):
        for batch in self.client._batches:
            if batch.shard is not None and self.shards.alive[batch.shard]:
                self.to_send[batch.shard].append(batch)
            else:
                batch.shard = None
                self.waiting.append(batch)

    def load(self, index):
        return len(self.running[index]) + len(self.to_send[index])

    def fill(self):
        """Hand waiting batches to live shards with room; records of batches no shard can
        take any more (every shard lost)."""
        live = [index for index in range(self.shards.count) if self.shards.alive[index]]
        if not live:
            lost, self.waiting = list(self.waiting), deque()
            return self.client._lost_records(self.operation, lost, None, None) if lost else []
        while self.waiting:
            index = min(live, key=self.load)
            if self.load(index) >= _BATCHES_IN_FLIGHT:
                break
            self.to_send[index].append(self.waiting.popleft())
        return []

    def send_steps(self):
        for index in range(self.shards.count):
            if self.stepping[index] is not None or not self.shards.alive[index]:
                continue
            batches, self.to_send[index] = self.to_send[index], []
            if not batches and not self.running[index]:
                continue
            for batch in batches:
                batch.shard = index
                self.running[index][batch.id] = batch
            future = self.shards.submit(
                index, shard.step, self.client._id, self.call_id, self.client._options,
                self.client._task_batches(batches, self.per_host), self.operation, self.spec)
            self.stepping[index] = future
            future.add_done_callback(lambda finished, index=index: self.done.put((index,
                                                                                  finished)))

    def results(self):
        self.done = Inbox()
        try:
            self.start()
            yield from self.fill()
            self.send_steps()
            while any(future is not None for future in self.stepping):
                try:
                    index, future = self.done.get(timeout=self.shards.poll_seconds)
                except queue.Empty:
                    yield from self.drop_vanished()
                    continue
                if future is not self.stepping[index]:
                    continue  # a step already given up (its shard vanished)
                self.stepping[index] = None
                try:
                    finished = future.result()
                except Exception as exc:  # noqa: BLE001 - the shard failed, not one host
                    yield from self.lost(index, exc)
                else:
                    for batch_id, records in finished:
                        self.running[index].pop(batch_id, None)
                        yield from records
                yield from self.fill()
                self.send_steps()
        except KeyboardInterrupt:
            logger.info("interrupted: stopping every shard")
            self.client.terminate()
            raise
        finally:
            try:
                if not self.client._closed:
                    self.cancel()
            except Exception:  # noqa: BLE001 - must not hide why the consumer left
                logger.warning("stopping the shards' batches failed", exc_info=True)
            finally:
                self.done.close()

    def cancel(self):
        """The consumer left before the end: no batch starts any more, the shards stop
        those running, and the steps in flight are awaited (bounded) so that the shards
        are free for the client's next command."""
        self.waiting.clear()
        self.to_send = [[] for _ in range(self.shards.count)]
        busy = [index for index in range(self.shards.count) if self.shards.alive[index]
                and (self.stepping[index] is not None or self.running[index])]
        if not busy:
            return
        logger.debug("consumer left: stopping the call on %d shard(s)", len(busy))
        for index in busy:
            self.shards.cancel(index, self.client._id, self.call_id)
            self.running[index].clear()
        deadline = time.monotonic() + _CANCEL_WAIT
        while any(future is not None for future in self.stepping):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                logger.warning("shards did not stop a cancelled call within %ss", _CANCEL_WAIT)
                return
            try:
                index, future = self.done.get(timeout=min(remaining,
                                                            self.shards.poll_seconds))
            except queue.Empty:
                for index in self.shards.vanished(
                        [i for i, f in enumerate(self.stepping) if f is not None]):
                    self.stepping[index] = None
                continue
            if future is self.stepping[index]:
                self.stepping[index] = None

    def drop_vanished(self):
        """Fail the hosts of shards that left without failing their step (a Dask worker
        that died: its pinned task would wait for it forever)."""
        stepping = [index for index, future in enumerate(self.stepping) if future is not None]
        for index in self.shards.vanished(stepping):
            future, self.stepping[index] = self.stepping[index], None
            future.cancel()
            yield from self.lost(index, ShardLostError("%s left the cluster",
                                                       self.shards.name(index)))
        yield from self.fill()
        self.send_steps()

    def lost(self, index, exc):
        """Every batch running on shard ``index`` fails; a dead shard takes no more."""
        if self.shards.is_loss(index, exc):
            logger.warning("%s was lost: %s", self.shards.name(index), exc)
            self.shards.alive[index] = False
            self.waiting.extend(self.to_send[index])
            self.to_send[index] = []
        batches = list(self.running[index].values())
        self.running[index].clear()
        for batch in batches:
            batch.shard = None
        return self.client._lost_records(self.operation, batches, index, exc)
