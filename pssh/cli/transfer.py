"""``pssh copy`` and ``pssh fetch``: one transfer per host through the library's parallel
SFTP (or SCP) methods, with bytes counted from their progress callbacks.

``fetch SRC DESTDIR`` writes host *h*'s copy to ``DESTDIR/<h>/<basename of SRC>``.
"""
import os
import posixpath
from typing import Dict, List

import gevent

from pssh.cli.progress import ProgressDisplay
from pssh.cli.results import HostResult
from pssh.cli.run import interrupt_main_on_sigint, stop_unfinished

__all__ = ["copy_to_hosts", "fetch_from_hosts", "fetch_paths", "start_fetch"]


class _ByteCounter:
    """The progress callback of the library's transfers: bytes done per host and file,
    summed into each host's result."""

    def __init__(self, results: List[HostResult]):
        self.by_host: Dict[str, List[HostResult]] = {}
        for result in results:
            self.by_host.setdefault(result.host, []).append(result)
        self.files: Dict[tuple, int] = {}
        self.totals: Dict[str, int] = {}

    def __call__(self, host, path, done, total):
        # called about once per MiB of every file: keep each host's sum current instead of
        # adding up every file of every host again
        key = (host, path)
        host_total = self.totals.get(host, 0) + done - self.files.get(key, 0)
        self.files[key] = done
        self.totals[host] = host_total
        for result in self.by_host.get(host, ()):
            result.bytes_done = host_total


def _wait(greenlets, results: List[HostResult], progress: ProgressDisplay) -> bool:
    def finished(index, greenlet):
        result = results[index]
        if greenlet.exception is None:
            result.exit_code = 0
        result.finish(greenlet.exception)
        progress.host_done(result)

    for index, greenlet in enumerate(greenlets):
        greenlet.rawlink(lambda greenlet, index=index: finished(index, greenlet))
    handler = interrupt_main_on_sigint()
    try:
        gevent.joinall(greenlets)
        return True
    except KeyboardInterrupt:
        stop_unfinished(results, greenlets)
        return False
    finally:
        handler.cancel()


def copy_to_hosts(client, results: List[HostResult], source: str, destination: str,
                  progress: ProgressDisplay, recurse: bool = False, scp: bool = False) -> bool:
    """Upload ``source`` to ``destination`` on every host; False when interrupted."""
    progress.phase = "copying"
    counter = _ByteCounter(results)
    progress.start()
    try:
        method = client.scp_send if scp else client.copy_file
        greenlets = method(source, destination, recurse=recurse, progress=counter)
        return _wait(greenlets, results, progress)
    finally:
        progress.stop()


def fetch_paths(destdir: str, source: str, results: List[HostResult]) -> List[str]:
    """Each host's local path, ``destdir/<label>/<basename of source>``; the directories
    are created."""
    name = posixpath.basename(source.rstrip("/")) or "root"
    paths = [os.path.join(destdir, result.label, name) for result in results]
    for path in paths:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    return paths


def drop_empty_host_dirs(paths: List[str], results: List[HostResult]) -> None:
    """Remove the ``destdir/<label>/`` made for a host whose download failed and left it
    empty, so that the directories left are those of hosts that delivered something."""
    for path, result in zip(paths, results):
        if result.error is not None or result.interrupted:
            try:
                os.rmdir(os.path.dirname(path))
            except OSError:
                pass  # not empty (a partial tree stays, reported as failed) or gone


def start_fetch(client, source: str, paths: List[str], recurse: bool, scp: bool, **extra):
    """Call the client's download method (SFTP or SCP) with one local path per host."""
    if scp:
        return client.scp_recv(source, None, recurse=recurse, copy_args=[
            {"local_file": path, "remote_file": source} for path in paths], **extra)
    # copy_args are %-formatted into both paths: escape the remote one's %.
    return client.copy_remote_file(source.replace("%", "%%"), "%(local)s", recurse=recurse,
                                   copy_args=[{"local": path} for path in paths], **extra)


def fetch_from_hosts(client, results: List[HostResult], source: str, destdir: str,
                     progress: ProgressDisplay, recurse: bool = False,
                     scp: bool = False) -> bool:
    """Download ``source`` from every host into ``destdir/<label>/``; False when
    interrupted."""
    progress.phase = "fetching"
    paths = fetch_paths(destdir, source, results)
    counter = _ByteCounter(results)
    progress.start()
    try:
        greenlets = start_fetch(client, source, paths, recurse, scp, progress=counter)
        return _wait(greenlets, results, progress)
    finally:
        progress.stop()
        drop_empty_host_dirs(paths, results)
