"""Peers (client libraries) and workloads of the benchmark.

Adding one is one small function each:

* a peer: ``@peer("name")`` on ``f(ctx) -> Peer`` (interpreter, driver script, environment);
  ``f`` may prepare things (e.g. create a virtualenv) and is only called if the peer is selected.
* a workload: ``@workload("name")`` on ``f(opts) -> Workload`` (driver mode, number of
  connections, command, expected output).  Driver modes are ``latency`` and ``stream``
  (see drivers/_common.py); a workload needing a new mode adds it to the drivers.
"""
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Dict, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DRIVERS = os.path.join(HERE, "drivers")
PARALLEL_SSH_VENV = os.path.join(HERE, ".venv-parallel-ssh")
PARALLEL_SSH_REQ = "parallel-ssh==2.16.0.post1"

PEERS = {}
WORKLOADS = {}


@dataclass
class Peer:
    name: str
    driver: str                                   # script in benchmarks/drivers/
    python: str = sys.executable
    env: Dict[str, Optional[str]] = field(default_factory=dict)  # None = remove the variable
    check: str = ""                               # python code that must run for the peer to be usable
    hint: str = ""                                # how to make it usable
    library_under: Optional[str] = None           # the driver's imported library must live here
    library_not_under: Optional[str] = None       # ... and not here
    expect: Dict[str, str] = field(default_factory=dict)  # driver result fields that must match

    def environ(self):
        env = dict(os.environ)
        for key, value in self.env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def command(self, args_json):
        return [self.python, os.path.join(DRIVERS, self.driver), args_json]

    def problem(self):
        """None if usable, else a message saying why not and how to fix it."""
        if not self.check:
            return None
        try:
            proc = subprocess.run([self.python, "-c", self.check], env=self.environ(), cwd=DRIVERS,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return "%s (%s)" % (exc, self.hint)
        if proc.returncode != 0:
            last = (proc.stdout.decode(errors="replace").strip().splitlines() or ["?"])[-1]
            return "%s -- %s" % (last, self.hint)
        return None


@dataclass
class Workload:
    name: str
    mode: str                      # driver mode: "latency" or "stream"
    connections: int               # number of simultaneous connections (hosts) needed
    command: str
    extra: Dict[str, object] = field(default_factory=dict)  # runs, expect_*, reverse, ...
    timeout_scale: float = 1.0     # multiplies --timeout


def peer(name):
    def register(fn):
        PEERS[name] = fn
        return fn
    return register


def workload(name):
    def register(fn):
        WORKLOADS[name] = fn
        return fn
    return register


# ---------------------------------------------------------------------------------------- peers

def _ours(ctx, name, pure):
    return Peer(name, "drv_pssh.py",
                env={"PYTHONPATH": ROOT, "PSSH_PURE_PYTHON": "1" if pure else None},
                check="import pssh.clients; from pssh.clients import ParallelSSHClient, SSHClient",
                hint="pssh is not importable from %s yet (build it first)" % ROOT,
                library_under=ROOT, library_not_under=PARALLEL_SSH_VENV,
                expect={"backend": "pure" if pure else "native"})


@peer("pssh")
def peer_pssh(ctx):
    """Our pssh (native ssh2 backend), imported from the repository."""
    return _ours(ctx, "pssh", pure=False)


@peer("pssh-pure")
def peer_pssh_pure(ctx):
    """Our pssh with PSSH_PURE_PYTHON=1 (pure-Python backend)."""
    return _ours(ctx, "pssh-pure", pure=True)


def ensure_parallel_ssh_venv(log=print):
    """Create benchmarks/.venv-parallel-ssh with parallel-ssh installed, if not there yet."""
    python = os.path.join(PARALLEL_SSH_VENV, "bin", "python")
    marker = os.path.join(PARALLEL_SSH_VENV, ".installed-" + PARALLEL_SSH_REQ.replace("==", "-"))
    if os.path.exists(marker):
        return python
    log("creating %s and installing %s ..." % (os.path.relpath(PARALLEL_SSH_VENV, ROOT), PARALLEL_SSH_REQ))
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", PARALLEL_SSH_VENV], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    PARALLEL_SSH_REQ], check=True)
    open(marker, "w").close()
    return python


@peer("parallel-ssh")
def peer_parallel_ssh(ctx):
    """parallel-ssh 2.16.0.post1 from PyPI, in benchmarks/.venv-parallel-ssh (made on demand)."""
    try:
        python = ensure_parallel_ssh_venv(ctx.log)
    except (OSError, subprocess.CalledProcessError) as exc:
        python = os.path.join(PARALLEL_SSH_VENV, "bin", "python")
        ctx.log("could not set up the parallel-ssh venv: %s" % exc)
    # No PYTHONPATH: the venv's own ``pssh`` must be imported, never the repo's.
    return Peer("parallel-ssh", "drv_pssh.py", python=python,
                env={"PYTHONPATH": None, "PSSH_PURE_PYTHON": None},
                check="from pssh.clients import ParallelSSHClient",
                hint="%s -m venv %s && %s/bin/pip install %s" % (
                    sys.executable, PARALLEL_SSH_VENV, PARALLEL_SSH_VENV, PARALLEL_SSH_REQ),
                library_under=PARALLEL_SSH_VENV, library_not_under=os.path.join(ROOT, "pssh"))


def _pip_peer(ctx, name, module, requirement):
    p = Peer(name, "drv_%s.py" % module, env={"PYTHONPATH": None}, check="import " + module,
             hint="install it with: %s -m pip install %s (or run with --install)" % (sys.executable, requirement))
    if ctx.install and p.problem():
        ctx.log("installing %s into %s" % (requirement, sys.prefix))
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        requirement], check=False)
    return p


