"""A man in the middle on loopback: a TCP relay between an SSH client and a real sshd.

The relay follows the server->client half of the SSH transport far enough to find packets:
the clear version line, the clear binary packets of the key exchange up to and including the
server's NEWKEYS, then -- for the modes that send the packet length in clear (AES-GCM, and
``*-etm@openssh.com`` MACs) -- the encrypted packets by that length. For the other modes
(ctr/cbc with a MAC over the plaintext, chacha20-poly1305) the encrypted stream is opaque and
handed to the hook in chunks, the first of which holds at least one cipher block.

A hook sees each server->client packet and decides what the client gets: the packet as is, other
bytes (a rewritten length field, a flipped bit, a prefix of the packet), and whether the relay then
stalls (forwards nothing more that way, keeps both sockets open) or drops the connection.
Client->server bytes are forwarded untouched. Everything runs in daemon threads, each connection
is bounded by ``max_seconds``, and :meth:`Relay.close` closes every socket.
"""
import select
import socket
import struct
import threading
import time
from typing import Callable, NamedTuple, Optional, Union

STALL = "stall"
DROP = "drop"

SSH_MSG_NEWKEYS = 21
GCM_TAG_LEN = 16
ETM_MAC_LEN = {"hmac-sha1-etm@openssh.com": 20, "hmac-sha2-256-etm@openssh.com": 32,
               "hmac-sha2-512-etm@openssh.com": 64}
_OPAQUE_FIRST = 16          # the opaque stream's first chunk holds at least one block
_MAX_FRAMED = 256 * 1024    # a longer "length" means we lost track: stop framing


class Packet(NamedTuple):
    """One server->client unit: ``data`` as on the wire (length field first when framed)."""
    index: int          # 0 for the first packet of its kind (clear / encrypted)
    data: bytes
    encrypted: bool
    framed: bool        # False: a chunk of an opaque encrypted stream

    @property
    def length(self) -> int:
        """The packet's length field (clear packets, and encrypted ones when framed)."""
        return struct.unpack(">I", self.data[:4])[0]

    @property
    def msg_type(self) -> Optional[int]:
        return self.data[5] if not self.encrypted and len(self.data) > 5 else None


class Action(NamedTuple):
    """What the client gets instead of a packet, and what the relay does next."""
    data: bytes
    then: Optional[str] = None   # None (go on), STALL or DROP


Hook = Callable[[Packet], Union[None, bytes, Action]]


def with_length(packet: Packet, length: int) -> bytes:
    """The packet with its (clear) length field replaced."""
    return struct.pack(">I", length) + packet.data[4:]


def flip_bit(packet: Packet, offset: int, bit: int = 0) -> bytes:
    """The packet with one bit of byte ``offset`` inverted (malleable stream ciphers)."""
    data = bytearray(packet.data)
    data[offset] ^= 1 << bit
    return bytes(data)


