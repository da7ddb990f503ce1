"""Connections through SSH bastions (proxies), driven by the gevent hub.

One authenticated connection per bastion carries a ``direct-tcpip`` channel
per target host. The target's own libssh2 session talks to one end of a
socket pair; two greenlets per tunnel move bytes between the other end and
the channel. No threads, no local listening ports. A chain ``a,b`` reaches
``b`` through ``a`` with the same mechanism.
"""
import logging
import select
import socket
import weakref
from typing import List, Optional, Tuple

import gevent
import gevent.event
from gevent.monkey import get_original
from ssh2.exceptions import SSH2Error

from pssh.connection.options import HOP_OPTIONS
from pssh.core.backend import backend
from pssh.core.calls import call
from pssh.core.hub import READ, WRITE, DeadlineExceeded, SocketWaiter, WaiterClosed, deadline_after
from pssh.exceptions import PSSHError, ProxyError

__all__ = ["open_tunnel", "Bastion", "Hop", "parse_proxy_jump", "split_proxy_jump"]

logger = logging.getLogger(__name__)
_original_poll = get_original("select", "poll")

_BASTIONS = weakref.WeakValueDictionary()
_CONNECTING = {}
# How often a write stalled by a bastion's shut window checks that its target still exists.
_STALL_CHECK_SECONDS = 5


class _TargetGone(Exception):
    """The target connection of a tunnel closed while a write to the bastion waited."""


class Bastion:
    """A connected SSH client used to open tunnels; shared by every target behind it.

    One reader greenlet serves every tunnel: when the bastion's socket is
    readable it pulls whatever each channel has queued, so a packet wakes one
    greenlet, not one per tunnel. Each tunnel has its own writer greenlet for
    the other direction.
    """

    def __init__(self, client):
        self.client = client
        self.tunnels = []
        self._reader = None
        self._opening = 0
        self._closer = None

    def open(self, host, port, deadline):
        """A connected socket whose peer is ``host:port`` as seen from the bastion."""
        client = self.client
        self._opening += 1
        try:
            channel = call(client.session, client.waiter, client.session.direct_tcpip_ex,
                           (host, port, "127.0.0.1", 0), deadline, exclusive=True)
        except DeadlineExceeded:
            raise ProxyError("Opening a tunnel to %s:%s through proxy %s:%s timed out",
                             host, port, client.host, client.port,
                             host=host, port=port) from None
        except (SSH2Error, WaiterClosed) as exc:
            raise ProxyError("Proxy %s:%s refused or failed to forward to %s:%s - %s",
                             client.host, client.port, host, port,
                             type(exc).__name__ + (": %s" % exc if str(exc) else ""),
                             host=host, port=port, cause=exc) from exc
        except BaseException:
            self.tunnel_closed()  # a bastion left without tunnels is not kept open
            raise
        finally:
            self._opening -= 1
        local, remote = socket.socketpair()
        local.setblocking(False)
        remote.setblocking(False)
        tunnel = _Tunnel(self, channel, remote, "%s:%s" % (host, port))
        self.tunnels.append(tunnel)
        tunnel.writer = gevent.spawn(tunnel.socket_to_channel)
        if self._reader is None or self._reader.dead:
            self._reader = gevent.spawn(self._read_loop)
        else:
            client.waiter.kick()
        return local

    def tunnel_closed(self):
        """Called by each closing tunnel: a bastion nobody uses any more is disconnected."""
        if not self.tunnels and self._closer is None:
            self._closer = gevent.spawn(self._close_if_idle)

    def _close_if_idle(self):
        self._closer = None
        if self.tunnels or self._opening or self.client.closed:
            return
        for key, bastion in list(_BASTIONS.items()):
            if bastion is self:
                _BASTIONS.pop(key, None)
        logger.debug("bastion %s:%s: last tunnel closed, disconnecting", self.client.host,
                     self.client.port)
        self.client.close()

    def _read_loop(self):
        waiter = self.client.waiter
        session = self.client.session
        try:
            while self.tunnels:
                # The first channel read drains the bastion socket into libssh2's packet
                # queue; after it, a channel with nothing queued is skipped without a
                # system call, so a wake-up costs one read, not one per tunnel.
                progress = drained = False
                for tunnel in list(self.tunnels):
                    if tunnel.pending is not None or tunnel.remote_eof:
                        continue
                    channel = tunnel.channel
                    if drained and not (channel.poll_channel_read(0) or channel.eof()):
                        continue
                    if tunnel.pull():
                        progress = True
                    drained = True
                if not progress:
                    waiter.wait(session.block_directions() or READ)
        except (OSError, PSSHError, WaiterClosed, SSH2Error) as exc:
            logger.debug("bastion %s:%s: reader stopped: %s", self.client.host,
                         self.client.port, exc)
            for tunnel in list(self.tunnels):
                tunnel.close()