@peer("asyncssh")
def peer_asyncssh(ctx):
    """asyncssh: conn.run(cmd), result.stdout.splitlines()."""
    return _pip_peer(ctx, "asyncssh", "asyncssh", "asyncssh")


@peer("paramiko")
def peer_paramiko(ctx):
    """paramiko, one thread per host, exec_command + line iteration."""
    return _pip_peer(ctx, "paramiko", "paramiko", "paramiko")


@peer("openssh")
def peer_openssh(ctx):
    """plain OpenSSH ``ssh``: one client process per host, ControlMaster for open connections."""
    return Peer("openssh", "drv_openssh.py", env={"PYTHONPATH": None},
                check="import shutil, sys; sys.exit(0 if shutil.which('ssh') else 'no ssh client in PATH')",
                hint="install the OpenSSH client (apt-get install openssh-client)")


# ------------------------------------------------------------------------------------ workloads

@workload("latency")
def wl_latency(opts):
    """One host: connect, run ``echo hello``, read output and exit code, disconnect; repeated.
    Reported wall/CPU are the median of the per-run values."""
    return Workload("latency", "latency", 1, "echo hello",
                    {"runs": opts.latency_runs, "expect_output": ["hello"]})


def _heavy(name, opts, reverse):
    n = opts.heavy_lines
    return Workload(name, "stream", opts.heavy_hosts, "seq 1 %d" % n,
                    {"expect_lines": n, "expect_last": str(n), "reverse": reverse})


@workload("heavy_output")
def wl_heavy_output(opts):
    """N connections each running ``seq 1 L``; every line read through the public iterator."""
    return _heavy("heavy_output", opts, reverse=False)


@workload("heavy_output_reverse")
def wl_heavy_output_reverse(opts):
    """As heavy_output, hosts read in reverse order (shows reading is linear in any order)."""
    return _heavy("heavy_output_reverse", opts, reverse=True)


DEFAULT_PEERS = ["pssh", "parallel-ssh", "asyncssh", "paramiko"]
DEFAULT_WORKLOADS = ["latency", "heavy_output", "heavy_output_reverse"]


# ------------------------------------------------- many hosts, open connections (issue 3, s.7)

def _connect_echo(n):
    def make(opts):
        return Workload("connect_echo_%d" % n, "stream", n, "echo hi",
                        {"expect_lines": 1, "expect_last": "hi"})
    make.__doc__ = ("%d connections (a farm of --farm-size sshd, host entries repeated): connect, "
                    "``echo hi``, read output + exit code." % n)
    return make


