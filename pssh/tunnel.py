"""Connections through SSH bastions (proxies), driven by the gevent hub.

One authenticated connection per bastion carries a ``direct-tcpip`` channel
per target host. The target's own libssh2 session talks to one end of a
socket pair; two greenlets per tunnel move bytes between the other end and
the channel. No threads, no local listening ports. A chain ``a,b`` reaches
``b`` through ``a`` with the same mechanism.
"""
import logging
import socket
import weakref

import gevent
import gevent.event
from ssh2.exceptions import SSH2Error

from pssh._backend import backend
from pssh._connect import call
from pssh._hub import READ, WRITE, DeadlineExceeded, SocketWaiter, WaiterClosed
from pssh.exceptions import PSSHError, ProxyError

__all__ = ["open_tunnel", "Bastion", "Hop", "parse_proxy_jump"]

logger = logging.getLogger("pssh.tunnel")

_BASTIONS = weakref.WeakValueDictionary()
_CONNECTING = {}


class Bastion:
    """A connected SSH client used to open tunnels; shared by every target behind it."""

    def __init__(self, client):
        self.client = client
        self.tunnels = set()

    def open(self, host, port, deadline):
        """A connected socket whose peer is ``host:port`` as seen from the bastion."""
        client = self.client
        try:
            channel = call(client.session, client._waiter, client.session.direct_tcpip_ex,
                           (host, port, "127.0.0.1", 0), deadline)
        except DeadlineExceeded:
            raise ProxyError("Opening a tunnel to %s:%s through proxy %s:%s timed out",
                             host, port, client.host, client.port,
                             host=host, port=port) from None
        except (SSH2Error, WaiterClosed) as exc:
            raise ProxyError("Proxy %s:%s refused or failed to forward to %s:%s - %s",
                             client.host, client.port, host, port,
                             type(exc).__name__ + (": %s" % exc if str(exc) else ""),
                             host=host, port=port, cause=exc) from exc
        local, remote = socket.socketpair()
        local.setblocking(False)
        remote.setblocking(False)
        tunnel = _Tunnel(self, channel, remote, "%s:%s" % (host, port))
        self.tunnels.add(tunnel)
        tunnel.start()
        return local


class _Tunnel:
    __slots__ = ("bastion", "channel", "sock", "waiter", "label", "greenlets", "__weakref__")

    def __init__(self, bastion, channel, sock, label):
        self.bastion = bastion
        self.channel = channel
        self.sock = sock
        self.waiter = SocketWaiter(sock)
        self.label = label
        self.greenlets = ()

    def start(self):
        self.greenlets = (gevent.spawn(self._channel_to_socket),
                          gevent.spawn(self._socket_to_channel))

    def _flush(self, data):
        sock = self.sock
        while data:
            try:
                sent = sock.send(data)
            except BlockingIOError:
                self.waiter.wait(WRITE)
                continue
            del data[:sent]

    def _channel_to_socket(self):
        client = self.bastion.client
        data = bytearray()
        ignored = bytearray()
        try:
            backend.pump_channel(client.session, self.channel, data, ignored,
                                 client._waiter, lambda: self._flush(data))
            self._flush(data)
            self.sock.shutdown(socket.SHUT_WR)
        except (OSError, PSSHError, WaiterClosed, SSH2Error) as exc:
            logger.debug("tunnel %s: channel to socket ended: %s", self.label, exc)
        finally:
            self._done()

    def _socket_to_channel(self):
        client = self.bastion.client
        sock = self.sock
        try:
            while True:
                try:
                    data = sock.recv(262144)
                except BlockingIOError:
                    self.waiter.wait(READ)
                    continue
                if not data:
                    call(client.session, client._waiter, self.channel.send_eof, (), None)
                    return
                if backend.write_all(client.session, self.channel, data, 0, client._waiter) < 0:
                    return
        except (OSError, PSSHError, WaiterClosed, SSH2Error) as exc:
            logger.debug("tunnel %s: socket to channel ended: %s", self.label, exc)
        finally:
            self._done()

    def _done(self):
        if all(greenlet.dead or greenlet is gevent.getcurrent() for greenlet in self.greenlets):
            self.bastion.tunnels.discard(self)
            self.waiter.close()
            try:
                self.sock.close()
            except OSError:
                pass


def get_bastion(hop, client_factory):
    """The shared, connected :class:`Bastion` for ``hop`` (creating it once, even when
    many targets ask for it at the same time)."""
    key = hop
    bastion = _BASTIONS.get(key)
    if bastion is not None and not bastion.client._closed:
        return bastion
    pending = _CONNECTING.get(key)
    if pending is not None:
        return pending.get()
    result = gevent.event.AsyncResult()
    _CONNECTING[key] = result
    try:
        bastion = Bastion(client_factory())
    except BaseException as exc:
        result.set_exception(exc)
        raise
    finally:
        _CONNECTING.pop(key, None)
    _BASTIONS[key] = bastion
    result.set(bastion)
    return bastion


class Hop:
    """One bastion of a proxy chain: where it is, how to log in, and the hop before it."""

    __slots__ = ("host", "port", "user", "password", "pkey", "via")

    def __init__(self, host, port, user, password, pkey, via=None):
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.pkey = pkey
        self.via = via

    def __hash__(self):
        return hash((self.host, self.port, self.user, self.pkey, self.via))

    def __eq__(self, other):
        return isinstance(other, Hop) and (self.host, self.port, self.user, self.password,
                                           self.pkey, self.via) == (
            other.host, other.port, other.user, other.password, other.pkey, other.via)


def open_tunnel(client, host, port, deadline):
    """Socket to ``host:port`` through the proxy chain of ``client`` (``client._proxy_hop``)."""
    from pssh.single import SSHClient
    hop = client._proxy_hop

    def factory():
        try:
            return SSHClient(hop.host, user=hop.user, password=hop.password, port=hop.port,
                             pkey=hop.pkey, num_retries=client.num_retries,
                             retry_delay=client.retry_delay, timeout=client.timeout,
                             allow_agent=client.allow_agent, identity_auth=client.identity_auth,
                             keepalive_seconds=client.keepalive_seconds,
                             agent=client.agent, _proxy_hop=hop.via)
        except PSSHError as exc:
            raise ProxyError("Could not connect to proxy %s:%s for host %s:%s - %s",
                             hop.host, hop.port, host, port, exc,
                             host=host, port=port, cause=exc) from exc
    bastion = get_bastion(hop, factory)
    return bastion.open(host, port, deadline)



def parse_proxy_jump(spec, user, password, pkey):
    """The :class:`Hop` chain of an OpenSSH ``ProxyJump`` value (``[user@]host[:port],...``).

    Every hop logs in with the client's password and key unless the spec names a user.
    """
    hop = None
    for item in spec.split(","):
        item = item.strip()
        if not item or item.lower() == "none":
            continue
        hop_user, _, address = item.rpartition("@")
        if address.startswith("["):
            hop_host, _, rest = address[1:].partition("]")
            hop_port = int(rest[1:]) if rest.startswith(":") else 22
        elif address.count(":") == 1:
            hop_host, _, port_text = address.partition(":")
            hop_port = int(port_text)
        else:
            hop_host, hop_port = address, 22
        hop = Hop(hop_host, hop_port, hop_user or user, password, pkey, via=hop)
    return hop
