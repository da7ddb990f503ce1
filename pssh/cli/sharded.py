"""``--shards N`` / ``--dask ADDRESS``: the same subcommands over :class:`pssh.sharded.
ShardedClient` (local shard processes or Dask workers).

A shard reports a batch of hosts at once, with their output collected (at most
``DEFAULT_OUTPUT_CAP`` characters per stream and host), so inline lines appear batch by
batch rather than line by line; transfers report when every host is done.
"""
from typing import List, Optional, Sequence

from pssh.cli.output import STDERR, STDOUT, OutputMode
from pssh.cli.progress import ProgressDisplay
from pssh.cli.results import HostResult
from pssh.cli.run import feed_lines, host_finished, stop_unfinished
from pssh.cli.transfer import drop_empty_host_dirs, fetch_paths, start_fetch

__all__ = ["make_sharded_client", "run_sharded", "copy_sharded", "fetch_sharded"]


def make_sharded_client(hosts: List[str], shards: Optional[int], dask_address: Optional[str],
                        client_kwargs):
    """The ShardedClient (imported late: it brings multiprocessing, maybe Dask)."""
    from pssh.sharded import ShardedClient
    kwargs = dict(client_kwargs)
    kwargs.pop("pool_size", None)  # each shard's client keeps its own default
    # an address: the ShardedClient makes the Dask client and closes it with itself
    return ShardedClient(hosts, shards=shards, executor=dask_address or None, **kwargs)


def _record_into(result: HostResult, record, modes: Sequence[OutputMode],
                 progress: ProgressDisplay) -> None:
    result.exit_code = record.exit_code
    result.exit_signal = getattr(record, "exit_signal", None)
    keep = any(mode.keeps_output for mode in modes)
    stderr = list(getattr(record, STDERR, ()))
    if getattr(record, "truncated", False):
        stderr.append("[pssh: output truncated at %s characters]" % record.output_cap)
    feed_lines(result, STDOUT, getattr(record, STDOUT, ()), modes, keep)
    feed_lines(result, STDERR, stderr, modes, keep)
    host_finished(result, modes, progress, record.exception)


def run_sharded(client, results: List[HostResult], command: str,
                modes: Sequence[OutputMode], progress: ProgressDisplay, **run_kwargs) -> bool:
    """As :func:`pssh.cli.run.run_on_hosts`, over shards; False when interrupted."""
    progress.start()
    completed = True
    try:
        progress.phase = "running"
        for record in client.iter_run_command(command, **run_kwargs):
            _record_into(results[record.index], record, modes, progress)
    except KeyboardInterrupt:
        completed = False
        client.terminate()
        stop_unfinished(results, ())
    finally:
        progress.stop()
    for mode in modes:
        mode.finish(results)
    return completed


def _transfer_records(records, results: List[HostResult], progress: ProgressDisplay) -> None:
    for record in records:
        result = results[record.index]
        if record.exception is None:
            result.exit_code = 0
        result.finish(record.exception)
        progress.host_done(result)


def copy_sharded(client, results, source, destination, progress, recurse=False,
                 scp=False) -> bool:
    method = client.scp_send if scp else client.copy_file
    return _sharded_transfer(client, results, progress, "copying",
                             lambda: method(source, destination, recurse=recurse))


def fetch_sharded(client, results, source, destdir, progress, recurse=False,
                  scp=False) -> bool:
    paths = fetch_paths(destdir, source, results)
    try:
        return _sharded_transfer(client, results, progress, "fetching",
                                 lambda: start_fetch(client, source, paths, recurse, scp))
    finally:
        drop_empty_host_dirs(paths, results)


def _sharded_transfer(client, results, progress, phase, start) -> bool:
    """Run the transfer ``start()`` begins, recording each host; False when interrupted."""
    progress.phase = phase
    progress.start()
    try:
        _transfer_records(start(), results, progress)
        return True
    except KeyboardInterrupt:
        client.terminate()
        stop_unfinished(results, ())
        return False
    finally:
        progress.stop()