for _n in (50, 200, 500):
    workload("connect_echo_%d" % _n)(_connect_echo(_n))


@workload("rounds_true")
def wl_rounds_true(opts):
    """Connections opened once, then rounds of ``true``; wall/CPU are medians per round.

    --rounds-hosts (20) connections, --rounds (50) rounds (run + exit codes); connect excluded."""
    return Workload("rounds_true", "rounds", getattr(opts, "rounds_hosts", 20), "true",
                    {"rounds": getattr(opts, "rounds", 50), "expect_output": []})


@workload("idle_sleep")
def wl_idle_sleep(opts):
    """500 hosts run ``sleep 5``; CPU is the client's from "all started" to "all exited".

    --idle-hosts (500), --idle-seconds (5); connect excluded from CPU, wall is the whole run."""
    return Workload("idle_sleep", "idle", getattr(opts, "idle_hosts", 500),
                    "sleep %g" % getattr(opts, "idle_seconds", 5), {"expect_output": []})


# The issue-3 set (``--workloads hosts`` selects it); peak memory at 500 hosts is the peak RSS of
# connect_echo_500, shown as its own row ``peak_memory_500`` by report.py.
WORKLOAD_GROUPS = {"hosts": ["connect_echo_50", "connect_echo_200", "connect_echo_500",
                             "rounds_true", "idle_sleep"]}
DEFAULT_PEERS += ["openssh"]
DEFAULT_WORKLOADS += WORKLOAD_GROUPS["hosts"]


def select(kind, registry, names):
    if kind == "workload":  # expand groups in place, e.g. "hosts"
        names[:] = [w for n in names for w in WORKLOAD_GROUPS.get(n, [n])]
        for n in names:  # any host count: bastion_<N>, bastion_<N>_direct
            if n not in registry and _BASTION_NAME.match(n):
                _register_bastion(int(_BASTION_NAME.match(n).group(1)))
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise SystemExit("unknown %s: %s (known: %s)" % (kind, ", ".join(unknown), ", ".join(registry)))
    return names


__all__ = ["Peer", "Workload", "PEERS", "WORKLOADS", "peer", "workload", "select",
           "DEFAULT_PEERS", "DEFAULT_WORKLOADS", "ROOT", "HERE", "WORKLOAD_GROUPS"]


# --------------------------------------------------- file transfer: SFTP/SCP (issue 4)

_TRANSFER_FILES = {}


def _transfer_source(opts):
    """A random source file of --transfer-mb MiB (default 64) in a world-writable scratch
    directory, made once per run and removed at exit; copies go to its ``copies/``."""
    mb = getattr(opts, "transfer_mb", 64)
    if mb not in _TRANSFER_FILES:
        import atexit
        import hashlib
        import shutil
        import tempfile
        scratch = tempfile.mkdtemp(prefix="pssh-bench-xfer-")
        atexit.register(shutil.rmtree, scratch, True)
        os.chmod(scratch, 0o777)
        source, dest = os.path.join(scratch, "source.bin"), os.path.join(scratch, "copies")
        os.mkdir(dest)
        os.chmod(dest, 0o777)
        digest = hashlib.sha256()
        with open(source, "wb") as fh:
            for _ in range(mb):
                block = os.urandom(1 << 20)
                digest.update(block)
                fh.write(block)
        os.chmod(source, 0o644)
        _TRANSFER_FILES[mb] = {"source": source, "dest_dir": dest, "size": mb << 20,
                               "sha256": digest.hexdigest()}
    return _TRANSFER_FILES[mb]


def _transfer_workload(protocol, direction):
    name = "%s_%s" % (protocol, direction)

    def make(opts):
        extra = dict(_transfer_source(opts), protocol=protocol, direction=direction)
        return Workload(name, "transfer", getattr(opts, "transfer_hosts", 10), "", extra)
    make.__doc__ = ("%s %s of one --transfer-mb (64) MiB file, --transfer-hosts (10) hosts at "
                    "once; every copy's SHA-256 checked." % (protocol.upper(), direction))
    return make


for _protocol in ("sftp", "scp"):
    for _direction in ("upload", "download"):
        workload("%s_%s" % (_protocol, _direction))(_transfer_workload(_protocol, _direction))

