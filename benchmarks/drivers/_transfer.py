"""The ``transfer`` driver mode: SFTP/SCP uploads and downloads on every host at once.

A driver registers ``transfer(args, jobs)`` with :func:`register`; ``jobs`` is a list of
``(index, host, port, source, destination)``, one per host: for uploads ``source`` is the local
file and ``destination`` the remote path, for downloads the other way round. All servers run on
this machine, so after the timed part every copied file is read back here and its size and
SHA-256 checked against the source's (``args["size"]``, ``args["sha256"]``); the copies are
then deleted. Only the transfer itself is in wall/cpu.

Args: ``direction`` ("upload"/"download"), ``protocol`` ("sftp"/"scp"), ``source``,
``dest_dir`` (world-writable), ``size``, ``sha256``.
"""
import hashlib
import os
import shutil
import tempfile
import time

import _common
from _common import CheckError, cpu_seconds


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run_transfer(args, transfer):
    run_dir = tempfile.mkdtemp(prefix="run-%d-" % os.getpid(), dir=args["dest_dir"])
    os.chmod(run_dir, 0o777)
    try:
        jobs = []
        upload = args["direction"] == "upload"
        for i, (host, port) in enumerate(zip(args["hosts"], args["ports"])):
            copy = os.path.join(run_dir, "%s_%d.bin" % ("up" if upload else "down", i))
            jobs.append((i, host, port, args["source"], copy))
        c0, t0 = cpu_seconds(), time.perf_counter()
        transfer(args, jobs)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
        for i, _host, _port, _src, copy in jobs:
            if not os.path.exists(copy):
                raise CheckError("host #%d: %s was not created" % (i, copy))
            size = os.path.getsize(copy)
            if size != args["size"]:
                raise CheckError("host #%d: %d bytes, expected %d" % (i, size, args["size"]))
            if _sha256(copy) != args["sha256"]:
                raise CheckError("host #%d: checksum mismatch" % i)
        total = args["size"] * len(jobs)
        return {"wall": wall, "cpu": cpu, "bytes": total, "verified": len(jobs),
                "mib_per_s": total / 1048576.0 / wall if wall else None,
                "cpu_s_per_gib": cpu / (total / 1073741824.0) if total else None}
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


class Unsupported(Exception):
    """Raised by a driver's transfer() for a protocol its library lacks: the run is skipped."""


def register(transfer):
    """Make ``transfer(args, jobs)`` this driver's implementation of the ``transfer`` mode."""
    def mode(args):
        try:
            return run_transfer(args, transfer)
        except Unsupported as exc:
            return {"status": "skipped", "error": str(exc)}
    _common.MODES["transfer"] = mode
