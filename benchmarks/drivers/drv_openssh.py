"""Driver for plain OpenSSH: one ``ssh`` client process per host, all run concurrently.

* ``latency``/``stream`` (connect_echo_N, heavy_output): ``ssh ... user@host cmd`` per host
  (subprocess.Popen), stdout read line by line, exit code from the process.
* ``rounds`` (commands on open connections): a ControlMaster per host is started first
  (``ssh -M -N -S path``), each round runs ``ssh -S path ... cmd`` per host over the existing
  connection, ``ssh -S path -O exit`` closes them at the end.
* ``idle``: ``ssh -v ... cmd`` per host; a command counts as started once its process logged
  ``Sending command`` (the exec request went out), which is when ``started()`` is called.

Every ``ssh`` uses ``KexAlgorithms=curve25519-sha256`` (what pssh/libssh2, asyncssh and paramiko
negotiate with this sshd): OpenSSH's default sntrup761x25519 costs ~100 ms of client CPU per
connection, which would measure post-quantum key exchange instead of the client.

Client CPU (``_common.cpu_seconds``) = this driver + its reaped ``ssh`` children
(RUSAGE_CHILDREN) + live ones (ControlMasters, running clients) read from /proc/<pid>/schedstat.

Peak memory: a sampler thread reads /proc/<pid>/statm of the live ``ssh`` processes every 0.1 s
(idle mode: once, when all have started) and keeps the largest "sum of their anonymous resident
memory + the largest file-backed resident part" (the ssh binary and its libraries are shared, so
they count once). ``maxrss_kb`` = this driver's own peak RSS + that. The rusage of reaped
children is no use here: ru_maxrss of a child forked from Python includes the forked image.
"""
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import types

import _common
from _common import TRACKED_CHILDREN, main

SSH = shutil.which("ssh") or "/usr/bin/ssh"