WORKLOAD_GROUPS["transfer"] = ["sftp_upload", "sftp_download", "scp_upload", "scp_download"]


# ------------------------------------------------------ through one bastion (issue 5)

import re  # noqa: E402

_BASTION_NAME = re.compile(r"^bastion_([1-9][0-9]*)(_direct)?$")


def _bastion(n, direct):
    name = "bastion_%d%s" % (n, "_direct" if direct else "")

    def make(opts):
        return Workload(name, "bastion", n, "echo hi",
                        {"expect_lines": 1, "expect_last": "hi", "via_bastion": not direct})
    if direct:
        make.__doc__ = ("%d connections made directly, ``echo hi``, disconnect: bastion_%d's "
                        "baseline (same driver code, no proxy)." % (n, n))
    else:
        make.__doc__ = ("%d connections THROUGH ONE bastion sshd on 127.0.0.1: connect, ``echo hi``, "
                        "output + exit code, disconnect." % n)
    return make


def _register_bastion(n):
    workload("bastion_%d" % n)(_bastion(n, direct=False))
    workload("bastion_%d_direct" % n)(_bastion(n, direct=True))


for _n in (50, 200):
    _register_bastion(_n)

# ``--workloads bastion`` (issue 5's target: 200 hosts) and ``bastion_quick`` (50 hosts); the
# direct variant first, so that both are measured in the same run.
WORKLOAD_GROUPS["bastion"] = ["bastion_200_direct", "bastion_200"]
WORKLOAD_GROUPS["bastion_quick"] = ["bastion_50_direct", "bastion_50"]


# ------------------------------------- sharded execution: processes and Dask (issue 12)

def _sharded_peer(name, sharding, doc):
    def make(ctx):
        return Peer(name, "drv_sharded.py", env={"PYTHONPATH": ROOT, "PSSH_BENCH_SHARDING": sharding},
                    check="import pssh.sharded" + ("; import distributed" if sharding.startswith("dask") else ""),
                    hint="pip install -e '.[dask]' (Dask peers) and build pssh",
                    library_under=ROOT, expect={"sharding": sharding})
    make.__doc__ = doc
    peer(name)(make)


_sharded_peer("sharded-1proc", "one", "one pssh process (ParallelSSHClient), every line read into lists")
_sharded_peer("sharded-2local", "local:2", "pssh.sharded.ShardedClient on 2 local shard processes")
_sharded_peer("sharded-2dask", "dask:2", "ShardedClient on a Dask LocalCluster of 2 worker processes")

workload("connect_echo_2000")(_connect_echo(2000))


def _numbers_file(lines):
    """A world-readable file holding the output of ``seq 1 lines`` (made once, then reused),
    for the farm's users to ``cat``."""
    import tempfile
    path = os.path.join(tempfile.gettempdir(), "pssh-bench-seq-%d.txt" % lines)
    if not os.path.exists(path):
        fd, temp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".pssh-bench-seq-")
        with os.fdopen(fd, "w") as fh:
            fh.writelines("%d\n" % number for number in range(1, lines + 1))
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    return path


@workload("rounds_output")
def wl_rounds_output(opts):
    """Client-bound: --sharded-hosts (10) connections opened once, then --rounds (at most 10)
    rounds of ``cat`` of a file holding ``seq 1 --sharded-lines`` (1000000): every line read,
    --sharded-cap (4096) characters kept per host. ``cat`` of a cached file costs sshd half
    of what ``seq`` piping its output in small writes does, so the client is the bottleneck."""
    lines = getattr(opts, "sharded_lines", 1000000)
    return Workload("rounds_output", "rounds", getattr(opts, "sharded_hosts", 10),
                    "cat %s" % _numbers_file(lines),
                    {"rounds": min(getattr(opts, "rounds", 10), 10),
                     "output_cap": getattr(opts, "sharded_cap", 4096), "expect_output": None})


WORKLOAD_GROUPS["sharded"] = ["connect_echo_2000", "rounds_output"]
SHARDED_PEERS = ["sharded-1proc", "sharded-2local", "sharded-2dask"]
