"""Benchmark pssh against other SSH clients on real OpenSSH servers on loopback.

    python -m benchmarks.run [--workloads latency,heavy_output] [--repeats 3]
                             [--peers pssh,parallel-ssh,asyncssh,paramiko] [--out benchmarks/results]

Every measurement is one fresh driver subprocess (benchmarks/drivers/) that reports its own wall
time, CPU time and peak RSS as JSON.  Repeats are interleaved: repeat 1 runs every workload on
every peer, then repeat 2, ... (peer order rotated each repeat).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from . import report
from .registry import (DEFAULT_PEERS, DEFAULT_WORKLOADS, HERE, PEERS, ROOT, WORKLOADS, select)

DRIVERS = os.path.join(HERE, "drivers")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    csv = lambda s: [x.strip() for x in s.split(",") if x.strip()]
    ap.add_argument("--workloads", type=csv, default=DEFAULT_WORKLOADS,
                    help="comma-separated, from: %s (default: %%(default)s)" % ", ".join(WORKLOADS))
    ap.add_argument("--peers", type=csv, default=DEFAULT_PEERS,
                    help="comma-separated, from: %s (default: %%(default)s)" % ", ".join(PEERS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join("benchmarks", "results"), help="output directory")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per driver run (default 300)")
    ap.add_argument("--heavy-lines", type=int, default=1000000, help="lines per host in heavy_output")
    ap.add_argument("--heavy-hosts", type=int, default=10, help="connections in heavy_output")
    ap.add_argument("--latency-runs", type=int, default=20, help="connect+run cycles per latency driver run")
    ap.add_argument("--farm-size", type=int, default=50,
                    help="at most this many sshd servers (127.0.0.2..); workloads with more "
                         "connections repeat host entries, one connection each (default 50)")
    ap.add_argument("--rounds", type=int, default=50, help="rounds in rounds_true (default 50)")
    ap.add_argument("--rounds-hosts", type=int, default=20, help="connections in rounds_true (default 20)")
    ap.add_argument("--idle-hosts", type=int, default=500, help="connections in idle_sleep (default 500)")
    ap.add_argument("--idle-seconds", type=float, default=5, help="sleep length in idle_sleep (default 5)")
    ap.add_argument("--transfer-mb", type=int, default=64,
                    help="file size in MiB of the sftp_/scp_ upload/download workloads (default 64)")
    ap.add_argument("--transfer-hosts", type=int, default=10,
                    help="hosts of the sftp_/scp_ workloads (default 10)")
    ap.add_argument("--sharded-hosts", type=int, default=10,
                    help="connections in rounds_output (default 10)")
    ap.add_argument("--sharded-lines", type=int, default=1000000,
                    help="lines per host and round in rounds_output (default 1000000)")
    ap.add_argument("--sharded-cap", type=int, default=4096,
                    help="characters kept per host and stream in rounds_output (default 4096)")
    ap.add_argument("--single-server", action="store_true",
                    help="all connections to one sshd on 127.0.0.1 instead of a farm on 127.0.0.2..")
    ap.add_argument("--key-kind", default="ed25519", choices=["ed25519", "rsa", "ecdsa"])
    ap.add_argument("--baseline", default="pssh", help="peer the ratios are computed for (default pssh)")
    ap.add_argument("--install", action="store_true",
                    help="pip install missing peer libraries (asyncssh, paramiko) into this interpreter")
    ap.add_argument("--retry-timeouts", action="store_true",
                    help="run a (peer, workload) again in later repeats after it timed out "
                         "(default: record it as skipped)")
    ap.add_argument("--list", action="store_true", help="list peers and workloads, then exit")
    opts = ap.parse_args(argv)
    select("peer", PEERS, opts.peers)
    select("workload", WORKLOADS, opts.workloads)
    return opts


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Context:
    def __init__(self, opts):
        self.opts = opts
        self.install = opts.install
        self.log = log


# ------------------------------------------------------------------------------------- servers

def _listening(host, port):
    try:
        socket.create_connection((host, port), timeout=1.0).close()
        return True
    except OSError:
        return False


class Servers:
    """sshd servers for the run: a ServerFarm on 127.0.0.2.., or one server on 127.0.0.1."""

    def __init__(self, count, single, key_kind, workdir, farm_size=None, bastion=False):
        from embedded_server import OpenSSHServer, ServerFarm, make_user_key
        self.key = make_user_key(os.path.join(workdir, "keys"), kind=key_kind)
        self.farm = self.single = self.bastion = None
        if single or count <= 0:
            self.single = OpenSSHServer(listen_ip="127.0.0.1", port=None, authorized_keys=[self.key.public])
            self.single.start()
            self.list = [self.single]
        else:
            if farm_size:
                count = min(count, farm_size)
            self.farm = ServerFarm(count, authorized_keys=[self.key.public], shared_host_key=True,
                                   start_timeout=120)  # 50 sshd on a busy 2-core machine
            if not self.farm.servers and hasattr(self.farm, "start"):
                self.farm.start()
            self.list = list(self.farm.servers)
            for srv in self.list:
                if not _listening(srv.host, srv.port):
                    raise RuntimeError("sshd on %s:%s is not listening" % (srv.host, srv.port))
        self.user = self.list[0].user
        if bastion:
            # issue 5: the jump host, on 127.0.0.1 (the farm is on 127.0.0.2..), its own host key;
            # LogLevel INFO so that its logins ("Accepted publickey for ...") can be counted per run
            try:
                self.bastion = OpenSSHServer(listen_ip="127.0.0.1", port=None, authorized_keys=[self.key.public],
                                             log_level="INFO", extra_config={"AllowTcpForwarding": "yes"})
                self.bastion.start(timeout=60)
            except BaseException:
                self.stop()
                raise

    def endpoints(self, n):
        if self.single is not None:
            return [self.single.host] * n, [self.single.port] * n
        chosen = [self.list[i % len(self.list)] for i in range(n)]
        return [s.host for s in chosen], [s.port for s in chosen]

    def bastion_logins(self):
        """Logins the bastion has logged so far (one per client connection to it)."""
        try:
            with open(self.bastion.log_path, "rb") as fh:
                return len(re.findall(rb"\bAccepted \S+ for ", fh.read()))
        except OSError:
            return None

    def cpu_seconds(self):
        """CPU of the servers so far: each listener's own and its reaped connection processes'
        (utime+stime+cutime+cstime); a run's difference is the farm's CPU for that run once
        its connections are closed: waits (at most 10 s) until every connection process has
        ended and been reaped, or its CPU would be missed (a client that just exited leaves
        them running for a moment)."""
        from embedded_server.proctree import descendants
        servers = self.list + ([self.bastion] if self.bastion is not None else [])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(descendants(srv.pid) for srv in servers):
            time.sleep(0.05)
        total = 0
        for srv in servers:
            try:
                with open("/proc/%d/stat" % srv.pid) as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                total += sum(int(value) for value in fields[11:15])
            except (OSError, TypeError, ValueError):
                return None
        return total / float(os.sysconf("SC_CLK_TCK"))

    def stop(self):
        if self.bastion is not None:
            self.bastion.stop()
        if self.farm is not None:
            self.farm.stop_all()
        if self.single is not None:
            self.single.stop()


# ---------------------------------------------------------------------------------- measurement

def _under(path, root):
    path, root = os.path.realpath(path), os.path.realpath(root)
    return path == root or path.startswith(root + os.sep)


def run_one(peer, wl, servers, timeout):
    """One driver subprocess; returns a record (never raises for a failed or hung client)."""
    hosts, ports = servers.endpoints(wl.connections)
    args = dict(wl.extra, mode=wl.mode, hosts=hosts, ports=ports, user=servers.user,
                key=servers.key.private, command=wl.command)
    rec = {"peer": peer.name, "workload": wl.name, "timeout": timeout, "loadavg_before": os.getloadavg()[0]}
    via = args.pop("via_bastion", False)
    logins = None
    if wl.mode == "bastion":  # bastion_N: through the bastion; bastion_N_direct: bastion None
        args["bastion"] = None if not via else {
            "host": servers.bastion.host, "port": servers.bastion.port, "user": servers.bastion.user,
            "key": servers.key.private}
        logins = servers.bastion_logins() if via else None
    server_cpu0 = servers.cpu_seconds()
    t0 = time.perf_counter()
    proc = subprocess.Popen(peer.command(json.dumps(args)), cwd=DRIVERS, env=peer.environ(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _out, err = proc.communicate()
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        rec.update(status="timeout", process_wall=time.perf_counter() - t0,
                   error="no result within %g s (killed)%s" % (timeout, ": " + " | ".join(tail) if tail else ""))
        return rec
    rec["process_wall"] = time.perf_counter() - t0
    rec["returncode"] = proc.returncode
    server_cpu1 = servers.cpu_seconds()
    if server_cpu0 is not None and server_cpu1 is not None:
        rec["server_cpu"] = server_cpu1 - server_cpu0  # the sshd farm's CPU during the run
    if logins is not None:  # how many connections to the bastion this client opened
        after = servers.bastion_logins()
        rec["bastion_logins"] = None if after is None else after - logins
    lines = out.decode(errors="replace").strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = err.decode(errors="replace").strip().splitlines()[-5:]
        rec.update(status="error", error="driver gave no result (rc %s): %s" % (proc.returncode, " | ".join(tail)))
        return rec
    rec.update(result)
    lib = result.get("library_path") or ""
    if peer.library_under and not _under(lib, peer.library_under) or \
            peer.library_not_under and _under(lib, peer.library_not_under):
        rec.update(status="error", error="driver imported the wrong library: %s" % lib)
    for key, want in peer.expect.items():
        if result.get(key, want) != want:
            rec.update(status="error", error="driver ran with %s=%r, expected %r" % (key, result.get(key), want))
    return rec


def progress(rec, repeat):
    bits = ["[%d] %-22s %-13s %-7s" % (repeat, rec["workload"], rec["peer"], rec["status"])]
    if rec["status"] == "ok":
        bits.append("wall %-9s cpu %-9s rss %4.0f MiB" % (report.fmt_time(rec["wall"]), report.fmt_time(rec["cpu"]),
                                                          rec.get("maxrss_kb", 0) / 1024.0))
        if rec.get("server_cpu") is not None:
            bits.append("server cpu %s" % report.fmt_time(rec["server_cpu"]))
        if rec.get("bastion_logins") is not None:
            bits.append("bastion conn. %d" % rec["bastion_logins"])
    elif rec.get("error"):
        bits.append(rec["error"][:160])
    log(" ".join(bits))


def environment(opts, workloads, peers, records):
    def cmd_out(cmd):
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10, cwd=ROOT)
            return p.stdout.decode(errors="replace").strip() if p.returncode == 0 else None
        except OSError:
            return None
    versions = {}
    for p in peers:
        versions[p] = next((r.get("library_version") for r in records
                            if r["peer"] == p and r.get("library_version")), None)
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "git": cmd_out(["git", "rev-parse", "--short", "HEAD"]), "ssh": cmd_out(["ssh", "-V"]),
        "options": {k: v for k, v in vars(opts).items() if k not in ("list",)},
        "workloads": {w.name: "%s, %d conn., `%s`%s" % (w.mode, w.connections, w.command,
                                                       ", reversed" if w.extra.get("reverse") else "")
                      for w in workloads},
        "peer_versions": versions,
    }


def raise_nofile_limit():
    """Open-file soft limit up to the hard limit: the sshd servers (and their per-connection
    children) inherit it; each driver raises its own too (drivers/_common.py)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return
    cap = hard if hard != resource.RLIM_INFINITY else 1 << 20
    for value in (cap, 65536, 16384):
        if soft < value <= cap:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (value, hard))
                return
            except (ValueError, OSError):
                continue