class Relay:
    """Listens on ``listen_ip``:``port`` and relays every accepted connection to ``target``.

    :param trailer_len: bytes after each encrypted packet (16 for AES-GCM, the MAC length for
        an etm MAC, see :data:`ETM_MAC_LEN`); None: the encrypted stream is opaque.
    :param hook: called with each server->client :class:`Packet`; returns None (forward it),
        replacement bytes, or an :class:`Action`.
    """

    def __init__(self, target, hook: Optional[Hook] = None, trailer_len: Optional[int] = None,
                 listen_ip: str = "127.0.0.1", max_seconds: float = 60.0):
        self.target = target
        self.hook = hook
        self.trailer_len = trailer_len
        self.max_seconds = max_seconds
        self._listener = socket.create_server((listen_ip, 0))
        self.host, self.port = self._listener.getsockname()[:2]
        self._sockets = [self._listener]
        self._threads = []
        self._closed = threading.Event()
        self.connections = 0
        self.errors = []             # exceptions raised inside the relay threads

    def __enter__(self):
        self._spawn(self._accept_loop)
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self._closed.set()
        for sock in list(self._sockets):
            try:
                sock.close()
            except OSError:
                pass
        for thread in self._threads:
            thread.join(timeout=5)

    # -- internals -----------------------------------------------------------------------------

    def _spawn(self, target, *args):
        thread = threading.Thread(target=self._guarded, args=(target,) + args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _guarded(self, target, *args):
        try:
            target(*args)
        except OSError:
            pass                    # a socket closed under us: the relay or a peer ended
        except Exception as exc:    # noqa: BLE001 - kept for the test to inspect
            self.errors.append(exc)

    def _accept_loop(self):
        while not self._closed.is_set():
            readable, _, _ = select.select([self._listener], [], [], 0.2)
            if not readable:
                continue
            client, _ = self._listener.accept()
            server = socket.create_connection(self.target, timeout=10)
            self._sockets += [client, server]
            self.connections += 1
            deadline = time.monotonic() + self.max_seconds
            self._spawn(self._pump_client_to_server, client, server, deadline)
            self._spawn(self._pump_server_to_client, server, client, deadline)

    def _recv(self, sock, deadline):
        """Bytes from ``sock``; b"" at EOF, at the deadline or when the relay closes."""
        while not self._closed.is_set() and time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                return sock.recv(65536)
        return b""

    def _pump_client_to_server(self, client, server, deadline):
        while True:
            data = self._recv(client, deadline)
            if not data:
                break
            server.sendall(data)
        _shutdown(server)

    def _pump_server_to_client(self, server, client, deadline):
        stream = _ServerStream(self, server, deadline)
        for packet in stream.packets():
            verdict = self.hook(packet) if self.hook else None
            if verdict is None:
                verdict = Action(packet.data)
            elif not isinstance(verdict, Action):
                verdict = Action(bytes(verdict))
            client.sendall(verdict.data)
            if verdict.then == STALL:
                # Keep both sockets open and silent until the relay is closed.
                while not self._closed.is_set() and time.monotonic() < deadline:
                    time.sleep(0.1)
                break
            if verdict.then == DROP:
                break
        for sock in (client, server):
            _shutdown(sock)
            sock.close()


class _ServerStream:
    """Splits the server->client byte stream into :class:`Packet` units."""

    def __init__(self, relay, sock, deadline):
        self.relay = relay
        self.sock = sock
        self.deadline = deadline
        self.buf = bytearray()

    def _fill(self, count):
        while len(self.buf) < count:
            data = self.relay._recv(self.sock, self.deadline)
            if not data:
                return False
            self.buf += data
        return True

    def _take(self, count):
        data = bytes(self.buf[:count])
        del self.buf[:count]
        return data

    def packets(self):
        # The version exchange: lines up to the one starting with SSH-.
        while True:
            while b"\n" not in self.buf:
                if not self._fill(len(self.buf) + 1):
                    return
            line = self._take(self.buf.index(b"\n") + 1)
            yield Packet(-1, line, False, True)
            if line.startswith(b"SSH-"):
                break
        index = 0
        while True:                 # clear binary packets, up to the server's NEWKEYS
            if not self._fill(4):
                return
            length = struct.unpack(">I", self.buf[:4])[0]
            if not self._fill(4 + length):
                return
            packet = Packet(index, self._take(4 + length), False, True)
            index += 1
            yield packet
            if packet.msg_type == SSH_MSG_NEWKEYS:
                break
        yield from self._encrypted()

    def _encrypted(self):
        index = 0
        trailer = self.relay.trailer_len
        while trailer is not None:
            if not self._fill(4):
                return
            length = struct.unpack(">I", self.buf[:4])[0]
            if length > _MAX_FRAMED:
                break
            if not self._fill(4 + length + trailer):
                return
            yield Packet(index, self._take(4 + length + trailer), True, True)
            index += 1
        if not self._fill(_OPAQUE_FIRST):
            return
        while True:
            yield Packet(index, self._take(len(self.buf)), True, False)
            index += 1
            if not self._fill(1):
                return


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
