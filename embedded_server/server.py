"""One real OpenSSH ``sshd`` on a loopback address, configured for tests.

The server runs in the foreground (``sshd -D -e``) as the current user. Run as root it can log
in any user; run as an ordinary user it can only log in that same user, which is all the tests
need (``StrictModes no`` and ``UsePAM no`` make that work). Its log goes to ``<workdir>/sshd.log``.
"""

import atexit
import ctypes
import getpass
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import warnings

from . import proctree
from .keys import KeyPair, fingerprint, make_host_key, ssh_keygen_path
from .net import format_hostport, free_port, read_banner

__all__ = ["OpenSSHServer", "SSHServerError", "sshd_path", "sshd_version", "stop_all_servers", "live_servers"]

STOP_GRACE = 5.0

_LIVE = set()
_LIVE_LOCK = threading.Lock()


class SSHServerError(RuntimeError):
    """sshd could not be started (the message carries the tail of its log)."""


def sshd_path():
    """Absolute path of sshd: ``$PSSH_SSHD``, else /usr/sbin/sshd, else the PATH.

    sshd refuses to run from a relative path ("sshd re-exec requires execution with an absolute
    path"), so the result is always absolute.
    """
    candidates = [os.environ.get("PSSH_SSHD"), "/usr/sbin/sshd", "/usr/local/sbin/sshd",
                  shutil.which("sshd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")]
    for cand in candidates:
        if cand and os.access(cand, os.X_OK):
            return os.path.abspath(cand)
    raise SSHServerError("sshd not found: install openssh-server (ci/setup.sh does), or set PSSH_SSHD")


_VERSION_CACHE = {}


