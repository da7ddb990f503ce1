"""Host lists of the command line: ``[user@]host[:port]`` specs, folded ranges, host files.

Ranges use ClusterShell's NodeSet syntax (``web[01-20].example.com``, ``10.0.0.[1-254]``,
several bracket groups, comma lists inside brackets); a bracketed part holding a ``:`` is an
IPv6 address instead (``[::1]:2222``). Group names (``@name``) are not resolved: pssh has no
group source, so ``@`` only separates the user.
"""
import ipaddress
import os
import re
import sys
from typing import Iterable, List, NamedTuple, Optional

from ClusterShell.NodeSet import RESOLVER_NOGROUP, NodeSet, NodeSetException

__all__ = ["HostSpec", "HostSpecError", "parse_host_specs", "read_host_file", "fold",
           "host_labels"]

_PORT = re.compile(r"^(.*?):(\d+)$")


class HostSpecError(ValueError):
    """A host argument or host file line that cannot be read (a usage error)."""


class HostSpec(NamedTuple):
    """One target: the host name or address, and the user and port it names (None: default)."""
    host: str
    user: Optional[str] = None
    port: Optional[int] = None


def _split_top_level(text: str) -> List[str]:
    """``text`` split at whitespace and at commas outside brackets."""
    parts, current, depth = [], [], 0
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth = max(0, depth - 1)
        if depth == 0 and (char == "," or char.isspace()):
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part]


def _port(text: str, where: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise HostSpecError("%s: port %s out of range" % (where, text))
    return port


def _one_spec(token: str, where: str) -> List[HostSpec]:
    user = None
    if "@" in token:
        user, token = token.split("@", 1)
        if not user:
            raise HostSpecError("%s: empty user name in %r" % (where, "@" + token))
    port = None
    ipv6 = re.match(r"^\[([0-9A-Fa-f:.%]*:[0-9A-Fa-f:.%]*)\](?::(\d+))?$", token)
    if ipv6:
        host, port_text = ipv6.groups()
        return [HostSpec(host, user, _port(port_text, where) if port_text else None)]
    if token.count(":") > 1 and "[" not in token:  # a bare IPv6 address has no port
        try:
            ipaddress.ip_address(token.split("%", 1)[0])
        except ValueError:
            raise HostSpecError("%s: %r is neither host[:port] nor an IPv6 address"
                                % (where, token)) from None
        return [HostSpec(token, user, None)]
    match = _PORT.match(token)
    if match:
        token, port = match.group(1), _port(match.group(2), where)
    elif ":" in token:
        raise HostSpecError("%s: bad port in %r" % (where, token))
    if not token:
        raise HostSpecError("%s: no host name" % where)
    if "[" not in token:
        return [HostSpec(token, user, port)]
    try:
        names = list(NodeSet(token, resolver=RESOLVER_NOGROUP))
    except NodeSetException as exc:
        raise HostSpecError("%s: bad host range %r: %s" % (where, token, exc)) from None
    return [HostSpec(name, user, port) for name in names]


def parse_host_specs(text: str, where: str = "host argument") -> List[HostSpec]:
    """Every target named by ``text``: host specs separated by whitespace or commas, each
    ``[user@]host[:port]`` where ``host`` may be a folded range."""
    specs = []
    for token in _split_top_level(text):
        specs.extend(_one_spec(token, where))
    return specs


def read_host_file(path: str) -> List[HostSpec]:
    """The targets of a host file (``-`` reads standard input): host specs separated by
    whitespace, ``#`` starts a comment."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(os.path.expanduser(path), encoding="utf-8") as host_file:
                text = host_file.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise HostSpecError("cannot read host file %s: %s" % (path, exc)) from None
    specs = []
    for lineno, line in enumerate(text.splitlines(), 1):
        specs.extend(parse_host_specs(line.split("#", 1)[0], "%s:%d" % (path, lineno)))
    return specs


def unique(specs: Iterable[HostSpec]) -> List[HostSpec]:
    """``specs`` without repeats, in first-seen order."""
    return list(dict.fromkeys(specs))


def host_labels(specs: List[HostSpec]) -> List[str]:
    """A distinct display name per target: the host name, with ``user@`` and ``:port`` added
    only where the same name is targeted more than once."""
    counts = {}
    for spec in specs:
        counts[spec.host] = counts.get(spec.host, 0) + 1
    labels = []
    for spec in specs:
        label = spec.host
        if counts[spec.host] > 1:
            if spec.port is not None:
                label = "%s:%d" % (label, spec.port)
            if spec.user is not None:
                label = "%s@%s" % (spec.user, label)
        labels.append(label)
    seen = {}
    for index, label in enumerate(labels):
        if label in seen:
            seen[label] += 1
            labels[index] = "%s#%d" % (label, seen[label])
        else:
            seen[label] = 1
    return labels


def fold(names: Iterable[str]) -> str:
    """``names`` as one folded set (``web[01-03],db1``), as ClusterShell prints it."""
    names = list(names)
    if not names:
        return ""
    try:
        return str(NodeSet.fromlist(names, resolver=RESOLVER_NOGROUP))
    except NodeSetException:
        return ",".join(names)