def main(argv=None):
    opts = parse_args(argv)
    raise_nofile_limit()
    if opts.list:
        for kind, reg in (("peers", PEERS), ("workloads", WORKLOADS)):
            print(kind + ":")
            for name, fn in reg.items():
                print("  %-22s %s" % (name, ((fn.__doc__ or "").strip().splitlines() or [""])[0]))
        return 0
    ctx = Context(opts)
    peers = []
    for name in opts.peers:
        p = PEERS[name](ctx)
        problem = p.problem()
        if problem:
            log("skipping peer %s: %s" % (name, problem))
        else:
            peers.append(p)
    if not peers:
        log("no usable peer")
        return 2
    workloads = [WORKLOADS[name](opts) for name in opts.workloads]
    workdir = tempfile.mkdtemp(prefix="pssh-bench-")
    records = []
    timed_out = set()
    servers = None
    try:
        servers = Servers(max(w.connections for w in workloads), opts.single_server, opts.key_kind, workdir,
                          farm_size=opts.farm_size, bastion=any(w.extra.get("via_bastion") for w in workloads))
        if len(servers.list) > 5:  # a farm: first..last
            log("servers: %d sshd on %s..%s port %s (user %s)" % (
                len(servers.list), servers.list[0].host, servers.list[-1].host, servers.list[0].port, servers.user))
        else:
            log("servers: %s (user %s)" % (", ".join("%s:%s" % (s.host, s.port) for s in servers.list), servers.user))
        if servers.bastion is not None:
            log("bastion: sshd on %s:%s" % (servers.bastion.host, servers.bastion.port))
        for repeat in range(1, opts.repeats + 1):
            for wl in workloads:
                shift = (repeat - 1) % len(peers)
                for peer in peers[shift:] + peers[:shift]:
                    if (peer.name, wl.name) in timed_out and not opts.retry_timeouts:
                        rec = {"peer": peer.name, "workload": wl.name, "status": "skipped",
                               "error": "timed out in an earlier repeat"}
                    else:
                        rec = run_one(peer, wl, servers, opts.timeout * wl.timeout_scale)
                        if rec["status"] == "timeout":
                            timed_out.add((peer.name, wl.name))
                    rec["repeat"] = repeat
                    records.append(rec)
                    progress(rec, repeat)
    except KeyboardInterrupt:
        log("interrupted: reporting what was measured")
    finally:
        if servers is not None:
            servers.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    names = [p.name for p in peers]
    rows = report.summarize(records, [w.name for w in workloads], names, opts.baseline)
    print(report.text_table(rows, opts.baseline))
    targets = report.text_targets(rows)
    if targets:
        print("\n" + targets)
    meta = environment(opts, workloads, names, records)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = opts.out if os.path.isabs(opts.out) else os.path.join(os.getcwd(), opts.out)
    for path in report.write_all(out_dir, stamp, records, rows, meta, opts.baseline):
        log("wrote %s" % os.path.relpath(path))
    return 0 if all(r["status"] in ("ok", "timeout", "skipped") for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
