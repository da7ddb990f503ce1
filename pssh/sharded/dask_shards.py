"""Dask shards: one shard per worker of a ``distributed.Client`` the caller passes.

Each task is pinned to its worker (``workers=[address]``, no other worker allowed), so a
batch's connections stay in the worker process that opened them (see
:mod:`pssh.sharded.shard`). The cluster belongs to the caller: closing the sharded client
closes its connections on the workers but leaves the workers running (a ``distributed.Client``
made from a scheduler address is closed with it).
"""
import logging
from typing import List

from pssh.sharded import shard

__all__ = ["DaskShards", "LEAN_DASK_CONFIG"]

# Dask settings for a cluster that runs pssh shards, to pass to ``dask.config.set`` before
# the cluster starts (or put in the workers' Dask configuration). Every process of a cluster
# wakes up many times a second by default: the worker profiler samples every thread 100
# times a second, the event-loop check 50 times, the memory monitor 10 times. A pssh shard
# is one long task per batch whose work is on the network, so those samples tell nothing,
# and they cost a 2-worker LocalCluster about 0.047 CPU-seconds per second (0.010 with
# these). Pinned tasks make work stealing pointless.
LEAN_DASK_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.scheduler.work-stealing": False,
}

logger = logging.getLogger(__name__)

class DaskShards:
    """The workers of ``client`` (a ``distributed.Client``), at most ``limit`` of them.

    The worker list comes from ``Client.nthreads()``, one small answer per address:
    ``scheduler_info()`` fetches every worker's metrics each time, which cost a waiting
    dispatcher (polling for dead workers) as much CPU as a tenth of the hosts' work."""

    # how often a waiting dispatcher asks whether a worker left (see vanished)
    poll_seconds = 0.5

    def __init__(self, client, limit=None, owned=False):
        self._client = client
        self._owned = owned
        workers = sorted(client.nthreads())
        if limit is not None:
            workers = workers[:limit]
        if not workers:
            raise ValueError("the Dask cluster has no worker")
        self._limit = limit
        self._workers = workers
        self._futures = set()
        self.alive = [True] * len(workers)

    def refresh(self):
        """Before a command: take the workers that joined the cluster since (a worker that
        its nanny restarted comes back under a new address), up to ``limit`` live ones. A
        lost worker keeps its index, marked dead, so that records name it."""
        try:
            present = sorted(self._client.nthreads())
        except Exception:  # noqa: BLE001 - no scheduler: the command fails its hosts
            return
        for address in present:
            if self._limit is not None and sum(self.alive) >= self._limit:
                break
            if address in self._workers:
                index = self._workers.index(address)
                if not self.alive[index]:  # back at the same address: a new process
                    self.alive[index] = True
                continue
            logger.info("Dask worker %s joined: it takes batches from now on", address)
            self._workers.append(address)
            self.alive.append(True)

    @classmethod
    def connect(cls, address, limit=None):
        """Shards on the cluster whose scheduler is at ``address``, through a
        ``distributed.Client`` closed with them."""
        import distributed
        client = distributed.Client(address, set_as_default=False)
        try:
            return cls(client, limit=limit, owned=True)
        except BaseException:
            client.close()
            raise

    @property
    def count(self) -> int:
        return len(self._workers)

    @property
    def workers(self) -> List[str]:
        return list(self._workers)

    def name(self, index: int) -> str:
        return "Dask worker %s" % self._workers[index]

    def submit(self, index, func, *args):
        future = self._client.submit(func, *args, workers=[self._workers[index]],
                                     allow_other_workers=False, pure=False)
        self._futures.add(future)
        future.add_done_callback(self._futures.discard)
        return future

    def cancel(self, index, client_id, call_id):
        """Stop call ``call_id`` on worker ``index`` (see :func:`shard.cancel_call`), through
        Client.run: the worker's task thread is held by the step waiting for that call."""
        if not self.alive[index]:
            return
        try:
            self._client.run(shard.cancel_call, client_id, call_id,
                             workers=[self._workers[index]], on_error="ignore")
        except Exception:  # noqa: BLE001 - a lost worker took the call with it
            logger.debug("cancelling on %s failed", self.name(index), exc_info=True)

    def is_loss(self, index, exc) -> bool:
        """True when the worker is no longer part of the cluster."""
        try:
            return self._workers[index] not in self._client.nthreads()
        except Exception:  # noqa: BLE001 - no scheduler: nothing can run there any more
            return True

    def vanished(self, indexes):
        """Those of ``indexes`` whose worker the scheduler no longer lists (a task pinned to
        a dead worker would wait for it forever)."""
        try:
            present = self._client.nthreads()
        except Exception:  # noqa: BLE001 - no scheduler: every worker is out of reach
            return list(indexes)
        return [index for index in indexes if self._workers[index] not in present]

    def _forget_on_workers(self, client_id):
        # Client.run reaches the workers outside their task threads, which a running step
        # may hold until its batches end; dropping the connections ends those batches.
        workers = [address for index, address in enumerate(self._workers)
                   if self.alive[index]]
        self.alive = [False] * self.count
        if workers:
            try:
                self._client.run(shard.forget_client, client_id, workers=workers,
                                 on_error="ignore")
            except Exception:  # noqa: BLE001 - a lost worker took its connections with it
                logger.debug("Dask workers did not close their connections", exc_info=True)

    def close(self, client_id):
        """Close this client's connections on every live worker (the workers keep running)."""
        self._forget_on_workers(client_id)
        self._release()

    def _release(self):
        if self._owned:
            self._owned = False
            self._client.close()

    def kill(self, client_id):
        """Ctrl-C: cancel every task of this client not finished and close its connections
        on the workers at once, which also ends the batches still running there."""
        futures, self._futures = list(self._futures), set()
        if futures:
            self._client.cancel(futures)
        self._forget_on_workers(client_id)
        self._release()
