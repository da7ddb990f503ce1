"""Jump hosts (``ProxyJump``) resolved through the OpenSSH client configuration.

With ``ssh_config=``, every host of a ``ProxyJump`` chain, whether it comes
from the file or from the clients' ``proxy_jump=``, is looked up in the same
configuration, as ``ssh -J`` does. Its entry gives the ``HostName`` to connect
to, ``User``, ``Port``, ``IdentityFile``/``IdentitiesOnly``, ``ConnectTimeout``,
``ServerAliveInterval`` and the host key settings (``StrictHostKeyChecking``,
``UserKnownHostsFile``, ``GlobalKnownHostsFile``). A user or port written in the ``ProxyJump`` item wins
over the entry, as ``ssh -l``/``-p`` do.

Where the entry says nothing, a jump host keeps what pssh bastions always
used: the target's user, password and key, timeout and host key settings.
Client arguments given explicitly (``timeout``, ``host_key_policy``,
``known_hosts``) win over a jump host's entry as they win over the target's.
A jump host whose entry has ``IdentityFile`` lines logs in with those instead
of the client's ``pkey``.

Chains follow OpenSSH (checked with ``ssh -v`` of OpenSSH 9.2, which runs
``ProxyJump a,c`` as ``ssh -J a -W target c`` and then ``ssh -W c a``): the
hosts after the first one of a list are reached through the list as written
and their own ``ProxyJump`` entries are ignored; the first host is reached the
way its own entry says, so ``Host a`` with ``ProxyJump z`` makes ``a,c`` the
path ``z, a, c``. A loop (``Host *`` with ``ProxyJump bastion`` and no
``ProxyJump none`` for the bastion) raises :class:`SSHConfigError` where ssh
would start itself without end.
"""
import getpass
from typing import Any, Mapping, Optional, Tuple, Union

from pssh import hostkeys
from pssh.openssh_config import SSHConfig, SSHConfigError
from pssh.connection.tunnel import Hop, split_proxy_jump

__all__ = ["proxy_hops", "describe"]


def proxy_hops(config: SSHConfig, host: str, spec: Optional[str], given: Mapping[str, Any],
               effective: Mapping[str, Any], password: Optional[str] = None,
               pkey: Union[str, bytes, None] = None) -> Optional[Hop]:
    """The :class:`~pssh.tunnel.Hop` chain to ``host`` through the jump hosts of ``spec``
    (``[user@]host[:port],...``), each looked up in ``config``; None without jump hosts.

    ``given`` has the client's own ``timeout``, ``host_key_policy`` and
    ``known_hosts`` (None: not given); ``effective`` has the target's values
    once its own entry is applied, and its ``user``. ``password`` and ``pkey``
    are the target's.
    """
    if not spec:
        return None
    base = {"user": effective.get("user") or getpass.getuser(), "password": password,
            "pkey": pkey}
    explicit = {}
    for name in ("timeout", "host_key_policy", "known_hosts"):
        if given.get(name) is not None:
            explicit[name] = given[name]
        base[name] = effective.get(name)
    return _chain(config, spec, base, explicit, (host,))


def _chain(config, spec, base, explicit, path):
    try:
        items = split_proxy_jump(spec)
    except ValueError as exc:
        raise SSHConfigError("Bad ProxyJump %r for %s: %s", spec, path[-1], exc) from exc
    hop = None
    for index, (hop_user, alias, hop_port) in enumerate(items):
        settings = config.lookup(alias, user=hop_user, port=hop_port)
        user = hop_user or settings.get("user") or base["user"]
        if hop_user is None and "user" not in settings and user != getpass.getuser():
            # %r in IdentityFile/UserKnownHostsFile is the user the hop logs in as.
            settings = config.lookup(alias, user=user, port=hop_port)
        via = hop
        own = settings.get("proxy_jump") if index == 0 else None
        if own and split_proxy_jump(own):
            if any(alias.lower() == seen.lower() for seen in path):
                raise SSHConfigError("ProxyJump loop in %s: %s", config.path,
                                     " via ".join(path + (alias,)))
            via = _chain(config, own, base, explicit, path + (alias,))
        hop = _hop(alias, hop_port, user, settings, base, explicit, via)
    return hop


def _hop(alias: str, port: Optional[int], user: str, settings: Mapping[str, Any],
         base: Mapping[str, Any], explicit: Mapping[str, Any], via: Optional[Hop]) -> Hop:
    identity_files = tuple(settings.get("identity_files") or ())

    def pick(name):
        if name in explicit:
            return explicit[name]
        return settings[name] if name in settings else base[name]
    # Every field is filled in, so that a hop further down the chain never falls
    # back to the settings of the bastion client that connects through it.
    timeout = pick("timeout")
    return Hop(alias, via=via, port=port or settings.get("port") or 22, user=user,
               password=base["password"], pkey=None if identity_files else base["pkey"],
               hostname=settings.get("hostname"), identity_files=identity_files,
               identities_only=bool(settings.get("identities_only")),
               timeout=0 if timeout is None else timeout,  # 0: SSHClient's default
               host_key_policy=hostkeys.validate_policy(pick("host_key_policy")),
               known_hosts=hostkeys.known_hosts_files(pick("known_hosts")),
               keepalive_seconds=settings.get("keepalive_seconds"))


def describe(hop: Optional[Hop]) -> Tuple[str, ...]:
    """``user@address:port`` of every hop of a chain, first hop first (for logs and tests)."""
    out = []
    while hop is not None:
        out.append("%s@%s:%s" % (hop.user, hop.hostname or hop.host, hop.port))
        hop = hop.via
    return tuple(reversed(out))
