"""ConnectSettings: every option of one connection, resolved once from keyword arguments,
a :class:`~pssh.config.HostConfig` and the ssh_config file, from the one list
:data:`~pssh.connection.options.OPTIONS` (re-exported here).

Precedence, the same for every option: a HostConfig field that is not None, then a keyword
argument given (one that differs from its default), then the ssh_config file, then the default.

Timeouts (the one table; README "Timeouts" shows the same):

=================== ======================================================== ================
name                bounds                                                   default
=================== ======================================================== ================
``connect_timeout`` each connect attempt (DNS, TCP or tunnel, handshake,      ``timeout`` or
                    authentication), re-authentication, opening a channel     60 s
                    and starting a command on it
``op_timeout``      every later wait of one operation on an open connection:  ``timeout``
                    a stdin write, EOF, closing a channel, each SFTP/SCP      (None: no limit)
                    request and socket wait, the agent-forwarding waits
``idle_timeout``    a command's output: no new output for this long ends      None (no limit)
                    the read with ``Timeout`` (``run_command``/HostConfig)
=================== ======================================================== ================
"""
import getpass
import os
from typing import Any, Mapping, Optional

from pssh import hostkeys, openssh_config
from pssh.connection.agent_forward import AGENT_REQUEST_TIMEOUT
from pssh.connection.jump import proxy_hops
from pssh.connection.options import (
    CONNECTION_OPTIONS, DEFAULTS, HOP_OPTIONS, INHERITED, NAMES, OPTIONS, PARALLEL_DEFAULTS,
    Option)
from pssh.connection.tunnel import Hop, parse_proxy_jump
from pssh.constants import DEFAULT_CONNECT_TIMEOUT
from pssh.exceptions import InvalidAPIUseError, PKeyFileError

__all__ = ["Option", "OPTIONS", "ConnectSettings", "validate_pkey", "validate_cert",
           "PARALLEL_DEFAULTS"]

# Disconnecting never waits longer than this for the server's acknowledgement.
DISCONNECT_TIMEOUT = 5


def validate_pkey(pkey):
    """``pkey`` as key bytes or a readable file's normalised path; PKeyFileError otherwise."""
    if pkey is None or isinstance(pkey, bytes):
        return pkey
    if not isinstance(pkey, str):
        raise TypeError("pkey must be a file path (str) or key data (bytes), not %s"
                        % type(pkey).__name__)
    path = os.path.normpath(os.path.expanduser(pkey))
    if not os.path.isfile(path):
        raise PKeyFileError("File %s does not exist", path)
    if not os.access(path, os.R_OK):
        raise PKeyFileError("File %s is not readable", path)
    return path


def validate_cert(cert_file, pkey):
    """Bytes of an OpenSSH user certificate for ``pkey``, or None.

    libssh2 1.11 authenticates with RSA certificates only; other kinds are
    refused here rather than failing obscurely at the server.
    """
    if cert_file is None:
        return None
    if pkey is None:
        raise InvalidAPIUseError("cert_file needs the certificate's private key as pkey")
    if isinstance(cert_file, bytes):
        data = cert_file
    else:
        with open(validate_pkey(cert_file), "rb") as cert:
            data = cert.read()
    kind = data.split(None, 1)[0] if data.strip() else b""
    if kind != b"ssh-rsa-cert-v01@openssh.com":
        raise InvalidAPIUseError(
            "Certificate type %r is not supported: libssh2 1.11 authenticates with RSA "
            "certificates (ssh-rsa-cert-v01@openssh.com) only" % (kind.decode("ascii",
                                                                              "replace"),))
    return data


def _given(name, value, defaults):
    if name in ("identity_files",):
        return bool(value)
    return value != defaults[name]


