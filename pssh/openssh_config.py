"""OpenSSH client configuration (``~/.ssh/config``), opt-in.

:func:`load` parses a file (and what it includes) once; :meth:`SSHConfig.lookup`
gives the settings of one host as a dict keyed by pssh's names;
:func:`host_configs` turns hosts into :class:`pssh.config.HostConfig` objects
to inspect or to pass as ``host_config=``. The clients read a file when given
``ssh_config=True`` (``~/.ssh/config``) or ``ssh_config="path"``.

Supported, with OpenSSH's rules (the first value obtained for a keyword wins;
``IdentityFile`` accumulates):

``Host`` patterns and ``Match host``/``originalhost``/``all``
    whitespace or comma separated, ``*`` and ``?`` wildcards, ``!`` negation.
    A ``Match`` with any other criterion never matches (logged at DEBUG).
``Include``
    globs, relative paths under ``~/.ssh`` (``/etc/ssh`` for a file there),
    nested at most 16 deep.
Keywords and what they set
    ``HostName`` → ``hostname`` (the address to connect to; ``%h`` is the
    alias), ``User`` → ``user``, ``Port`` → ``port``, ``IdentityFile`` →
    ``identity_files`` (``~``, ``%d %u %h %r %p %n %l %i %%``), ``IdentitiesOnly``
    → ``identities_only``, ``ProxyJump`` → ``proxy_jump`` (its jump hosts are
    looked up in the same file: :mod:`pssh.openssh_jump`), ``ConnectTimeout``
    → ``timeout``, ``ServerAliveInterval`` → ``keepalive_seconds``,
    ``StrictHostKeyChecking`` → ``host_key_policy`` (yes/ask: ``strict``,
    accept-new: ``accept-new``, no/off: ``off``), ``UserKnownHostsFile`` and
    ``GlobalKnownHostsFile`` → ``known_hosts`` (``none`` and ``/dev/null``:
    no file), ``HostKeyAlias`` → ``host_key_alias``.

Every other keyword is ignored with a DEBUG log. A malformed value of a
supported keyword raises :class:`SSHConfigError` naming file and line, as ssh
refuses such a file.
"""
import getpass
import glob
import logging
import os
import re
import socket

from pssh import hostkeys
from pssh.config import HostConfig
from pssh.exceptions import PSSHError

__all__ = ["SSHConfig", "SSHConfigError", "load", "host_configs", "DEFAULT_PATH"]

logger = logging.getLogger(__name__)

DEFAULT_PATH = "~/.ssh/config"
MAX_INCLUDE_DEPTH = 16

_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_STRICT = {"yes": hostkeys.STRICT, "true": hostkeys.STRICT, "ask": hostkeys.STRICT,
           "accept-new": hostkeys.ACCEPT_NEW, "no": hostkeys.OFF, "off": hostkeys.OFF,
           "false": hostkeys.OFF}
_BOOLEAN = {"yes": True, "true": True, "no": False, "false": False}
_NO_FILE = ("none", "/dev/null")


class SSHConfigError(PSSHError, ValueError):
    """An OpenSSH client configuration file cannot be used (bad value, Include loop)."""


# -- parsing helpers -----------------------------------------------------------------------------

def _split_args(text, where):
    """Arguments of a line: whitespace separated, double or single quotes, ``#`` comments."""
    args = []
    current = []
    quote = None
    in_token = False
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = None
            else:
                current.append(char)
        elif char in "\"'":
            quote = char
            in_token = True
        elif char.isspace():
            if in_token:
                args.append("".join(current))
                current, in_token = [], False
        elif char == "#" and not in_token:
            break
        elif char == "\\" and index + 1 < len(text):
            index += 1
            current.append(text[index])
            in_token = True
        else:
            current.append(char)
            in_token = True
        index += 1
    if quote:
        raise SSHConfigError("%s: unterminated quote", where)
    if in_token:
        args.append("".join(current))
    return args


