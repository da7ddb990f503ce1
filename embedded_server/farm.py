"""Several sshd servers on distinct loopback addresses (127.0.0.2, 127.0.0.3, ...)."""

import ipaddress
import time

from .keys import make_host_key
from .net import free_port, port_is_free
from .server import OpenSSHServer, SSHServerError

__all__ = ["ServerFarm", "loopback_addresses"]


def loopback_addresses(n, first="127.0.0.2"):
    """``n`` distinct IPv4 loopback addresses from ``first`` on, skipping .0 and .255 endings."""
    out, addr = [], ipaddress.IPv4Address(first)
    while len(out) < n:
        if addr not in ipaddress.IPv4Network("127.0.0.0/8"):
            raise ValueError("ran out of 127/8 addresses")
        if str(addr).split(".")[-1] not in ("0", "255"):
            out.append(str(addr))
        addr += 1
    return out


class ServerFarm(object):
    """``n`` OpenSSH servers, one per loopback address, all on the same port.

    Other keyword arguments (``authorized_keys``, ``password_auth``, ``extra_config``...) go to
    each :class:`OpenSSHServer`. ``shared_host_key=True`` gives every server the same host key
    (faster for large farms). The servers are started concurrently: all processes first, then
    every banner is awaited.
    """

    def __init__(self, n, first_ip="127.0.0.2", port=None, ips=None, shared_host_key=False,
                 start_timeout=30, **server_kwargs):
        self.ips = list(ips) if ips else loopback_addresses(n, first_ip)
        self.port = port
        self.shared_host_key = shared_host_key
        self.start_timeout = start_timeout
        self.server_kwargs = server_kwargs
        self.servers = []
        self._shared_dir = None

    # sequence behaviour
    def __iter__(self):
        return iter(self.servers)

    def __len__(self):
        return len(self.servers)

    def __getitem__(self, i):
        return self.servers[i]

    @property
    def hosts(self):
        return [srv.host for srv in self.servers]

    @property
    def addresses(self):
        return [srv.address for srv in self.servers]

    def _pick_port(self):
        for _ in range(50):
            port = free_port(self.ips[0])
            if all(port_is_free(ip, port) for ip in self.ips[1:]):
                return port
        raise SSHServerError("no port free on all of %s..." % ", ".join(self.ips[:5]))

    def start(self, timeout=None):
        timeout = self.start_timeout if timeout is None else timeout
        if self.port is None:
            self.port = self._pick_port()
        kwargs = dict(self.server_kwargs)
        if self.shared_host_key and "host_key" not in kwargs:
            import tempfile
            self._shared_dir = tempfile.mkdtemp(prefix="pssh-farm-")
            kwargs["host_key"] = make_host_key(self._shared_dir, kwargs.get("host_key_kind", "ed25519")).private
        try:
            for ip in self.ips:
                self.servers.append(OpenSSHServer(listen_ip=ip, port=self.port, **kwargs))
            for srv in self.servers:
                srv._spawn()
            pending = list(self.servers)
            deadline = time.monotonic() + timeout
            while pending:
                pending = [srv for srv in pending if not srv._check_ready()]
                if pending and time.monotonic() > deadline:
                    srv = pending[0]
                    raise SSHServerError("%d of %d servers not ready within %.1f s; %s log:\n%s"
                                         % (len(pending), len(self.servers), timeout, srv.hostport,
                                            srv.log_tail(since_start=True)))
                if pending:
                    time.sleep(0.02)
        except BaseException:
            self.stop_all()
            raise
        return self

    def stop_all(self):
        for srv in self.servers:
            srv.stop()
        self.servers = []
        if self._shared_dir:
            import shutil
            shutil.rmtree(self._shared_dir, ignore_errors=True)
            self._shared_dir = None

    stop = stop_all

    def __enter__(self):
        if not self.servers:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop_all()