class ConnectSettings:
    """The resolved options of one connection; lower layers read these, never a client."""

    __slots__ = NAMES + ("host", "proxy_hop", "identities", "default_connect_timeout")

    def __init__(self, host: str, values: Mapping[str, Any], proxy_hop: Optional[Hop] = None,
                 identities=(), default_connect_timeout: float = DEFAULT_CONNECT_TIMEOUT):
        self.host = host
        for name in NAMES:
            setattr(self, name, values.get(name, DEFAULTS[name]))
        if self.keyboard_interactive and self.password is None:
            raise InvalidAPIUseError("keyboard_interactive=True requires a password")
        self.user = self.user or getpass.getuser()
        self.port = self.port or 22
        self.timeout = self.timeout or None
        self.pkey = validate_pkey(self.pkey)
        self.proxy_pkey = validate_pkey(self.proxy_pkey)
        self.cert_file = validate_cert(self.cert_file, self.pkey)
        self.host_key_policy = hostkeys.validate_policy(self.host_key_policy)
        self.known_hosts = list(hostkeys.known_hosts_files(self.known_hosts))
        self.identity_files = tuple(os.path.expanduser(path)
                                    for path in self.identity_files or ())
        self.identities_only = bool(self.identities_only)
        self.identities = tuple(identities)
        self.default_connect_timeout = default_connect_timeout
        self.proxy_hop = proxy_hop or self._configured_hop()

    @classmethod
    def build(cls, host: str, given: Mapping[str, Any], host_config=None, ssh_config=None,
              defaults: Mapping[str, Any] = DEFAULTS, proxy_hop: Optional[Hop] = None,
              **extra) -> "ConnectSettings":
        """Resolve ``host``'s options: ``given`` are keyword arguments (missing ones take
        ``defaults``), ``host_config`` a :class:`HostConfig` or None, ``ssh_config`` what a
        client's ``ssh_config=`` accepts. ``proxy_hop`` (a bastion's own chain) skips the
        jump-host lookup."""
        values = {name: given.get(name, defaults[name]) for name in NAMES}
        fixed = set()
        if host_config is not None:
            for option in CONNECTION_OPTIONS:
                value = getattr(host_config, option.host_field, None) \
                    if option.host_field else None
                if value is not None:
                    values[option.name] = value
                    fixed.add(option.name)
        config = openssh_config.resolve(ssh_config)
        if config is not None:
            before = dict(values)
            found = config.lookup(host, user=values["user"],
                                  port=None if values["port"] == defaults["port"]
                                  else values["port"])
            for name, value in found.items():
                if name in fixed or (name in values and _given(name, values[name], defaults)):
                    continue
                values[name] = value
            if proxy_hop is None:
                # Jump hosts have entries in the same file, as with ssh -J.
                proxy_hop = proxy_hops(config, host, values["proxy_jump"], before, values,
                                       values["password"], validate_pkey(values["pkey"]))
        return cls(host, values, proxy_hop, **extra)

    def _configured_hop(self) -> Optional[Hop]:
        if self.proxy_jump:
            return parse_proxy_jump(self.proxy_jump, self.user, self.password, self.pkey)
        if self.proxy_host is None:
            return None
        return Hop(self.proxy_host, port=self.proxy_port or self.port,
                   user=self.proxy_user or self.user,
                   password=self.proxy_password or self.password,
                   pkey=self.proxy_pkey or self.pkey)

    def for_bastion(self, hop: Hop) -> "ConnectSettings":
        """Settings of the connection to bastion ``hop`` on the way to this host: the hop's
        own values, the rest inherited from this connection."""
        values = {name: getattr(self, name) for name in INHERITED}
        for option in HOP_OPTIONS:
            value = getattr(hop, option.name)
            # An inherited option is the hop's own only where its ssh_config entry set it.
            if value is not None or not option.inherited:
                values[option.name] = value
        return ConnectSettings(hop.host, values, hop.via, self.identities,
                               self.default_connect_timeout)

    @property
    def connect_host(self) -> str:
        """The address connected to: ssh_config ``HostName``, else the host name."""
        return self.hostname or self.host

    @property
    def connect_timeout(self) -> float:
        """Bound of each connect attempt and of opening channels (see the module table)."""
        return self.timeout or self.default_connect_timeout

    @property
    def op_timeout(self) -> Optional[float]:
        """Bound of each later wait on an open connection; None: no limit."""
        return self.timeout

    @property
    def agent_forward_timeout(self) -> float:
        return self.timeout or AGENT_REQUEST_TIMEOUT

    @property
    def disconnect_timeout(self) -> float:
        return min(self.timeout or DISCONNECT_TIMEOUT, DISCONNECT_TIMEOUT)
