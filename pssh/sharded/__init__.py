"""Sharded execution: one :class:`pssh.ParallelSSHClient` per shard process, local processes
(default) or Dask workers, with picklable per-host records (see README.rst, "Many hosts on
many cores")."""
from pssh.sharded.client import ShardedClient
from pssh.sharded.dask_shards import LEAN_DASK_CONFIG
from pssh.sharded.records import DEFAULT_OUTPUT_CAP, HostResult, ShardLostError, TransferResult

__all__ = ["ShardedClient", "HostResult", "TransferResult", "ShardLostError",
           "DEFAULT_OUTPUT_CAP", "LEAN_DASK_CONFIG"]
