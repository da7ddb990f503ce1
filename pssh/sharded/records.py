"""Per-host records of a sharded run: small, picklable, built inside the shard.

A shard turns each :class:`pssh.output.HostOutput` into a :class:`HostResult` before it
leaves the shard process, so only plain data crosses the process boundary: lines (capped, or
spooled to files), exit code and signal, and the exception (pssh errors pickle with their
attributes).
"""
import os
import re
from collections import deque
from dataclasses import dataclass
from typing import Optional, Tuple

from pssh.core.greenlets import spawn_quiet
from pssh.exceptions import PSSHError

__all__ = ["HostResult", "TransferResult", "ShardLostError", "DEFAULT_OUTPUT_CAP",
           "collect_output", "spool_path"]

# Characters kept per stream and host when the caller gives no cap: bounded memory for
# very many hosts, plenty for command output meant to be read by people.
DEFAULT_OUTPUT_CAP = 1 << 20

_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


class ShardLostError(PSSHError, RuntimeError):
    """The shard process (or Dask worker) running this host died before it reported.

    ``hosts`` lists every host the lost shard had not finished; ``shard`` names the shard.
    Whether the command ran on a host is unknown.
    """

    shard = None
    hosts = ()

    def __init__(self, *args, shard=None, hosts=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.shard = shard
        self.hosts = tuple(hosts)


@dataclass(frozen=True)
class HostResult:
    """What one host did for one ``run_command`` of a :class:`ShardedClient`.

    ``stdout``/``stderr`` are the decoded lines, without line endings, at most
    ``output_cap`` characters per stream (a line ending counts as one); ``truncated`` is true
    when lines were dropped for the cap. With a spool directory the lines are in
    ``stdout_file``/``stderr_file`` instead and the tuples are empty. ``exception`` is the
    host's failure (a :class:`pssh.exceptions.PSSHError`), else None.
    """

    index: int
    host: str
    alias: Optional[str] = None
    exit_code: Optional[int] = None
    exit_signal: Optional[str] = None
    stdout: Tuple[str, ...] = ()
    stderr: Tuple[str, ...] = ()
    truncated: bool = False
    exception: Optional[BaseException] = None
    output_cap: Optional[int] = None
    stdout_file: Optional[str] = None
    stderr_file: Optional[str] = None

    @property
    def ok(self) -> bool:
        """No exception and exit code 0."""
        return self.exception is None and self.exit_code == 0

    def __reduce__(self):
        # Each stream travels as one string: pickling many short strings one by one cost
        # more than reading them did. Lines never contain "\n" (output is split on it).
        return (_rebuild_host_result,
                (self.index, self.host, self.alias, self.exit_code, self.exit_signal,
                 _pack(self.stdout), _pack(self.stderr), self.truncated, self.exception,
                 self.output_cap, self.stdout_file, self.stderr_file))


def _pack(lines):
    return "\n".join(lines) if lines else None


def _unpack(text):
    return () if text is None else tuple(text.split("\n"))


def _rebuild_host_result(index, host, alias, exit_code, exit_signal, stdout, stderr,
                         truncated, exception, output_cap, stdout_file, stderr_file):
    return HostResult(index, host, alias, exit_code, exit_signal, _unpack(stdout),
                      _unpack(stderr), truncated, exception, output_cap, stdout_file,
                      stderr_file)


@dataclass(frozen=True)
class TransferResult:
    """What one host did for one copy (``copy_file``, ``scp_recv``...) of a ShardedClient."""

    index: int
    host: str
    alias: Optional[str] = None
    exception: Optional[BaseException] = None

    @property
    def ok(self) -> bool:
        return self.exception is None


def spool_path(spool_dir, index, host, stream):
    """``<spool_dir>/<index>_<host>.<stream>``; the index keeps repeated hosts apart and the
    host name is reduced to characters that cannot leave the directory."""
    name = "%06d_%s.%s" % (index, _UNSAFE_FILE_CHARS.sub("_", str(host)), stream)
    return os.path.join(spool_dir, name)


def _capped(lines, cap):
    """(kept lines, truncated): lines up to ``cap`` characters (a line ending counts as
    one); the rest is read and dropped."""
    if lines is None:
        return (), False
    if cap is None:
        return tuple(lines), False
    kept, used = [], 0
    for line in lines:
        used += len(line) + 1
        if used > cap:
            deque(lines, maxlen=0)
            return tuple(kept), True
        kept.append(line)
    return tuple(kept), False


def _read_stream(lines, cap, path):
    """(kept lines, truncated, file) for one stream, spooled to ``path`` when given."""
    if path is None:
        return _capped(lines, cap) + (None,)
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as out:
        if lines is not None:
            out.writelines(line + "\n" for line in lines)
    return (), False, path


def collect_output(index, host_out, cap, spool_dir, wait_done):
    """Read ``host_out`` to its end and return its :class:`HostResult`.

    ``wait_done()`` waits for the command's exit status once the output is read; a failure
    while reading or waiting becomes the record's exception.
    """
    host = host_out.host
    if host_out.exception is not None:
        return HostResult(index, host, host_out.alias, exception=host_out.exception,
                          output_cap=cap)
    paths = (None, None)
    if spool_dir is not None:
        paths = (spool_path(spool_dir, index, host, "stdout"),
                 spool_path(spool_dir, index, host, "stderr"))
    stdout = stderr = ()
    truncated = False
    try:
        # both streams at once: stderr left unread while stdout runs would pile up to
        # max_unread_output whatever the cap, and then stop the command
        stderr_reader = spawn_quiet(_read_stream, host_out.stderr, cap, paths[1])
        try:
            stdout, cut_out, _ = _read_stream(host_out.stdout, cap, paths[0])
            stderr, cut_err, _ = stderr_reader.get()
        finally:
            stderr_reader.kill()
        truncated = cut_out or cut_err
        wait_done()
    except Exception as exc:  # noqa: BLE001 - the host's failure goes into its record
        return HostResult(index, host, host_out.alias, exit_code=host_out.exit_code,
                          exit_signal=host_out.exit_signal, stdout=stdout, stderr=stderr,
                          truncated=truncated, exception=exc, output_cap=cap,
                          stdout_file=paths[0], stderr_file=paths[1])
    return HostResult(index, host, host_out.alias, exit_code=host_out.exit_code,
                      exit_signal=host_out.exit_signal, stdout=stdout, stderr=stderr,
                      truncated=truncated, output_cap=cap, stdout_file=paths[0],
                      stderr_file=paths[1])