class _Patterns:
    """A pattern list: matches when a positive pattern matches and no negated one does."""

    __slots__ = ("text", "positive", "negative")

    def __init__(self, words):
        patterns = [part.lower() for word in words for part in word.split(",") if part]
        self.text = ",".join(patterns)
        matcher = hostkeys.compile_host_pattern
        self.positive = tuple(matcher(p) for p in patterns if not p.startswith("!"))
        self.negative = tuple(matcher(p[1:]) for p in patterns if p.startswith("!"))

    def matches(self, name):
        name = name.lower()
        if any(match(name) for match in self.negative):
            return False
        return any(match(name) for match in self.positive)


class _Host:
    __slots__ = ("patterns",)

    def __init__(self, patterns):
        self.patterns = patterns

    def matches(self, alias, hostname):
        return self.patterns.matches(alias)

    def __repr__(self):
        return "Host %s" % self.patterns.text


class _Match:
    """``Match`` criteria, all of which must hold; ``None`` criteria: never matches."""

    __slots__ = ("criteria", "text")

    def __init__(self, criteria, text):
        self.criteria = criteria
        self.text = text

    def matches(self, alias, hostname):
        if self.criteria is None:
            return False
        for negate, name, patterns in self.criteria:
            if name == "all":
                result = True
            elif name == "host":
                result = patterns.matches(hostname)
            else:  # originalhost
                result = patterns.matches(alias)
            if result == negate:
                return False
        return True

    def __repr__(self):
        return "Match %s" % self.text


def _parse_match(args, where):
    criteria = []
    index = 0
    while index < len(args):
        word = args[index]
        negate = word.startswith("!")
        name = word[1:].lower() if negate else word.lower()
        index += 1
        if name == "all":
            criteria.append((negate, "all", None))
            continue
        if name in ("host", "originalhost"):
            if index >= len(args):
                raise SSHConfigError("%s: Match %s needs an argument", where, name)
            criteria.append((negate, name, _Patterns([args[index]])))
            index += 1
            continue
        logger.debug("%s: Match criterion %r is not supported: this block never matches",
                     where, word)
        return None
    if not criteria:
        raise SSHConfigError("%s: Match needs criteria", where)
    return criteria


