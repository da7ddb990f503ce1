"""Command-line connection options -> :class:`pssh.ParallelSSHClient` keyword arguments.

``-O Keyword=Value`` (and ``-o`` inside ``-x``) pass OpenSSH client options through to the
library's ssh_config reading: they become lines of an in-memory configuration placed before
the ``--ssh-config`` file (OpenSSH's rule: the first value obtained wins, so they override
the file), and only the keywords the library reads are accepted.
"""
import os
import shlex
from typing import Any, Dict, List, Optional, Sequence

from pssh.config import HostConfig
from pssh.openssh_config import SSHConfig, SSHConfigError

from pssh.cli.hosts import HostSpec

__all__ = ["OptionError", "ssh_extra_args", "pass_through_config", "client_kwargs"]

# The OpenSSH command line flags -x understands, and the option each one sets.
_X_FLAGS_WITH_VALUE = {"-o": "ssh_options", "-p": "port", "-l": "user", "-i": "pkey",
                       "-J": "proxy_jump", "-F": "ssh_config"}
_X_SWITCHES = {"-C": "compress", "-A": "forward_agent"}
_PASS_THROUGH_SOURCE = "-O/-o option"


class OptionError(ValueError):
    """A command-line option the library cannot honour (a usage error)."""


def ssh_extra_args(text: str) -> Dict[str, Any]:
    """The options set by ``-x`` (OpenSSH command line arguments): ``-o``, ``-p``, ``-l``,
    ``-i``, ``-J``, ``-F``, ``-C`` and ``-A``; any other argument is refused."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise OptionError("-x %r: %s" % (text, exc)) from None
    found = {"ssh_options": []}
    index = 0
    while index < len(words):
        word = words[index]
        flag, attached = word[:2], word[2:]
        if flag in _X_SWITCHES and not attached:
            found[_X_SWITCHES[flag]] = True
        elif flag in _X_FLAGS_WITH_VALUE:
            if not attached:
                index += 1
                if index == len(words):
                    raise OptionError("-x: %s needs a value" % flag)
                attached = words[index]
            name = _X_FLAGS_WITH_VALUE[flag]
            if name == "ssh_options":
                found[name].append(attached)
            else:
                found[name] = attached
        else:
            raise OptionError("-x: ssh argument %r is not supported by pssh (supported: %s)"
                              % (word, " ".join(sorted(set(_X_FLAGS_WITH_VALUE)
                                                       | set(_X_SWITCHES)))))
        index += 1
    return found


def _as_config_line(option: str) -> str:
    keyword, sep, value = option.partition("=")
    if not sep:
        keyword, _, value = option.strip().partition(" ")
    keyword, value = keyword.strip(), value.strip()
    if not keyword or not value:
        raise OptionError("-O %r: expected Keyword=Value" % option)
    return "%s %s" % (keyword, value)


def pass_through_config(options: Sequence[str], ssh_config: Optional[str]):
    """What the client's ``ssh_config=`` gets: None, the ``--ssh-config`` path, or an
    :class:`SSHConfig` of the ``-O`` options followed by that file."""
    if not options:
        return os.path.expanduser(ssh_config) if ssh_config else None
    lines = []
    for option in options:
        line = _as_config_line(option)
        try:
            effect = SSHConfig(_PASS_THROUGH_SOURCE, text=line).lookup("*")
        except SSHConfigError as exc:
            raise OptionError("-O %s: %s" % (option, exc)) from None
        if not effect:
            raise OptionError(
                "-O %s: pssh does not support this OpenSSH option (it reads HostName, User, "
                "Port, IdentityFile, IdentitiesOnly, ProxyJump, ConnectTimeout, "
                "ServerAliveInterval, StrictHostKeyChecking, UserKnownHostsFile, "
                "GlobalKnownHostsFile, HostKeyAlias)" % option)
        lines.append(line)
    if ssh_config:
        path = os.path.abspath(os.path.expanduser(ssh_config))
        if not os.path.isfile(path):
            raise OptionError("--ssh-config %s: no such file" % ssh_config)
        lines.append("Include %s" % path)
    return SSHConfig(_PASS_THROUGH_SOURCE, text="\n".join(lines) + "\n")


def host_configs(specs: List[HostSpec]) -> Optional[List[HostConfig]]:
    """Per-host ``HostConfig`` for the targets that name their own user or port (they win
    over ``-l``/``-p``); None when none does."""
    if all(spec.user is None and spec.port is None for spec in specs):
        return None
    return [HostConfig(user=spec.user, port=spec.port) for spec in specs]


def client_kwargs(specs: List[HostSpec], *, user: Optional[str], port: Optional[int],
                  pkey: Optional[str], password: Optional[str], proxy_jump: Optional[str],
                  timeout: Optional[float], num_retries: int, pool_size: int,
                  host_key_policy: Optional[str], known_hosts: Sequence[str],
                  ssh_config: Optional[str], ssh_options: Sequence[str], allow_agent: bool,
                  identity_auth: bool, compress: bool, forward_agent: bool) -> Dict[str, Any]:
    """The keyword arguments of the ParallelSSHClient (hosts excluded) for these options."""
    kwargs = dict(user=user, pkey=pkey, password=password, proxy_jump=proxy_jump,
                  timeout=timeout, num_retries=num_retries, pool_size=pool_size,
                  host_key_policy=host_key_policy, allow_agent=allow_agent,
                  identity_auth=identity_auth, compress=compress,
                  forward_ssh_agent=forward_agent,
                  known_hosts=list(known_hosts) or None,
                  ssh_config=pass_through_config(ssh_options, ssh_config),
                  host_config=host_configs(specs))
    if port is not None:
        kwargs["port"] = port
    return kwargs
