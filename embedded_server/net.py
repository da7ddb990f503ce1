"""Loopback networking helpers: free ports, address families, banner probes."""

import errno
import socket
import time

__all__ = ["free_port", "port_is_free", "family_of", "ipv6_available", "read_banner", "format_hostport"]


def family_of(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def format_hostport(ip, port):
    return "[%s]:%d" % (ip, port) if ":" in ip else "%s:%d" % (ip, port)


def free_port(ip="127.0.0.1"):
    """A TCP port that is free on ``ip`` right now (bound with port 0, then released)."""
    with socket.socket(family_of(ip), socket.SOCK_STREAM) as sock:
        sock.bind((ip, 0))
        return sock.getsockname()[1]


def port_is_free(ip, port):
    """True if a listening socket could bind ``ip:port`` (with SO_REUSEADDR, as sshd binds)."""
    sock = socket.socket(family_of(ip), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        return True
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            return False
        raise
    finally:
        sock.close()


def ipv6_available():
    """True if the kernel has IPv6 and ``::1`` can be bound."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


PROBE_BANNER = b"SSH-2.0-embedded_server_probe\r\n"


def read_banner(ip, port, timeout=1.0):
    """Connect and return the server's identification line (bytes), or None if not (yet) served.

    Only a line starting with ``SSH-2.0-`` (or ``SSH-1.99-``) counts. The probe answers with an
    identification line of its own before closing, so sshd does not log an error for it.
    """
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((ip, port), timeout=timeout)
    except OSError:
        return None
    try:
        data = b""
        while b"\n" not in data and len(data) < 8192:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(1024)
            except OSError:
                return None
            if not chunk:
                break
            data += chunk
        for line in data.split(b"\n"):
            if line.startswith((b"SSH-2.0-", b"SSH-1.99-")):
                try:
                    sock.sendall(PROBE_BANNER)
                except OSError:
                    pass
                return line.rstrip(b"\r")
        return None
    finally:
        sock.close()