def _time(value, where, keyword):
    text = value.lower()
    if text == "none":
        return 0
    total = 0
    parts = re.findall(r"(\d+)([smhdw]?)", text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise SSHConfigError("%s: invalid time value %r for %s", where, value, keyword)
    for number, unit in parts:
        total += int(number) * _TIME_UNITS[unit]
    return total


def _one(args, where, keyword):
    if not args:
        raise SSHConfigError("%s: %s needs an argument", where, keyword)
    return args[0]


def _convert(keyword, args, where):
    """The stored value of a supported keyword's arguments (raises on a bad value)."""
    if keyword in ("hostname", "user", "identityfile", "proxyjump", "hostkeyalias"):
        return _one(args, where, keyword)
    if keyword == "port":
        value = _one(args, where, keyword)
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise SSHConfigError("%s: bad port %r", where, value)
        return int(value)
    if keyword in ("connecttimeout", "serveraliveinterval"):
        return _time(_one(args, where, keyword), where, keyword)
    if keyword == "identitiesonly":
        value = _one(args, where, keyword).lower()
        if value not in _BOOLEAN:
            raise SSHConfigError("%s: IdentitiesOnly must be yes or no, got %r", where, value)
        return _BOOLEAN[value]
    if keyword == "stricthostkeychecking":
        value = _one(args, where, keyword).lower()
        if value not in _STRICT:
            raise SSHConfigError("%s: bad StrictHostKeyChecking value %r", where, value)
        return _STRICT[value]
    if keyword in ("userknownhostsfile", "globalknownhostsfile"):
        if not args:
            raise SSHConfigError("%s: %s needs an argument", where, keyword)
        return tuple(args)
    raise AssertionError(keyword)


_SUPPORTED = frozenset(("hostname", "user", "port", "identityfile", "identitiesonly",
                        "proxyjump", "connecttimeout", "serveraliveinterval",
                        "stricthostkeychecking", "userknownhostsfile", "globalknownhostsfile",
                        "hostkeyalias"))
_LINE = re.compile(r"\s*([^\s=]+)\s*(?:=\s*|\s|$)(.*)\Z", re.DOTALL)


class _Line:
    __slots__ = ("keyword", "value", "conditions", "where")

    def __init__(self, keyword, value, conditions, where):
        self.keyword = keyword
        self.value = value
        self.conditions = conditions
        self.where = where


# -- the config ----------------------------------------------------------------------------------

class SSHConfig:
    """A parsed OpenSSH client configuration; see the module documentation.

    ``files`` lists every file read (the main one first, then the included
    ones in reading order).
    """

    def __init__(self, path=None, text=None):
        self.path = os.path.expanduser(path or DEFAULT_PATH)
        self.files = []
        self._lines = []
        self._ignored = set()
        top = os.path.dirname(os.path.abspath(self.path))
        self._include_base = "/etc/ssh" if top == "/etc/ssh" else os.path.expanduser("~/.ssh")
        if text is None:
            text = _read(self.path)
        self.files.append(self.path)
        self._parse(text, self.path, (), 0)

    def _parse(self, text, path, outer, depth):
        conditions = outer
        for lineno, raw in enumerate(text.split("\n"), 1):
            where = "%s:%d" % (path, lineno)
            match = _LINE.match(raw)
            if not match or match.group(1).startswith("#"):
                continue
            keyword = match.group(1).lower()
            args = _split_args(match.group(2), where)
            if keyword == "host":
                if not args:
                    raise SSHConfigError("%s: Host needs at least one pattern", where)
                conditions = outer + (_Host(_Patterns(args)),)
            elif keyword == "match":
                conditions = outer + (_Match(_parse_match(args, where), " ".join(args)),)
            elif keyword == "include":
                if not args:
                    raise SSHConfigError("%s: Include needs an argument", where)
                for pattern in args:
                    self._include(pattern, conditions, depth, where)
            elif keyword in _SUPPORTED:
                self._lines.append(_Line(keyword, _convert(keyword, args, where), conditions,
                                         where))
            elif keyword not in self._ignored:
                self._ignored.add(keyword)
                logger.debug("%s: keyword %r is not supported by pssh and is ignored", where,
                             match.group(1))

    def _include(self, pattern, conditions, depth, where):
        if depth + 1 > MAX_INCLUDE_DEPTH:
            raise SSHConfigError("%s: Include nested more than %d levels deep", where,
                                 MAX_INCLUDE_DEPTH)
        pattern = os.path.expanduser(pattern)
        if not os.path.isabs(pattern):
            pattern = os.path.join(self._include_base, pattern)
        paths = sorted(glob.glob(pattern))
        if not paths:
            logger.debug("%s: Include %s matches no file", where, pattern)
        for path in paths:
            if os.path.isdir(path):
                continue
            try:
                text = _read(path)
            except OSError as exc:
                logger.debug("%s: cannot read included file %s: %s", where, path, exc)
                continue
            self.files.append(path)
            self._parse(text, path, conditions, depth + 1)

    def lookup(self, host, user=None, port=None):
        """Settings for ``host`` (the name or alias as given) as a dict of pssh names.

        Keys present only when the file sets them: ``hostname``, ``user``,
        ``port``, ``identity_files`` (list), ``identities_only``,
        ``proxy_jump`` (None for ``ProxyJump none``), ``timeout``,
        ``keepalive_seconds``, ``host_key_policy``, ``known_hosts`` (list).
        ``user`` and ``port`` are the values the caller will use, when it
        knows them, for the ``%r`` and ``%p`` tokens of file names.
        """
        found = {}
        identities = []
        host_results = {}
        for line in self._lines:
            ok = True
            for condition in line.conditions:
                if condition.__class__ is _Host:
                    result = host_results.get(id(condition))
                    if result is None:
                        result = host_results[id(condition)] = condition.matches(host, None)
                else:
                    hostname = found.get("hostname")
                    hostname = host if hostname is None else _hostname(hostname, host)
                    result = condition.matches(host, hostname)
                if not result:
                    ok = False
                    break
            if not ok:
                continue
            if line.keyword == "identityfile":
                identities.append(line.value)
            elif line.keyword not in found:
                found[line.keyword] = line.value
        return self._settings(host, found, identities, user, port)

    def _settings(self, host, found, identities, user, port):
        out = {}
        hostname = _hostname(found["hostname"], host) if "hostname" in found else host
        if "hostname" in found:
            out["hostname"] = hostname
        if "user" in found:
            out["user"] = found["user"]
        if "port" in found:
            out["port"] = found["port"]
        tokens = {
            "%": "%", "d": os.path.expanduser("~"), "u": getpass.getuser(), "h": hostname,
            "r": user or found.get("user") or getpass.getuser(), "n": host,
            "p": str(port or found.get("port") or 22), "l": socket.gethostname().split(".")[0],
            "L": socket.gethostname().split(".")[0], "i": str(os.getuid()),
        }
        if identities:
            out["identity_files"] = [_expand(path, tokens) for path in identities]
        if "identitiesonly" in found:
            out["identities_only"] = found["identitiesonly"]
        if "proxyjump" in found:
            jump = found["proxyjump"]
            out["proxy_jump"] = None if jump.lower() == "none" else jump
        if "connecttimeout" in found:
            out["timeout"] = found["connecttimeout"] or None
        if "serveraliveinterval" in found:
            out["keepalive_seconds"] = found["serveraliveinterval"]
        if "stricthostkeychecking" in found:
            out["host_key_policy"] = found["stricthostkeychecking"]
        if "hostkeyalias" in found:
            out["host_key_alias"] = found["hostkeyalias"]
        if "userknownhostsfile" in found or "globalknownhostsfile" in found:
            user_files = found.get("userknownhostsfile", hostkeys.DEFAULT_KNOWN_HOSTS[:1])
            global_files = found.get("globalknownhostsfile", hostkeys.DEFAULT_KNOWN_HOSTS[1:])
            out["known_hosts"] = [_expand(path, tokens) for path in user_files + global_files
                                  if path.lower() not in _NO_FILE]
        return out

    def __repr__(self):
        return "<SSHConfig %s (%d files)>" % (self.path, len(self.files))


def _hostname(value, alias):
    return value.replace("%%", "\0").replace("%h", alias).replace("\0", "%")


def _expand(path, tokens):
    def token(match):
        name = match.group(1)
        if name in tokens:
            return tokens[name]
        logger.debug("unknown token %%%s left as is in %s", name, path)
        return match.group(0)
    return os.path.expanduser(re.sub(r"%(.)", token, path))


def _read(path):
    with open(path, encoding="utf-8", errors="replace") as config_file:
        return config_file.read()


_CACHE = {}


def _stat_key(path):
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def load(path=None):
    """The :class:`SSHConfig` of ``path`` (default ``~/.ssh/config``).

    A missing default file gives an empty configuration; a missing explicit
    path raises ``FileNotFoundError``. Parsed files are cached by the mtime
    and size of every file read.
    """
    explicit = path is not None
    path = os.path.expanduser(os.fspath(path) if explicit else DEFAULT_PATH)
    cached = _CACHE.get(path)
    if cached is not None and all(_stat_key(name) == key for name, key in cached[0]):
        return cached[1]
    if not explicit and not os.path.exists(path):
        return SSHConfig(path, text="")
    config = SSHConfig(path)
    _CACHE[path] = (tuple((name, _stat_key(name)) for name in config.files), config)
    return config


def host_configs(hosts, path=None):
    """One :class:`pssh.config.HostConfig` per host with the file's settings (None elsewhere)."""
    config = path if isinstance(path, SSHConfig) else load(path)
    return [HostConfig(**config.lookup(host)) for host in hosts]


# -- client wiring -------------------------------------------------------------------------------

def resolve(ssh_config):
    """The :class:`SSHConfig` meant by a client's ``ssh_config=`` (None when not used)."""
    if ssh_config is None or ssh_config is False:
        return None
    if ssh_config is True:
        return load()
    if isinstance(ssh_config, SSHConfig):
        return ssh_config
    if isinstance(ssh_config, (str, os.PathLike)):
        return load(ssh_config)
    raise ValueError("ssh_config must be None, a bool, a path or an SSHConfig, got %r"
                     % (ssh_config,))