class _Tunnel:
    __slots__ = ("bastion", "channel", "sock", "waiter", "label", "writer", "pending",
                 "remote_eof", "closed")

    def __init__(self, bastion, channel, sock, label):
        self.bastion = bastion
        self.channel = channel
        self.sock = sock
        self.waiter = SocketWaiter(sock)
        self.label = label
        self.writer = None
        self.pending = None
        self.remote_eof = False
        self.closed = False

    def pull(self):
        """Move what the channel has queued to the socket; True if anything happened."""
        if self.remote_eof:
            return False
        read = self.channel.read_ex
        moved = False
        rc, data = read(65536, 0)
        while rc > 0:
            moved = True
            try:
                sent = self.sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                self.close()
                return True
            if sent < len(data):
                # The target is not reading: stop pulling this channel (its window
                # then stops the far end) until the socket drains.
                self.pending = bytearray(data[sent:])
                gevent.spawn(self._flush_pending)
                return True
            rc, data = read(65536, 0)
        if rc == 0 and self.channel.eof():
            self.remote_eof = True
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            return True
        return moved

    def _flush_pending(self):
        try:
            data = self.pending
            while data:
                try:
                    sent = self.sock.send(data)
                    del data[:sent]
                except BlockingIOError:
                    self.waiter.wait(WRITE)
            self.pending = None
            self.bastion.client.waiter.kick()
        except (OSError, WaiterClosed):
            self.close()

    def socket_to_channel(self):
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
                    # Only the target's libssh2 session uses the other end and it never
                    # half-closes: EOF means that connection is gone (closed, or dropped after
                    # a failed handshake). Waiting for the bastion's EOF instead would keep
                    # the tunnel, and the bastion connection, for as long as a silent bastion
                    # likes.
                    self.close()
                    return
                try:
                    rc = backend.write_all(client.session, self.channel, data, 0,
                                           self._wait_for_bastion)
                finally:
                    # The write may have read other tunnels' packets off the bastion
                    # socket: the reader, asleep on that socket, must hear of them.
                    client.waiter.settle()
                if rc < 0:
                    self.close()
                    return
        except (OSError, PSSHError, WaiterClosed, SSH2Error, _TargetGone) as exc:
            logger.debug("tunnel %s: socket to channel ended: %s", self.label, exc)
            self.close()

    def _wait_for_bastion(self, directions):
        # A bastion can keep this tunnel's window shut for ever. Nothing would then end the
        # wait once the target connection is gone, and the tunnel would keep the bastion
        # connection open: look at the target's end now and then while stalled.
        waiter = self.bastion.client.waiter
        while True:
            try:
                waiter.wait(directions, deadline_after(_STALL_CHECK_SECONDS))
                return
            except DeadlineExceeded:
                if self._target_gone():
                    raise _TargetGone("target connection closed while the bastion's window "
                                      "stayed shut") from None

    def _target_gone(self):
        # POLLHUP on a socket pair end: the other end is closed or shut down both ways.
        # The original poll: gevent's monkey-patched one never reports POLLHUP/POLLERR.
        poller = _original_poll()
        poller.register(self.sock, select.POLLIN)
        return any(events & (select.POLLHUP | select.POLLERR | select.POLLNVAL)
                   for _, events in poller.poll(0))

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            self.bastion.tunnels.remove(self)
        except ValueError:
            pass
        self.waiter.close()
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            self.channel.close()
        except SSH2Error:
            pass
        self.bastion.client.waiter.settle()
        self.bastion.tunnel_closed()