def _version():
    try:
        p = subprocess.run([SSH, "-V"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        return p.stdout.decode(errors="replace").strip()
    except (OSError, subprocess.TimeoutExpired):
        return None


# stands in for a library module in _common.main's report (name, version, path)
_Lib = types.SimpleNamespace(__name__="openssh", __file__=SSH, __version__=_version())


def ssh_command(args, host, port, command, extra=(), log_level="ERROR"):
    cmd = [SSH, "-F", "/dev/null", "-T",
           "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
           "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
           "-o", "UpdateHostKeys=no", "-o", "ConnectTimeout=120",
           "-o", "KexAlgorithms=curve25519-sha256,curve25519-sha256@libssh.org",
           "-i", args["key"], "-p", str(port)]
    if log_level:
        cmd += ["-o", "LogLevel=" + log_level]
    cmd += list(extra)
    cmd.append("%s@%s" % (args["user"], host))
    if command is not None:
        cmd.append(command)
    return cmd


LIVE = set()  # pids of our ssh processes not reaped yet (for the memory sampler)
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _spawn(cmd, stderr=subprocess.PIPE):
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
    LIVE.add(proc.pid)
    return proc


def children_memory_kb():
    """Sum of the live ssh processes' anonymous resident memory plus the largest file-backed
    resident part (statm: resident - shared, shared)."""
    anon = file_max = 0
    for pid in list(LIVE):
        try:
            with open("/proc/%d/statm" % pid) as f:
                fields = f.read().split()
            resident, shared = int(fields[1]), int(fields[2])
        except (OSError, ValueError, IndexError):
            continue
        anon += resident - shared
        file_max = max(file_max, shared)
    return (anon + file_max) * PAGE_KB


def _note_peak(kb):
    cur = _common.CHILDREN_PEAK_RSS_KB["value"] or 0
    _common.CHILDREN_PEAK_RSS_KB["value"] = max(cur, kb)


class Sampler(object):
    """Samples children_memory_kb() every ``interval`` s in a thread while in a ``with`` block."""

    def __init__(self, interval=0.1):
        self.interval = interval
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.done.wait(self.interval):
            _note_peak(children_memory_kb())

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def _reap(proc, timeout=None):
    """Wait for ``proc`` with wait4: returns (exit code, own peak RSS in kB). The pid leaves
    TRACKED_CHILDREN first, so its CPU moves to RUSAGE_CHILDREN without being counted twice.
    After ``timeout`` seconds the process is killed."""
    TRACKED_CHILDREN.discard(proc.pid)
    LIVE.discard(proc.pid)
    if proc.returncode is not None:  # already reaped by Popen.poll()
        return proc.returncode, 0
    if timeout is not None:
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                return proc.returncode, usage.ru_maxrss
            if time.monotonic() > deadline:
                proc.kill()
                break
            time.sleep(0.005)
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss


def _finish(proc, count_only=False):
    """Read all stdout (lines, or just count + last), then stderr, then reap."""
    if count_only:
        nlines, last = 0, None
        for line in proc.stdout:
            nlines += 1
            last = line
        out = (nlines, last.rstrip(b"\n").decode(errors="replace") if last is not None else None)
    else:
        out = [line.rstrip(b"\n").decode(errors="replace") for line in proc.stdout]
    err = proc.stderr.read() if proc.stderr is not None else b""
    proc.stdout.close()
    if proc.stderr is not None:
        proc.stderr.close()
    code, rss = _reap(proc)
    return out, err.decode(errors="replace").strip(), code, rss


def _failure_lines(lines, err, code):
    return lines if code == 0 or not err else list(lines) + err.splitlines()[-2:]


# ------------------------------------------------------------------------- latency, stream

def single(args, host, port):
    with Sampler():
        proc = _spawn(ssh_command(args, host, port, args["command"]))
        lines, err, code, _rss = _finish(proc)
    return _failure_lines(lines, err, code), code


def parallel(args):
    pairs = list(zip(args["hosts"], args["ports"]))
    with Sampler():
        procs = [_spawn(ssh_command(args, h, p, args["command"])) for h, p in pairs]
        order = range(len(procs) - 1, -1, -1) if args.get("reverse") else range(len(procs))
        results = [None] * len(procs)
        for i in order:
            (nlines, last), err, code, _rss = _finish(procs[i], count_only=True)
            results[i] = (nlines, last if code == 0 else "%s [exit %s: %s]" % (last, code, err[-200:]), code)
    return results


# ------------------------------------------------------------------ rounds: ControlMaster

class Rounds:
    """One ControlMaster per host position (duplicates get their own master), opened once."""

    def __init__(self, args, start_timeout=120.0):
        self.args = args
        self.pairs = list(zip(args["hosts"], args["ports"]))
        self.dir = tempfile.mkdtemp(prefix="psshb-cm-")  # short: unix socket paths <= 108 bytes
        self.paths = [os.path.join(self.dir, "cm%d" % i) for i in range(len(self.pairs))]
        self.masters = []
        self.sampler = Sampler().__enter__()
        try:
            for (host, port), path in zip(self.pairs, self.paths):
                cmd = ssh_command(args, host, port, None, extra=[
                    "-N", "-o", "ControlMaster=yes", "-o", "ControlPersist=no", "-o", "ControlPath=" + path])
                proc = _spawn(cmd)
                TRACKED_CHILDREN.add(proc.pid)
                self.masters.append(proc)
            # the master creates its socket once authenticated
            deadline = time.monotonic() + start_timeout
            pending = list(range(len(self.masters)))
            while pending:
                pending = [i for i in pending if not os.path.exists(self.paths[i])]
                for i in pending:
                    if self.masters[i].poll() is not None:
                        raise RuntimeError("ControlMaster for %s:%s exited with %s: %s" % (
                            self.pairs[i] + (self.masters[i].returncode,
                                             self.masters[i].stderr.read().decode(errors="replace")[-300:])))
                if pending and time.monotonic() > deadline:
                    raise RuntimeError("%d ControlMasters not up within %g s" % (len(pending), start_timeout))
                if pending:
                    time.sleep(0.005)
        except BaseException:
            self.close()
            raise

    def run(self, command):
        procs = [_spawn(ssh_command(self.args, host, port, command, extra=[
                     "-o", "ControlMaster=no", "-o", "ControlPath=" + path]))
                 for (host, port), path in zip(self.pairs, self.paths)]
        results = []
        for proc in procs:
            lines, err, code, _rss = _finish(proc)
            results.append((_failure_lines(lines, err, code), code))
        return results

    def close(self):
        exits = []
        for (host, port), path, master in zip(self.pairs, self.paths, self.masters):
            if master.poll() is None:
                exits.append(_spawn(ssh_command(self.args, host, port, None, extra=[
                    "-o", "ControlPath=" + path, "-O", "exit"])))
        for proc in exits:
            _finish(proc)
        self.sampler.__exit__()
        for master in self.masters:
            _reap(master, timeout=30)
            for stream in (master.stdout, master.stderr):
                stream.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------------- idle

def _pss_kb(pid, field="Pss:"):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


MARKER = b"Sending command:"


def idle(args, started):
    pairs = list(zip(args["hosts"], args["ports"]))
    procs = []
    for host, port in pairs:
        proc = _spawn(ssh_command(args, host, port, args["command"], extra=["-v"], log_level=None))
        TRACKED_CHILDREN.add(proc.pid)
        procs.append(proc)
    # wait until every process logged that it sent the command (or ended: a failure, reported
    # through its exit code below)
    sel = selectors.DefaultSelector()
    buffers = {}
    for proc in procs:
        os.set_blocking(proc.stderr.fileno(), False)
        sel.register(proc.stderr, selectors.EVENT_READ, proc)
        buffers[proc.pid] = bytearray()
    logs = {}
    while sel.get_map():
        for key, _ in sel.select(timeout=1.0):
            proc = key.data
            chunk = os.read(key.fileobj.fileno(), 65536)
            buf = buffers[proc.pid]
            buf += chunk
            if not chunk or MARKER in buf:
                sel.unregister(key.fileobj)
                logs[proc.pid] = bytes(buf)
                os.set_blocking(proc.stderr.fileno(), True)
    sel.close()
    # all clients alive and connected: sample their memory now, before started(), so that
    # reading /proc stays out of the measured CPU (Pss: shared pages split between processes)
    _note_peak(children_memory_kb())
    _common.EXTRA_RESULT["children_pss_kb_when_started"] = sum(_pss_kb(p.pid) for p in procs)
    _common.EXTRA_RESULT["children_rss_kb_when_started"] = sum(_pss_kb(p.pid, "Rss:") for p in procs)
    started()
    results = []
    for proc in procs:
        lines, err, code, _rss = _finish(proc)
        if code != 0:
            err = (logs.get(proc.pid, b"").decode(errors="replace") + err).strip()
            err = "\n".join(l for l in err.splitlines() if not l.startswith("debug"))
        results.append((_failure_lines(lines, err, code), code))
    return results


# -- file transfer workloads (issue 4): one ``sftp -b`` or ``scp -O`` process per host ---------

def transfer(args, jobs):
    upload, sftp = args["direction"] == "upload", args["protocol"] == "sftp"
    opts = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "LogLevel=ERROR",
            "-o", "KexAlgorithms=curve25519-sha256,curve25519-sha256@libssh.org",
            "-i", args["key"]]
    batch_dir = tempfile.mkdtemp(prefix="pssh-bench-sftp-")
    procs = []
    try:
        for i, host, port, src, dst in jobs:
            login = "%s@%s" % (args["user"], host)
            if sftp:
                batch = os.path.join(batch_dir, "batch%d" % i)
                with open(batch, "w") as fh:
                    fh.write('%s "%s" "%s"\n' % ("put" if upload else "get", src, dst))
                cmd = [shutil.which("sftp") or "/usr/bin/sftp", "-q", "-b", batch,
                       "-P", str(port)] + opts + [login]
            else:
                scp = shutil.which("scp") or "/usr/bin/scp"
                ends = [src, "%s:%s" % (login, dst)] if upload else ["%s:%s" % (login, src), dst]
                cmd = [scp, "-O", "-q", "-P", str(port)] + opts + ends
            procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        failed = []
        for proc in procs:
            _out, err = proc.communicate()
            if proc.returncode != 0:
                failed.append("rc %s: %s" % (proc.returncode, err.decode(errors="replace")[-200:]))
        if failed:
            raise RuntimeError("; ".join(failed))
    finally:
        shutil.rmtree(batch_dir, ignore_errors=True)


import _transfer  # noqa: E402
_transfer.register(transfer)


# -- through one bastion (issue 5): a ControlMaster to the bastion, ``-W`` through it per target

def bastion(args, via, start_timeout=120.0):
    """A ControlMaster to the bastion (``ssh -M -N``, one connection), then one ``ssh`` per
    target with ``ProxyCommand=ssh -S <master> -W %h:%p bastion`` (a mux client asking the
    master for a direct-tcpip channel), all at once; ``ssh -O exit`` closes the master.
    ``via`` None: the same as ``parallel`` (one ``ssh`` per host, direct)."""
    if via is None:
        return parallel(args)
    jump_args = dict(args, user=via["user"], key=via["key"])
    tmp = tempfile.mkdtemp(prefix="psshb-jm-")  # short: unix socket paths <= 108 bytes
    path = os.path.join(tmp, "cm")
    with Sampler():
        master = _spawn(ssh_command(jump_args, via["host"], via["port"], None, extra=[
            "-N", "-o", "ControlMaster=yes", "-o", "ControlPersist=no", "-o", "ControlPath=" + path]))
        TRACKED_CHILDREN.add(master.pid)
        try:
            deadline = time.monotonic() + start_timeout
            while not os.path.exists(path):  # the master creates its socket once authenticated
                if master.poll() is not None:
                    raise RuntimeError("bastion ControlMaster exited with %s: %s" % (
                        master.returncode, master.stderr.read().decode(errors="replace")[-300:]))
                if time.monotonic() > deadline:
                    raise RuntimeError("bastion ControlMaster not up within %g s" % start_timeout)
                time.sleep(0.005)
            proxy = " ".join([SSH, "-F", "/dev/null", "-o", "ControlMaster=no", "-o", "ControlPath=" + path,
                              "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-W", "%h:%p",
                              "-p", str(via["port"]), "%s@%s" % (via["user"], via["host"])])
            procs = [_spawn(ssh_command(args, h, p, args["command"], extra=["-o", "ProxyCommand=" + proxy]))
                     for h, p in zip(args["hosts"], args["ports"])]
            results = []
            for proc in procs:
                (nlines, last), err, code, _rss = _finish(proc, count_only=True)
                results.append((nlines, last if code == 0 else "%s [exit %s: %s]" % (last, code, err[-200:]), code))
        finally:
            if master.poll() is None:
                _finish(_spawn(ssh_command(jump_args, via["host"], via["port"], None, extra=[
                    "-o", "ControlPath=" + path, "-O", "exit"])))
            _reap(master, timeout=30)
            for stream in (master.stdout, master.stderr):
                stream.close()
            shutil.rmtree(tmp, ignore_errors=True)
    return results


import _bastion  # noqa: E402
_bastion.register(bastion)


if __name__ == "__main__":
    sys.exit(main(single, parallel, library=_Lib, info=lambda: {"ssh": _Lib.__version__},
                  rounds=Rounds, idle=idle))
