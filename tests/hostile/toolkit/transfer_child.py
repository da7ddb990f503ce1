"""Run file transfers in a child process and report how they ended, as JSON.

For attacks whose unfixed outcome kills the process (SIGBUS) or whose cost is memory (the
child's peak RSS growth is measured without pytest's own peak in the way). The child inherits
the environment, so ``PSSH_PURE_PYTHON`` picks its backend as in the test.

``run(spec, timeout)`` -> (returncode, report or None, stderr). ``spec``: ``host``, ``port``,
``key`` (private key path), ``timeout`` (the clients'), ``jobs``: a list of ``{"method":
"copy_file" | "scp_send" | ..., "args": [...], "truncate_to": bytes or absent}``. Jobs run at
once, each on its own connection; ``truncate_to`` truncates ``args[0]`` (the local source) at
the first progress report of that job. The report: ``{"results": [{"ok", "error", "host",
"path", "message", "elapsed"}, ...], "rss_growth_kib": ...}``.
"""
import json
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def run(spec, timeout):
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), json.dumps(spec)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                          cwd=REPO_ROOT)
    report = None
    lines = proc.stdout.decode("utf-8", "replace").strip().splitlines()
    if proc.returncode == 0 and lines:
        report = json.loads(lines[-1])
    return proc.returncode, report, proc.stderr.decode("utf-8", "replace")


def _max_rss_kib():
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _job(spec, job):
    import time
    from pssh.single import SSHClient
    client = SSHClient(spec["host"], port=spec["port"], pkey=spec["key"], num_retries=1,
                       timeout=spec["timeout"], allow_agent=False, identity_auth=False)
    truncated = []

    def progress(host, path, done, total):
        if "truncate_to" in job and not truncated and done < total:
            truncated.append(done)
            os.truncate(job["args"][0], job["truncate_to"])

    started = time.monotonic()
    try:
        getattr(client, job["method"])(*job["args"], progress=progress)
        result = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - reported to the test, which judges it
        result = {"ok": False, "error": type(exc).__name__, "message": str(exc),
                  "host": getattr(exc, "host", None), "path": getattr(exc, "path", None),
                  "mro": [cls.__name__ for cls in type(exc).__mro__]}
    result["elapsed"] = time.monotonic() - started
    result["truncated_at"] = truncated[0] if truncated else None
    client.close()
    return result


def main(spec):
    import gevent
    sys.path.insert(0, REPO_ROOT)
    import pssh.single  # noqa: F401 - imported before the baseline is taken
    before = _max_rss_kib()
    greenlets = [gevent.spawn(_job, spec, job) for job in spec["jobs"]]
    gevent.joinall(greenlets, raise_error=True)
    print(json.dumps({"results": [g.value for g in greenlets],
                      "rss_growth_kib": _max_rss_kib() - before}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
