"""Establishing one SSH connection: resolve, TCP connect, handshake, authenticate.

Everything here is non-blocking on the gevent hub (no thread pool): the
handshake's key exchange runs in this thread between socket waits, so the
number of concurrent handshakes is bounded only by the caller's pool.
"""
import errno
import ipaddress
import logging
import os
import socket
from time import monotonic

import gevent
from gevent.socket import getaddrinfo
from ssh2.exceptions import SSH2Error
from ssh2.session import (
    LIBSSH2_FLAG_COMPRESS, LIBSSH2_METHOD_CRYPT_CS, LIBSSH2_METHOD_CRYPT_SC,
    LIBSSH2_METHOD_HOSTKEY, Session)

from pssh import hostkeys
from pssh.core.backend import BLOCK_CIPHERS, GCM_CIPHERS, offered_ciphers
from pssh.connection.agent_forward import local_agent_slots
from pssh.core.calls import call, describe, wait_error
from pssh.core.hub import WRITE, DeadlineExceeded, SocketWaiter
from pssh.exceptions import (
    AuthenticationError, ConnectionError, ConnectionRefusedError, HandshakeError,
    NoIPv6AddressFoundError, PKeyFileError, ProxyError, Timeout, UnknownHostError)

logger = logging.getLogger(__name__)

__all__ = ["resolve", "open_socket", "handshake", "authenticate", "read_private_key"]

_KEY_CACHE = {}

# AES-GCM first: with AES-NI it costs a fraction of libssh2's chacha20-poly1305
# per byte. Weak legacy ciphers (arcfour, blowfish, cast128, 3des) are not offered.
# Built from the backend's lists of guarded ciphers, so none is offered without its guard.
CIPHERS = ",".join(GCM_CIPHERS + ("chacha20-poly1305@openssh.com",) + BLOCK_CIPHERS)


def read_private_key(path):
    """Bytes of the key file at ``path``, read once per (path, mtime, size)."""
    path = os.path.normpath(os.path.expanduser(path))
    try:
        stat = os.stat(path)
        cache_key = (path, stat.st_mtime_ns, stat.st_size)
        data = _KEY_CACHE.get(cache_key)
        if data is None:
            with open(path, "rb") as key_file:
                data = key_file.read()
            if len(_KEY_CACHE) > 256:
                _KEY_CACHE.clear()
            _KEY_CACHE[cache_key] = data
        return data
    except OSError as exc:
        raise PKeyFileError("Cannot read private key file %s: %s", path, exc.strerror or exc,
                            cause=exc) from exc


