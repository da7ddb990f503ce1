"""Local shards: one single-process ``ProcessPoolExecutor`` per shard (spawn start method).

One executor per shard rather than one pool of N processes: a task always runs in the
process that holds its batch's connections (host affinity), and a process that dies breaks
only its own executor, so only its hosts fail.
"""
import concurrent.futures
import logging
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import List

from pssh.sharded import shard

__all__ = ["LocalShards"]

logger = logging.getLogger(__name__)

# How long close() lets a shard close its connections before the process is killed.
_CLOSE_TIMEOUT = 10.0


def _parent_log_level():
    """The ``pssh`` logger's level when the application configured logging, else None."""
    if not logging.getLogger().handlers and not logging.getLogger("pssh").handlers:
        return None
    return logging.getLogger("pssh").getEffectiveLevel()


class LocalShards:
    """``count`` shard processes on this machine."""

    def __init__(self, count: int):
        if count < 1:
            raise ValueError("shards must be at least 1, got %r" % (count,))
        context = multiprocessing.get_context("spawn")
        level = _parent_log_level()
        # A shard's one task slot is taken by its running step: cancels take this way in.
        self._controls = [context.SimpleQueue() for _ in range(count)]
        self._executors = [ProcessPoolExecutor(max_workers=1, mp_context=context,
                                               initializer=shard.init_local_shard,
                                               initargs=(level, control))
                           for control in self._controls]
        # Asked first, so that the pid is known (for kill) as soon as the process runs.
        self._pid_futures = [executor.submit(shard.shard_pid) for executor in self._executors]
        self.alive = [True] * count

    @property
    def count(self) -> int:
        return len(self._executors)

    def name(self, index: int) -> str:
        return "local shard %d" % index

    @property
    def pids(self) -> List[int]:
        """Process ids of the shards (waits for processes still starting)."""
        return [future.result() for future in self._pid_futures]

    # how often a waiting dispatcher looks for shard processes that died without a word
    poll_seconds = 0.2

    def refresh(self):
        """Local shards are started once: a dead one is not replaced."""

    def submit(self, index, func, *args):
        return self._executors[index].submit(func, *args)

    def cancel(self, index, client_id, call_id):
        """Ask shard ``index`` to stop call ``call_id`` (see :func:`shard.cancel_call`);
        its step in flight returns once the call's channels are closed."""
        if self.alive[index]:
            self._controls[index].put(("cancel", client_id, call_id))

    def is_loss(self, index, exc) -> bool:
        """True when ``exc`` (a task's failure) means the shard process is gone."""
        return isinstance(exc, BrokenProcessPool)

    def vanished(self, indexes):
        """Shards gone without a word: none here (a dead process breaks its pool, which
        fails its task)."""
        return []

    def close(self, client_id):
        """Close the connections in every shard, then stop the processes."""
        pending = [self._executors[index].submit(shard.forget_client, client_id)
                   for index in range(self.count) if self.alive[index]]
        # one deadline for all: shards stuck behind a step in flight are killed below
        # together, not one _CLOSE_TIMEOUT after another
        done, stuck = concurrent.futures.wait(pending, timeout=_CLOSE_TIMEOUT)
        for future in done:
            if future.exception() is not None:
                logger.debug("a shard did not close its connections",
                             exc_info=future.exception())
        if stuck:
            logger.debug("%d shard(s) did not close their connections within %s s",
                         len(stuck), _CLOSE_TIMEOUT)
        self.kill(client_id)

    def kill(self, client_id=None):
        """Kill every shard process at once (Ctrl-C): the kernel closes their sockets, so
        the servers end those sessions."""
        for future in self._pid_futures:
            pid = None
            try:
                pid = future.result(timeout=_CLOSE_TIMEOUT)
            except Exception:  # noqa: BLE001 - never started or already broken
                pass
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for executor in self._executors:
            executor.shutdown(wait=True, cancel_futures=True)
        for control in self._controls:
            control.close()
        self.alive = [False] * self.count
