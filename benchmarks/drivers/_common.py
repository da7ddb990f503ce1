"""Shared plumbing for the benchmark drivers.

Each driver is a standalone script run in a fresh interpreter (possibly another virtualenv's),
so this module only uses the standard library.  A driver calls :func:`main` with two callables:

``single(args, host, port) -> (lines, exit_code)``
    connect to one host, run ``args["command"]``, read all stdout lines (without newlines),
    get the exit code and disconnect.
``parallel(args) -> [(nlines, last_line, exit_code), ...]``
    connect to every ``args["hosts"][i]:args["ports"][i]`` at once, run the command on all,
    read every stdout line of every host (host order reversed when ``args["reverse"]``).

and optionally ``rounds=`` (a session class, see :func:`run_rounds`) and ``idle=`` (see
:func:`run_idle`) for the open-connection and idle workloads.

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
    """User+sys CPU of this process and of its reaped children (e.g. ``ssh`` subprocesses),
    plus the CPU so far of live children registered in ``TRACKED_CHILDREN`` (read first, so
    the cost of reading /proc falls before this process's own snapshot)."""
    total = tracked_children_cpu()
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


def maxrss_kb():
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_rss, child_rss)  # kilobytes on Linux


# Extra driver modes: name -> f(args) -> result dict (see _transfer.register).
MODES = {}


class CheckError(Exception):
    """The client returned wrong output or exit codes."""


# ----------------------------------------------- live children, fd limit (issue 3 workloads)

# pids of live child processes (e.g. ssh ControlMasters, ssh clients still running) whose CPU
# ``cpu_seconds`` adds from /proc/<pid>/schedstat. A driver removes a pid *before* reaping it,
# after which getrusage(RUSAGE_CHILDREN) accounts for it: never counted twice.
TRACKED_CHILDREN = set()
# Drivers whose work is done by child processes (openssh) set this to the peak RSS of all their
# children alive at once (kB, e.g. the sum of each ``ssh`` process's own peak); ``main`` then
# reports maxrss_kb = own peak + this.
CHILDREN_PEAK_RSS_KB = {"value": None}
# extra result fields a driver wants reported (merged into the JSON result)
EXTRA_RESULT = {}


def _proc_cpu(pid):
    """CPU seconds used so far by a live process: schedstat's exact run time in ns (stat's
    utime/stime are truncated to clock ticks, a bias of ~5 ms per process), summed over the
    process's threads (a process's own schedstat is its main thread's only)."""
    try:
        total = 0
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


def tracked_children_cpu():
    return sum(_proc_cpu(pid) for pid in list(TRACKED_CHILDREN))