def resolve(host, port, ipv6_only, num_retries, retry_delay):
    """Addresses of ``host`` to try, in resolver order (IP literals need no lookup)."""
    try:
        literal = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        literal = None
    if literal is not None:
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        if ipv6_only and family != socket.AF_INET6:
            raise NoIPv6AddressFoundError("No IPv6 address found for host %s - %s", host,
                                          [host], host=host, port=port)
        return [(family, (host, port, 0, 0) if family == socket.AF_INET6 else (host, port))]
    attempts = max(num_retries, 1)
    for attempt in range(1, attempts + 1):
        try:
            infos = getaddrinfo(host, port, 0, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            break
        except socket.gaierror as exc:
            if attempt == attempts:
                raise UnknownHostError("Unknown host %s - %s - retry %s/%s", host, exc.strerror
                                       or str(exc), attempt, attempts,
                                       host=host, port=port, cause=exc) from exc
            gevent.sleep(retry_delay)
    addresses = [(family, sockaddr) for family, _, _, _, sockaddr in infos]
    if ipv6_only:
        addresses = [addr for addr in addresses if addr[0] == socket.AF_INET6]
        if not addresses:
            raise NoIPv6AddressFoundError("No IPv6 address found for host %s - %s", host,
                                          [sockaddr for _, sockaddr in infos],
                                          host=host, port=port)
    return addresses


def open_socket(host, port, addresses, deadline):
    """Connected non-blocking socket and its waiter; tries every address in order.

    Raises the builtin-compatible :class:`ConnectionRefusedError` when every
    address refused, or the last OSError otherwise (the caller retries).
    """
    refused = None
    last_error = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        waiter = SocketWaiter(sock)
        try:
            code = sock.connect_ex(sockaddr)
            if code in (errno.EINPROGRESS, errno.EAGAIN, errno.EALREADY):
                try:
                    waiter.wait(WRITE, deadline)
                except DeadlineExceeded:
                    raise socket.timeout("timed out connecting to %s" % (sockaddr[0],)) from None
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
            return sock, waiter
        except OSError as exc:
            waiter.close()
            sock.close()
            if exc.errno == errno.ECONNREFUSED:
                refused = exc
            else:
                last_error = exc
    if last_error is None and refused is not None:
        raise ConnectionRefusedError(
            refused.errno, refused.strerror, host, port, host=host, port=port, cause=refused)
    raise last_error or OSError("no address to connect to")


def handshake(host, port, sock, waiter, compress, deadline, hostkey_methods=None):
    ciphers = offered_ciphers(CIPHERS)  # only ciphers whose length guard is installed
    session = Session()
    session.set_blocking(False)
    session.method_pref(LIBSSH2_METHOD_CRYPT_CS, ciphers)
    session.method_pref(LIBSSH2_METHOD_CRYPT_SC, ciphers)
    if hostkey_methods:  # known key types first (see pssh.hostkeys)
        session.method_pref(LIBSSH2_METHOD_HOSTKEY, hostkey_methods)
    if compress:
        session.flag(LIBSSH2_FLAG_COMPRESS)
    try:
        call(session, waiter, session.handshake, (sock,), deadline)
    except DeadlineExceeded as failure:
        raise wait_error(failure, host, port, "SSH handshake") from None
    except SSH2Error as exc:
        raise HandshakeError("SSH handshake with host %s:%s failed - %s", host, port,
                             describe(exc), host=host, port=port, cause=exc) from exc
    return session


def authenticate(settings, session, waiter, deadline):
    """Run the authentication chain of parallel-ssh 2.x on ``session``.

    Order: the given ``pkey`` only, if set; otherwise the agent, the default
    identity files, then password or keyboard-interactive.
    """
    user = settings.user
    errors = []

    def attempt(label, func, *args):
        try:
            call(session, waiter, func, args, deadline)
            return True
        except DeadlineExceeded as failure:
            raise wait_error(failure, settings.host, settings.port, "Authentication") from None
        except SSH2Error as exc:
            errors.append("%s: %s" % (label, describe(exc)))
            logger.debug("[%s] %s authentication failed: %s", settings.host, label, exc)
            return False

    passphrase = settings.password or ""
    if settings.pkey is not None:
        key = settings.pkey
        if not isinstance(key, bytes):
            key = read_private_key(key)
        cert = settings.cert_file
        extra = (cert,) if cert else ()
        if attempt("private key", session.userauth_publickey_frommemory, user, key, passphrase,
                   *extra):
            return
        raise _auth_error(settings, errors)
    # ssh_config IdentityFile keys come before the default identities, or replace them
    # (and the agent) with IdentitiesOnly.
    identity_files = settings.identity_files
    identities_only = settings.identities_only
    agent = settings.agent
    if agent is not None:
        # A programmatic agent replaces the system agent.
        for key, key_passphrase in agent.keys:
            if attempt("agent key", session.userauth_publickey_frommemory, user, key,
                       key_passphrase):
                return
    elif settings.allow_agent and not identities_only and os.environ.get("SSH_AUTH_SOCK"):
        if _agent_auth(settings, session, waiter, deadline, errors):
            return
    defaults = settings.identities if settings.identity_auth else ()
    if identity_files or defaults:
        paths = identity_files + (() if identities_only and identity_files else defaults)
        for index, path in enumerate(paths):
            if path in paths[:index] or not os.path.isfile(path):
                if path in identity_files:
                    logger.debug("[%s] identity file %s not found", settings.host, path)
                continue
            try:
                key = read_private_key(path)
            except PKeyFileError as exc:
                errors.append("%s: %s" % (path, exc))
                continue
            if attempt(path, session.userauth_publickey_frommemory, user, key, passphrase):
                return
    if settings.password is None:
        if not errors:
            errors.append("no authentication method available (no key, agent, identity file"
                          " or password)")
        raise _auth_error(settings, errors)
    if settings.keyboard_interactive:
        if attempt("keyboard-interactive", session.userauth_keyboardinteractive, user,
                   settings.password):
            return
    elif attempt("password", session.userauth_password, user, settings.password):
        return
    raise _auth_error(settings, errors)


def _agent_auth(settings, session, waiter, deadline, errors):
    slots = local_agent_slots()
    # Hundreds of handshakes at once would otherwise each hold a connection to the agent.
    if not slots.acquire(timeout=None if deadline is None else max(0.0, deadline - monotonic())):
        raise Timeout("Agent authentication with host %s:%s timed out waiting for a free "
                      "agent connection", settings.host, settings.port, host=settings.host,
                      port=settings.port)
    try:
        return _agent_auth_locked(settings, session, waiter, deadline, errors)
    finally:
        slots.release()


def _agent_auth_locked(settings, session, waiter, deadline, errors):
    try:
        agent = session.agent_init()
        agent.connect()
        agent.list_identities()
        identities = agent.get_identities()
    except SSH2Error as exc:
        errors.append("agent: %s" % (describe(exc),))
        return False
    try:
        for identity in identities:
            try:
                call(session, waiter, agent.userauth, (settings.user, identity), deadline)
                return True
            except SSH2Error as exc:
                errors.append("agent key: %s" % (describe(exc),))
            except DeadlineExceeded as failure:
                raise wait_error(failure, settings.host, settings.port,
                                 "Agent authentication") from None
        return False
    finally:
        try:
            agent.disconnect()
        except SSH2Error:
            pass


def _auth_error(settings, errors):
    cause = "; ".join(errors)
    return AuthenticationError(
        "Authentication error while connecting to %s:%s - %s - retry %s/%s",
        settings.host, settings.port, cause, 1, settings.num_retries,
        host=settings.host, port=settings.port)


def connect(settings, open_proxied=None):
    """Resolve, connect, handshake and authenticate one connection described by ``settings``
    (a :class:`~pssh.connection.settings.ConnectSettings`); returns (sock, waiter, session).

    ``open_proxied(address, port, deadline)``, given for a host behind jump hosts, returns
    the socket of a tunnel to the target instead of a TCP connection (see
    :func:`pssh.connection.tunnel.open_tunnel`). DNS and TCP share one attempt counter;
    handshake failures reconnect and continue it. Refused connections and authentication
    failures are final.
    """
    host, port = settings.host, settings.port
    address = settings.connect_host  # ssh_config HostName
    timeout = settings.connect_timeout
    attempts = max(settings.num_retries or 1, 1)
    if open_proxied is None:
        addresses = resolve(address, port, settings.ipv6_only, attempts, settings.retry_delay)
    check = hostkeys.prepare(address, port, settings.host_key_policy, settings.known_hosts,
                             settings.host_key_alias)
    hostkey_methods = check.hostkey_methods() if check is not None else None
    for attempt in range(1, attempts + 1):
        deadline = monotonic() + timeout
        try:
            if open_proxied is None:
                sock, waiter = open_socket(host, port, addresses, deadline)
            else:
                sock = open_proxied(address, port, deadline)
                waiter = SocketWaiter(sock)
        except (ConnectionRefusedError, ProxyError):
            raise
        except OSError as exc:
            if attempt == attempts:
                raise ConnectionError(
                    "Error connecting to host '%s:%s' - %s - retry %s/%s", host, port,
                    exc.strerror or str(exc), attempt, attempts,
                    host=host, port=port, cause=exc) from exc
            gevent.sleep(settings.retry_delay)
            continue
        try:
            session = handshake(host, port, sock, waiter, settings.compress, deadline,
                                hostkey_methods)
            if check is not None:  # before authentication: no credentials to an impostor
                check.verify(session)
            authenticate(settings, session, waiter, deadline)
            return sock, waiter, session
        except (HandshakeError, Timeout) as exc:
            waiter.close()
            _discard(sock)
            if attempt == attempts:
                raise
            logger.debug("[%s] retrying after %s", host, exc)
            gevent.sleep(settings.retry_delay)
        except BaseException:
            waiter.close()
            _discard(sock)
            raise
    raise AssertionError("unreachable")


def _discard(sock):
    # The Session object may still reference this socket; shut it down so any
    # late libssh2 send fails, and let the fd close with the last reference.
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