def get_bastion(hop, client_factory):
    """The shared, connected :class:`Bastion` for ``hop`` (creating it once, even when
    many targets ask for it at the same time)."""
    key = hop
    bastion = _BASTIONS.get(key)
    if bastion is not None and not bastion.client.closed:
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
    """One bastion of a proxy chain: where it is, how to log in, and the hop before it.

    Its fields are the jump-host options of :data:`~pssh.connection.options.OPTIONS`
    (``per_hop``), given as keywords. ``hostname``, ``identity_files`` and
    ``identities_only`` come from an OpenSSH config entry of the bastion
    (:mod:`pssh.openssh_jump`); an inherited one (``timeout``, ``host_key_policy``,
    ``known_hosts``, ``keepalive_seconds``) left None uses the target client's.
    """

    __slots__ = ("host", "via") + tuple(option.name for option in HOP_OPTIONS)

    def __init__(self, host, *, via=None, **options):
        unknown = set(options).difference(option.name for option in HOP_OPTIONS)
        if unknown:
            raise TypeError("Hop() got unknown options: %s" % ", ".join(sorted(unknown)))
        self.host = host
        self.via = via
        for option in HOP_OPTIONS:
            setattr(self, option.name, options.get(
                option.name, None if option.inherited else option.default))
        self.identity_files = tuple(self.identity_files)
        if self.known_hosts is not None:
            self.known_hosts = tuple(self.known_hosts)

    def _key(self):
        # The address actually connected to, not the alias: two aliases of one
        # bastion share its connection. Host key settings are keyed by open_tunnel.
        return (self.hostname or self.host, self.port, self.user, self.password, self.pkey,
                self.identity_files, self.identities_only, self.via)

    def __hash__(self):
        return hash(self._key())

    def __eq__(self, other):
        return isinstance(other, Hop) and self._key() == other._key()

    def __repr__(self):
        address = "" if self.hostname in (None, self.host) else " (%s)" % self.hostname
        return "<Hop %s@%s:%s%s%s>" % (self.user, self.host, self.port, address,
                                       " via %r" % (self.via,) if self.via else "")


def open_tunnel(settings, host, port, deadline, client_factory):
    """Socket to ``host:port`` through the jump-host chain ``settings.proxy_hop``.

    ``client_factory(bastion_settings)`` returns a connected client: the bastion's connection
    is made by the layer above, so this module needs no client class of its own. A bastion
    connection is shared only by targets whose settings give it the same host key checks.
    """
    hop = settings.proxy_hop
    bastion_settings = settings.for_bastion(hop)

    def factory():
        try:
            return client_factory(bastion_settings)
        except PSSHError as exc:
            raise ProxyError("Could not connect to proxy %s:%s for host %s:%s - %s",
                             hop.host, hop.port, host, port, exc,
                             host=host, port=port, cause=exc) from exc
    bastion = get_bastion((hop, bastion_settings.host_key_policy,
                           tuple(bastion_settings.known_hosts)), factory)
    return bastion.open(host, port, deadline)


def split_proxy_jump(spec: str) -> List[Tuple[Optional[str], str, Optional[int]]]:
    """``(user, host, port)`` of each ``[user@]host[:port]`` or ``ssh://[user@]host[:port]``
    item of a ``ProxyJump`` value, first hop first; user and port are None where the item
    does not give them."""
    items = []
    for item in spec.split(","):
        item = item.strip()
        if not item or item.lower() == "none":
            continue
        if item[:6].lower() == "ssh://":
            item = item[6:].rstrip("/")
        hop_user, _, address = item.rpartition("@")
        hop_port = None
        if address.startswith("["):
            hop_host, _, rest = address[1:].partition("]")
            if rest.startswith(":"):
                hop_port = int(rest[1:])
        elif address.count(":") == 1:
            hop_host, _, port_text = address.partition(":")
            hop_port = int(port_text)
        else:
            hop_host = address
        items.append((hop_user or None, hop_host, hop_port))
    return items


def parse_proxy_jump(spec, user, password, pkey):
    """The :class:`Hop` chain of an OpenSSH ``ProxyJump`` value (``[user@]host[:port],...``).

    Every hop logs in with the client's password and key unless the spec names a user.
    """
    hop = None
    for hop_user, hop_host, hop_port in split_proxy_jump(spec):
        hop = Hop(hop_host, via=hop, port=22 if hop_port is None else hop_port,
                  user=hop_user or user, password=password, pkey=pkey)
    return hop
