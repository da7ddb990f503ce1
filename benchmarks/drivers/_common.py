"""Shared plumbing for the benchmark drivers.

Each driver is a standalone script run in a fresh interpreter (possibly another virtualenv's),
so this module only uses the standard library.  A driver calls :func:`main` with two callables:

``single(args, host, port) -> (lines, exit_code)``
    connect to one host, run ``args["command"]``, read all stdout lines (without newlines),
    get the exit code and disconnect.
``parallel(args) -> [(nlines, last_line, exit_code), ...]``
    connect to every ``args["hosts"][i]:args["ports"][i]`` at once, run the command on all,
    read every stdout line of every host (host order reversed when ``args["reverse"]``).

Arguments are one JSON object (argv[1], or stdin when absent).  The result is one JSON object on
the last line of stdout: status, wall (s), cpu (s, user+sys of this process and its children),
maxrss_kb (peak RSS), plus mode-specific details.
"""
import json
import os
import resource
import statistics
import sys
import time
import traceback


def cpu_seconds():
    """User+sys CPU of this process and of its reaped children (e.g. ``ssh`` subprocesses)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


def maxrss_kb():
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_rss, child_rss)  # kilobytes on Linux


class CheckError(Exception):
    """The client returned wrong output or exit codes."""


def run_latency(args, single):
    """``args["runs"]`` sequential connect+run+read+exit-code+disconnect on the first host."""
    host, port = args["hosts"][0], args["ports"][0]
    expect = args.get("expect_output")
    walls, cpus = [], []
    for _ in range(int(args.get("runs", 10))):
        c0, t0 = cpu_seconds(), time.perf_counter()
        lines, code = single(args, host, port)
        walls.append(time.perf_counter() - t0)
        cpus.append(cpu_seconds() - c0)
        if expect is not None and list(lines) != list(expect):
            raise CheckError("output %r != expected %r" % (lines[:5], expect[:5]))
        if code != 0:
            raise CheckError("exit code %r" % (code,))
    return {
        "wall": statistics.median(walls), "cpu": statistics.median(cpus),
        "per_run_wall": walls, "per_run_cpu": cpus,
        "total_wall": sum(walls), "total_cpu": sum(cpus), "runs": len(walls),
    }


def run_stream(args, parallel):
    """All hosts at once, every line read; checks per-host line count, last line, exit code."""
    c0, t0 = cpu_seconds(), time.perf_counter()
    results = parallel(args)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    expect_lines, expect_last = args.get("expect_lines"), args.get("expect_last")
    if len(results) != len(args["hosts"]):
        raise CheckError("%d results for %d hosts" % (len(results), len(args["hosts"])))
    total = 0
    for i, (nlines, last, code) in enumerate(results):
        total += nlines
        if expect_lines is not None and nlines != expect_lines:
            raise CheckError("host #%d: %d lines, expected %d" % (i, nlines, expect_lines))
        if expect_last is not None and last != expect_last:
            raise CheckError("host #%d: last line %r, expected %r" % (i, last, expect_last))
        if code != 0:
            raise CheckError("host #%d: exit code %r" % (i, code))
    return {"wall": wall, "cpu": cpu, "lines": total}


def _version(module, dists):
    """Version of the installed distribution that provides ``module`` (one of ``dists``), else
    ``module.__version__`` (a source checkout's version string can be meaningless)."""
    version = getattr(module, "__version__", None)
    path = os.path.realpath(getattr(module, "__file__", "") or "")
    try:
        from importlib import metadata
    except ImportError:
        return version
    for name in dists:
        try:
            dist = metadata.distribution(name)
            files = [os.path.realpath(str(dist.locate_file(f))) for f in dist.files or ()]
        except Exception:
            continue
        if path in files:
            return dist.version
    return version


def main(single=None, parallel=None, library=None, dists=(), info=None):
    """Run the mode named in the JSON args and print the JSON result; ``library`` is a module
    whose version/path is reported (to prove which ``pssh`` was imported); ``info()`` may add
    details (e.g. which backend is active)."""
    raw = sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read()
    args = json.loads(raw)
    out = {"status": "ok", "mode": args["mode"], "pid": os.getpid(), "python": sys.version.split()[0]}
    if library is not None:
        out["library"] = getattr(library, "__name__", "?")
        out["library_version"] = _version(library, dists)
        out["library_path"] = os.path.dirname(os.path.abspath(getattr(library, "__file__", "") or "."))
    if info is not None:
        try:
            out.update(info())
        except Exception as exc:
            out["info_error"] = repr(exc)
    out["cpu_startup"] = cpu_seconds()  # interpreter start + imports, before the workload
    try:
        if args["mode"] == "latency":
            out.update(run_latency(args, single))
        elif args["mode"] == "stream":
            out.update(run_stream(args, parallel))
        else:
            raise ValueError("unknown mode %r" % (args["mode"],))
    except CheckError as exc:
        out.update(status="fail", error=str(exc))
    except Exception as exc:  # report, don't crash: the harness records it
        out.update(status="error", error="%s: %s" % (type(exc).__name__, exc),
                   traceback=traceback.format_exc()[-4000:])
    out["cpu_process"] = cpu_seconds()
    out["maxrss_kb"] = maxrss_kb()
    sys.stdout.flush()
    sys.stdout.write("\n" + json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0 if out["status"] == "ok" else 1
