"""Client CPU cost of host key checking (issue target: at most +5% on connect + echo, 500 hosts).

Two measurements, run from the repository root::

    python -m benchmarks.hostkey_overhead              # micro + end-to-end (500 connections)
    python -m benchmarks.hostkey_overhead --micro-only

* micro: the per-host cost of what a connection does for host keys (gather the known keys,
  order the host key algorithms, check the offered key) for 500 distinct hosts against a
  known_hosts file of 500 plain ``[ip]:port`` entries plus ``--hashed`` hashed entries, and the
  one-off parse of that file.
* end-to-end: ParallelSSHClient connect + ``echo`` on 500 connections (10 sshd x 50) with the
  policy ``off`` (no check), the default with no entry (unknown, accepted) and ``strict`` with
  every server known in a file that also holds the hashed entries; client CPU is
  ``getrusage(RUSAGE_SELF)`` user+sys of the run, median of interleaved repeats, and the CPU
  time spent inside the host key code during the run (prepare, algorithm order, verify): on a
  loaded machine the run-to-run noise of the totals exceeds the cost being measured.
"""
import argparse
import base64
import hashlib
import hmac
import os
import resource
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from pssh import hostkeys  # noqa: E402


def _blob(seed):
    material = hashlib.sha256(seed).digest()
    return b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + material


def _hashed_line(name, blob):
    salt = os.urandom(20)
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return "|1|%s|%s ssh-ed25519 %s\n" % (base64.b64encode(salt).decode(),
                                          base64.b64encode(digest).decode(),
                                          base64.b64encode(blob).decode())


def write_known_hosts(path, names, blob, hashed, hash_names=False):
    with open(path, "w") as known:
        for index in range(hashed):
            known.write(_hashed_line("filler-%d.example.com" % index, _blob(b"%d" % index)))
        for name in names:
            if hash_names:
                known.write(_hashed_line(name, blob))
            else:
                known.write("%s ssh-ed25519 %s\n" % (name, base64.b64encode(blob).decode()))


class _Session:
    def __init__(self, blob):
        self.blob = blob

    def hostkey(self):
        return self.blob, 6