def raise_nofile_limit():
    """Raise the open-file soft limit to the hard limit (500 hosts need > 1024 descriptors;
    pssh raises its own, the other clients don't). Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return soft
    for value in (want, 65536, 16384, 4096):
        if soft < value <= want:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (value, hard))
                return value
            except (ValueError, OSError):
                continue
    return soft


def _check_host_results(results, nhosts, expect_output, where=""):
    """``results``: one ``(lines, exit_code)`` per host; ``lines`` None = output not read."""
    if len(results) != nhosts:
        raise CheckError("%s%d results for %d hosts" % (where, len(results), nhosts))
    for i, (lines, code) in enumerate(results):
        if lines is not None and expect_output is not None and list(lines) != list(expect_output):
            raise CheckError("%shost #%d: output %r, expected %r" % (where, i, list(lines)[:3], expect_output))
        if code != 0:
            raise CheckError("%shost #%d: exit code %r%s" % (
                where, i, code, "" if not lines else " (%s)" % " | ".join(map(str, lines))[:300]))


def run_rounds(args, session_factory):
    """Open connections to every host once (``session_factory(args)``), then ``args["rounds"]``
    rounds of ``session.run(command) -> [(lines, exit_code)]`` (command run on every host and
    waited for), then ``session.close()``. Only the rounds are in wall/cpu: the medians per
    round; totals and the connect/close phases are reported beside them."""
    nhosts, rounds = len(args["hosts"]), int(args.get("rounds", 50))
    expect = args.get("expect_output")
    c0, t0 = cpu_seconds(), time.perf_counter()
    session = session_factory(args)
    c1, t1 = cpu_seconds(), time.perf_counter()
    walls, cpus = [], []
    try:
        for r in range(rounds):
            ca, ta = cpu_seconds(), time.perf_counter()
            results = session.run(args["command"])
            walls.append(time.perf_counter() - ta)
            cpus.append(cpu_seconds() - ca)
            _check_host_results(results, nhosts, expect, "round %d: " % r)
        c2, t2 = cpu_seconds(), time.perf_counter()
    finally:
        session.close()
    c3, t3 = cpu_seconds(), time.perf_counter()
    return {
        "wall": statistics.median(walls), "cpu": statistics.median(cpus),
        "wall_per_round_mean": (t2 - t1) / rounds, "cpu_per_round_mean": (c2 - c1) / rounds,
        "rounds_wall": t2 - t1, "rounds_cpu": c2 - c1, "rounds": rounds, "hosts": nhosts,
        "connect_wall": t1 - t0, "connect_cpu": c1 - c0, "close_wall": t3 - t2, "close_cpu": c3 - c2,
        "per_round_wall": walls, "per_round_cpu": cpus,
    }


def run_idle(args, idle):
    """``idle(args, started) -> [(lines, exit_code)]`` connects to every host, starts the
    (long, silent) command everywhere, calls ``started()`` once all have started, then waits for
    all to exit. wall = the whole thing; cpu = client CPU from ``started()`` to the end."""
    marks = {}

    def started():
        if not marks:
            marks["cpu"], marks["t"] = cpu_seconds(), time.perf_counter()

    c0, t0 = cpu_seconds(), time.perf_counter()
    results = idle(args, started)
    c1, t1 = cpu_seconds(), time.perf_counter()
    if not marks:
        raise CheckError("the driver never reported that all commands had started")
    _check_host_results(results, len(args["hosts"]), args.get("expect_output"))
    return {
        "wall": t1 - t0, "cpu": c1 - marks["cpu"], "cpu_after_start": c1 - marks["cpu"],
        "wall_after_start": t1 - marks["t"], "connect_wall": marks["t"] - t0,
        "connect_cpu": marks["cpu"] - c0, "cpu_total": c1 - c0, "hosts": len(args["hosts"]),
    }


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


def main(single=None, parallel=None, library=None, dists=(), info=None, rounds=None, idle=None):
    """Run the mode named in the JSON args and print the JSON result; ``library`` is a module
    whose version/path is reported (to prove which ``pssh`` was imported); ``info()`` may add
    details (e.g. which backend is active). ``rounds`` (a session class, see :func:`run_rounds`)
    and ``idle`` (see :func:`run_idle`) are optional: without them those modes are "skipped"."""
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
    out["nofile_limit"] = raise_nofile_limit()
    out["cpu_startup"] = cpu_seconds()  # interpreter start + imports, before the workload
    try:
        if args["mode"] == "latency":
            out.update(run_latency(args, single))
        elif args["mode"] == "stream":
            out.update(run_stream(args, parallel))
        elif args["mode"] in ("rounds", "idle") and {"rounds": rounds, "idle": idle}[args["mode"]] is None:
            out.update(status="skipped", error="this driver has no %s mode" % args["mode"])
        elif args["mode"] == "rounds":
            out.update(run_rounds(args, rounds))
        elif args["mode"] == "idle":
            out.update(run_idle(args, idle))
        elif args["mode"] in MODES:  # modes registered by other modules (e.g. _transfer)
            out.update(MODES[args["mode"]](args))
        else:
            raise ValueError("unknown mode %r" % (args["mode"],))
    except CheckError as exc:
        out.update(status="fail", error=str(exc))
    except Exception as exc:  # report, don't crash: the harness records it
        out.update(status="error", error="%s: %s" % (type(exc).__name__, exc),
                   traceback=traceback.format_exc()[-4000:])
    out["cpu_process"] = cpu_seconds()
    out["maxrss_kb"] = maxrss_kb()
    if CHILDREN_PEAK_RSS_KB["value"] is not None:  # work done in child processes (openssh)
        out["self_maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["children_peak_rss_kb"] = CHILDREN_PEAK_RSS_KB["value"]
        out["maxrss_kb"] = out["self_maxrss_kb"] + out["children_peak_rss_kb"]
    out.update(EXTRA_RESULT)
    sys.stdout.flush()
    sys.stdout.write("\n" + json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0 if out["status"] == "ok" else 1