def sshd_version(path=None):
    """OpenSSH version of sshd as a tuple, e.g. ``(9, 2)``; ``(0, 0)`` if unknown."""
    path = path or sshd_path()
    if path not in _VERSION_CACHE:
        try:
            proc = subprocess.run([path, "-V"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=10)
            match = re.search(rb"OpenSSH_(\d+)\.(\d+)", proc.stdout)
        except (OSError, subprocess.SubprocessError):
            match = None
        _VERSION_CACHE[path] = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    return _VERSION_CACHE[path]


def live_servers():
    with _LIVE_LOCK:
        return list(_LIVE)


def stop_all_servers():
    """Stop every server this process created and has not stopped (atexit, test session end)."""
    for srv in live_servers():
        try:
            srv.stop()
        except Exception:  # pragma: no cover - best effort at exit
            pass


atexit.register(stop_all_servers)


def _set_pdeathsig():  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG: sshd dies with its starter
    except Exception:
        pass


def _key_path(key):
    if isinstance(key, KeyPair):
        return key.public
    key = os.fspath(key)
    if not key.endswith(".pub") and os.path.exists(key + ".pub"):
        return key + ".pub"
    return key


def login_user():
    """The account the servers log clients in as.

    As root this is the unprivileged test user of :func:`ensure_password_user`
    (created on first use): root's own shell start-up files (pyenv, for one)
    can add hundreds of milliseconds and lock contention to every command and
    would distort tests and benchmarks. ``PSSH_TEST_LOGIN_AS_ROOT=1`` keeps root.
    """
    if os.geteuid() != 0 or os.environ.get("PSSH_TEST_LOGIN_AS_ROOT") == "1":
        return getpass.getuser()
    from embedded_server.users import ensure_password_user
    return ensure_password_user()[0]


def _account_locked(user):
    """True if ``user``'s shadow entry is locked ('!...'): sshd with UsePAM no refuses it."""
    try:
        with open("/etc/shadow") as fh:
            for line in fh:
                fields = line.split(":")
                if fields[0] == user and len(fields) > 1:
                    return fields[1].startswith("!")
    except OSError:
        pass
    return False


class OpenSSHServer(object):
    """A real OpenSSH server on ``listen_ip:port`` with its own keys, config and log in ``workdir``.

    :param listen_ip: address to listen on; any 127.0.0.N works on Linux, ``::1`` for IPv6.
    :param port: TCP port; a free one is picked when None. Kept across stop/start/restart.
    :param authorized_keys: public key paths (or :class:`KeyPair`) allowed to log in.
    :param workdir: where config, host key, authorized_keys and log live; a temporary directory
        removed by :meth:`stop` when None.
    :param host_key_kind: kind of generated host key (ed25519, rsa, ecdsa).
    :param host_key: an existing private host key to use instead (copied into the workdir).
    :param extra_config: sshd_config text, list of lines or dict; its keywords replace the defaults
        (sshd takes the first value it reads), ``Match`` blocks go at the end.
    :param password_auth: ``PasswordAuthentication`` yes/no.
    :param log_level: sshd LogLevel; default ``$PSSH_SSHD_LOGLEVEL`` or ERROR.
    """

    def __init__(self, listen_ip="127.0.0.1", port=None, authorized_keys=(), workdir=None,
                 host_key_kind="ed25519", host_key=None, extra_config=None, password_auth=True,
                 log_level=None, sshd=None):
        self.listen_ip = listen_ip
        self.port = int(port) if port else free_port(listen_ip)
        self.user = login_user()
        self.authorized_keys = [_key_path(k) for k in authorized_keys or ()]
        self.host_key_kind = host_key_kind
        self.extra_config = extra_config
        self.password_auth = password_auth
        self.log_level = log_level or os.environ.get("PSSH_SSHD_LOGLEVEL") or "ERROR"
        self.sshd = sshd or sshd_path()
        self._own_workdir = workdir is None
        self._workdir_arg = workdir
        self._host_key_src = os.fspath(host_key) if host_key else None
        self._proc = None
        self._log = None
        self.workdir = None
        self.host_key_path = None
        self.host_key_fingerprint = None
        self._prepare()

    # -- properties ---------------------------------------------------------------------------
    @property
    def host(self):
        return self.listen_ip

    @property
    def address(self):
        return self.listen_ip, self.port

    @property
    def hostport(self):
        """``ip:port`` or ``[ip]:port`` (IPv6), as in ssh's ListenAddress and known_hosts."""
        return format_hostport(self.listen_ip, self.port)

    @property
    def pid(self):
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self):
        return self._proc is not None and self._proc.poll() is None

    @property
    def config_path(self):
        return os.path.join(self.workdir, "sshd_config")

    @property
    def log_path(self):
        return os.path.join(self.workdir, "sshd.log")

    @property
    def authorized_keys_path(self):
        return os.path.join(self.workdir, "authorized_keys")

    @property
    def host_public_key_path(self):
        return self.host_key_path + ".pub"

    def __repr__(self):
        state = "running pid %d" % self.pid if self.running else "stopped"
        return "<OpenSSHServer %s user=%s %s>" % (self.hostport, self.user, state)

    # -- setup --------------------------------------------------------------------------------
    def _prepare(self):
        if self._own_workdir:
            self.workdir = tempfile.mkdtemp(prefix="pssh-sshd-")
        else:
            self.workdir = os.path.abspath(self._workdir_arg)
            os.makedirs(self.workdir, exist_ok=True)
        if os.geteuid() == 0:
            # sshd reads AuthorizedKeysFile as the user logging in: let any test user read it.
            os.chmod(self.workdir, 0o755)
        with _LIVE_LOCK:
            _LIVE.add(self)
        self._install_host_key()
        self.write_authorized_keys()

    def _install_host_key(self):
        if self._host_key_src:
            dest = os.path.join(self.workdir, "ssh_host_key")
            for stale in (dest, dest + ".pub"):
                if os.path.exists(stale):
                    os.unlink(stale)
            shutil.copyfile(self._host_key_src, dest)
            os.chmod(dest, 0o600)
            if os.path.exists(self._host_key_src + ".pub"):
                shutil.copyfile(self._host_key_src + ".pub", dest + ".pub")
            else:
                pub = subprocess.run([ssh_keygen_path(), "-y", "-f", dest], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
                if pub.returncode != 0:
                    raise SSHServerError("cannot read host key %s: %s"
                                         % (self._host_key_src, pub.stderr.decode(errors="replace")))
                with open(dest + ".pub", "wb") as fh:
                    fh.write(pub.stdout)
            self.host_key_path = dest
        else:
            self.host_key_path = make_host_key(self.workdir, self.host_key_kind).private
        self.host_key_fingerprint = fingerprint(self.host_key_path + ".pub")

    def replace_host_key(self, host_key=None, kind=None):
        """Use another host key from the next (re)start: ``host_key`` (a private key path) or a
        newly generated one of ``kind``. Returns the new fingerprint. Simulates a changed host."""
        if host_key is not None:
            self._host_key_src = os.fspath(host_key)
        else:
            self._host_key_src = None
            if kind:
                self.host_key_kind = kind
            for name in os.listdir(self.workdir):
                if name.startswith("ssh_host_"):
                    os.unlink(os.path.join(self.workdir, name))
        self._install_host_key()
        return self.host_key_fingerprint

    def authorize(self, *keys):
        """Authorize more public keys (effective at once: sshd reads the file per login)."""
        self.authorized_keys.extend(_key_path(k) for k in keys)
        self.write_authorized_keys()

    def write_authorized_keys(self):
        lines = []
        for path in self.authorized_keys:
            with open(path) as fh:
                lines.extend(line.strip() for line in fh if line.strip())
        tmp = self.authorized_keys_path + ".tmp"
        with open(tmp, "w") as fh:
            fh.write("".join(line + "\n" for line in lines))
        os.chmod(tmp, 0o644 if os.geteuid() == 0 else 0o600)
        os.replace(tmp, self.authorized_keys_path)

    def _extra_lines(self):
        extra = self.extra_config
        if not extra:
            return [], []
        if isinstance(extra, dict):
            lines = ["%s %s" % (k, v) for k, v in extra.items()]
        elif isinstance(extra, str):
            lines = extra.splitlines()
        else:
            lines = list(extra)
        lines = [line.strip() for line in lines if line.strip()]
        for i, line in enumerate(lines):
            if line.split()[0].lower() == "match":
                return lines[:i], lines[i:]
        return lines, []

    def config_text(self):
        """The sshd_config this server runs with."""
        yes = lambda flag: "yes" if flag else "no"
        defaults = [
            ("ListenAddress", self.hostport),
            ("HostKey", self.host_key_path),
            ("PidFile", "none"),
            ("UsePAM", "no"),
            ("StrictModes", "no"),
            ("PermitRootLogin", "yes"),
            ("PubkeyAuthentication", "yes"),
            ("PasswordAuthentication", yes(self.password_auth)),
            ("KbdInteractiveAuthentication", "yes"),
            ("PermitEmptyPasswords", "no"),
            ("AuthorizedKeysFile", self.authorized_keys_path),
            ("MaxStartups", "2000"),
            ("MaxSessions", "200"),
            ("Subsystem", "sftp internal-sftp"),
            ("LogLevel", self.log_level),
            ("X11Forwarding", "no"),
            ("AllowTcpForwarding", "yes"),
            ("AllowAgentForwarding", "yes"),
            ("ClientAliveInterval", "0"),
            ("UseDNS", "no"),
            ("PrintMotd", "no"),
            ("PrintLastLog", "no"),
        ]
        if sshd_version(self.sshd) >= (9, 8):
            # 9.8+ penalises sources whose connections fail auth or drop early: tests do that a lot.
            defaults.append(("PerSourcePenalties", "no"))
        head, matches = self._extra_lines()
        overridden = {line.split()[0].lower() for line in head}
        out = ["# written by embedded_server for %s; sshd uses the first value of a keyword" % self.hostport]
        out += head
        out += ["%s %s" % (k, v) for k, v in defaults if k.lower() not in overridden]
        out.append("# AcceptEnv is not set: no client environment variable is accepted")
        out += matches
        return "\n".join(out) + "\n"

    # -- lifecycle ----------------------------------------------------------------------------
    def _spawn(self):
        if self.running:
            raise SSHServerError("%r is already running" % (self,))
        if self.workdir is None or not os.path.isdir(self.workdir):
            self._prepare()
        with _LIVE_LOCK:
            _LIVE.add(self)
        if os.geteuid() == 0:
            # privilege separation directory, normally made by the init script / systemd unit
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
            if _account_locked(self.user):
                warnings.warn("account %r is locked ('!' in /etc/shadow): sshd with UsePAM no will refuse "
                              "its logins" % self.user, RuntimeWarning)
        with open(self.config_path, "w") as fh:
            fh.write(self.config_text())
        self._close_log()
        self._log = open(self.log_path, "ab")
        self._log_start = self._log.tell()
        main_thread = threading.current_thread() is threading.main_thread()
        self._proc = subprocess.Popen(
            [self.sshd, "-D", "-e", "-f", self.config_path],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            close_fds=True, start_new_session=True,
            # PDEATHSIG fires when the starting *thread* ends, so only from the main thread
            preexec_fn=_set_pdeathsig if main_thread else None,
        )

    def _check_ready(self):
        """True once the banner is served; raises if sshd exited."""
        if self._proc is None:
            raise SSHServerError("%r was not started" % (self,))
        if self._proc.poll() is not None:
            code = self._proc.returncode
            self._proc = None
            self._close_log()
            raise SSHServerError("sshd on %s exited with code %s during start-up:\n%s"
                                 % (self.hostport, code, self.log_tail(since_start=True)))
        banner = read_banner(self.listen_ip, self.port, timeout=0.5)
        if banner is None or self._proc.poll() is not None:
            return False
        if not proctree.listens_on(self._proc.pid, self.port):
            # another server answered: this sshd is about to fail its bind and exit
            return False
        return True

    def _fail_start(self, timeout):
        tail = self.log_tail(since_start=True)
        self._stop(cleanup=False)
        raise SSHServerError("sshd on %s served no SSH banner within %.1f s:\n%s" % (self.hostport, timeout, tail))

    def start(self, timeout=10):
        """Start sshd; return once a TCP connect receives its ``SSH-2.0-`` banner."""
        self._spawn()
        deadline = time.monotonic() + timeout
        while not self._check_ready():
            if time.monotonic() > deadline:
                self._fail_start(timeout)
            time.sleep(0.02)
        return self

    def _close_log(self):
        if self._log is not None:
            try:
                self._log.close()
            finally:
                self._log = None

    def _stop(self, cleanup):
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                # connection children left the listener's process group (setsid): signal them too
                children = [proctree.identity(p) for p in proctree.descendants(proc.pid)]
                children = [c for c in children if c is not None]
                proc.send_signal(signal.SIGTERM)
                for ident in children:
                    if proctree.same_process(ident):
                        try:
                            os.kill(ident[0], signal.SIGTERM)
                        except OSError:
                            pass
                try:
                    proc.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    proctree.kill_tree(proc.pid)
                    proc.wait()
                deadline = time.monotonic() + STOP_GRACE
                while time.monotonic() < deadline and any(proctree.same_process(c) for c in children):
                    time.sleep(0.02)
                for ident in children:
                    if proctree.same_process(ident):
                        try:
                            os.kill(ident[0], signal.SIGKILL)
                        except OSError:
                            pass
            else:
                proc.wait()
        self._close_log()
        if cleanup:
            with _LIVE_LOCK:
                _LIVE.discard(self)
            if self._own_workdir and self.workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
                self.workdir = None

    def stop(self):
        """Stop sshd and its connections (SIGTERM, SIGKILL after 5 s); remove a temporary
        workdir. Idempotent. A later :meth:`start` makes a new workdir and host key (same port)."""
        self._stop(cleanup=True)

    def kill(self):
        """SIGKILL the listener and every per-connection sshd and command under it, at once:
        connected clients see the connection drop. The workdir stays; :meth:`start` works again."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proctree.kill_tree(proc.pid)
            proc.wait()
        self._close_log()

    def restart(self, timeout=10):
        """Stop and start again on the same port with the same host key and workdir."""
        self._stop(cleanup=False)
        return self.start(timeout=timeout)

    def __enter__(self):
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def known_hosts_line(self):
        """A known_hosts line for this server's host key (``[ip]:port keytype base64``)."""
        with open(self.host_public_key_path) as fh:
            keytype, blob = fh.read().split()[:2]
        pattern = self.listen_ip if self.port == 22 else "[%s]:%d" % (self.listen_ip, self.port)
        return "%s %s %s" % (pattern, keytype, blob)

    # -- diagnostics --------------------------------------------------------------------------
    def log_tail(self, lines=40, since_start=False):
        """Last ``lines`` lines of sshd's log (of the current run only with ``since_start``)."""
        if not self.workdir:
            return ""
        try:
            with open(self.log_path, "rb") as fh:
                if since_start:
                    fh.seek(getattr(self, "_log_start", 0))
                data = fh.read()
        except OSError:
            return ""
        text = data.decode(errors="replace").rstrip("\n")
        return "\n".join(text.splitlines()[-lines:]) or "(sshd log is empty)"

    def connections(self):
        """Pids of live processes under the listener (per-connection sshd and commands)."""
        if not self.running:
            return []
        return [p for p in proctree.descendants(self._proc.pid) if proctree.is_alive(p)]