def micro(hashed):
    blob = _blob(b"server")
    hosts = [("127.0.%d.%d" % (index // 250, index % 250 + 2), 2222) for index in range(500)]
    names = ["[%s]:%d" % host for host in hosts]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "known_hosts")
        write_known_hosts(path, names, blob, hashed)
        filler = os.path.join(tmp, "filler_only")
        write_known_hosts(filler, [], blob, hashed)
        all_hashed = os.path.join(tmp, "all_hashed")
        write_known_hosts(all_hashed, names, blob, 0, hash_names=True)
        start = time.process_time()
        hostkeys.load_known_hosts(path)
        parse = time.process_time() - start
        session = _Session(blob)
        results = {"parse_ms": parse * 1e3}
        for label, policy, files in (
                ("default, no known_hosts file", None, [os.path.join(tmp, "missing")]),
                ("strict, known by plain lines", "strict", [path]),
                ("default, unknown, %d hashed lines" % hashed, None, [filler]),
                ("strict, known by 500 hashed lines", "strict", [all_hashed])):
            hostkeys._FILES.clear()
            for name in files:  # parsed once per process, as in a real run
                hostkeys.load_known_hosts(name)
            start = time.process_time()
            for host, port in hosts:
                check = hostkeys.prepare(host, port, policy, files)
                check.hostkey_methods()
                check.verify(session)
            results[label] = (time.process_time() - start) / len(hosts) * 1e6
        return results


_INSIDE = [0.0]


def _instrument():
    """Count the CPU time spent inside the host key code during a real run."""
    def timed(function):
        def wrapper(*args, **kwargs):
            start = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                _INSIDE[0] += time.process_time() - start
        return wrapper
    hostkeys.prepare = timed(hostkeys.prepare)
    hostkeys.HostKeyCheck.verify = timed(hostkeys.HostKeyCheck.verify)
    hostkeys.HostKeyCheck.hostkey_methods = timed(hostkeys.HostKeyCheck.hostkey_methods)


def end_to_end(repeats, hashed, per_server=50, n_servers=10):
    from embedded_server import ServerFarm, make_user_key
    from pssh.parallel import ParallelSSHClient

    _instrument()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        key = make_user_key(tmp)
        farm = ServerFarm(n_servers, first_ip="127.0.3.2", shared_host_key=True,
                          authorized_keys=[key.public])
        farm.start()
        try:
            known = os.path.join(tmp, "known_hosts")
            with open(known, "w") as out:
                for index in range(hashed):
                    out.write(_hashed_line("filler-%d.example.com" % index,
                                           _blob(b"%d" % index)))
                for srv in farm:
                    out.write(srv.known_hosts_line() + "\n")
            hosts = [host for host in farm.hosts for _ in range(per_server)]
            variants = [("off", dict(host_key_policy="off")),
                        ("default (unknown)", dict(known_hosts=[os.path.join(tmp, "none")])),
                        ("strict (known)", dict(host_key_policy="strict", known_hosts=[known]))]
            cpu = {label: [] for label, _ in variants}
            inside = {label: [] for label, _ in variants}
            for repeat in range(repeats):
                order = variants[repeat % 3:] + variants[:repeat % 3]
                for label, extra in order:
                    hostkeys._FILES.clear()
                    client = ParallelSSHClient(hosts, port=farm.port, pkey=key.private,
                                               user=farm[0].user, pool_size=len(hosts),
                                               num_retries=1,
                                               timeout=120, allow_agent=False,
                                               identity_auth=False, **extra)
                    _INSIDE[0] = 0.0
                    before = resource.getrusage(resource.RUSAGE_SELF)
                    output = client.run_command("echo ok")
                    client.join(output)
                    lines = [list(host_out.stdout) for host_out in output]
                    client.close()
                    after = resource.getrusage(resource.RUSAGE_SELF)
                    assert lines == [["ok"]] * len(hosts), label
                    cpu[label].append(after.ru_utime + after.ru_stime
                                      - before.ru_utime - before.ru_stime)
                    inside[label].append(_INSIDE[0])
                    print("  run %d %-18s client CPU %.3f s, inside host key code %.1f ms (%.2f%%)"
                          % (repeat + 1, label, cpu[label][-1], _INSIDE[0] * 1e3,
                             _INSIDE[0] / cpu[label][-1] * 100), flush=True)
            return ({label: statistics.median(values) for label, values in cpu.items()}, cpu,
                    {label: statistics.median(values) for label, values in inside.items()})
        finally:
            farm.stop_all()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hashed", type=int, default=1000, help="hashed filler entries")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--micro-only", action="store_true")
    parser.add_argument("--per-server", type=int, default=50,
                        help="connections per sshd (10 servers)")
    args = parser.parse_args()
    results = micro(args.hashed)
    print("micro: parse of a known_hosts with 500 plain + %d hashed entries: %.1f ms"
          % (args.hashed, results.pop("parse_ms")))
    for label, micros in results.items():
        print("micro: per host, %-38s %8.1f us" % (label + ":", micros))
    if args.micro_only:
        return
    medians, samples, inside = end_to_end(args.repeats, args.hashed, args.per_server)
    base = medians["off"]
    for label, value in medians.items():
        print("end-to-end %d x connect+echo, client CPU %-18s %.3f s (%+.1f%% vs off; host key "
              "code %.1f ms = %.2f%% of off)  samples %s"
              % (10 * args.per_server, label + ":", value, (value / base - 1) * 100,
                 inside[label] * 1e3, inside[label] / base * 100,
                 " ".join("%.3f" % sample for sample in samples[label])))


if __name__ == "__main__":
    main()
