"""Host key verification against OpenSSH ``known_hosts`` files.

The files are parsed here (no libssh2 knownhost API): plain host names, comma
lists, ``[host]:port`` entries, hashed ``|1|salt|hash`` entries, negated
``!pattern`` and ``*``/``?`` wildcards, and the ``@revoked`` and
``@cert-authority`` markers. A host is looked up by the name ``host`` for port
22 and ``[host]:port`` otherwise, lower-cased, as OpenSSH does.

Host certificates (``@cert-authority``) cannot be verified: libssh2 1.11.1
cannot negotiate a certificate host key. Its RSA and ECDSA ``*-cert-v01``
host key methods have no signature verifier, so the key exchange finds no
usable method (``KexFailureError``, -5); its Ed25519 one accepts only a plain
``ssh-ed25519`` blob and fails on the certificate the server sends
(``KeyExchangeError``, -8). Negotiating the plain key instead yields no
certificate to check. So matching ``@cert-authority`` lines are gathered only
to say so: a host they would vouch for is judged by its plain key lines alone,
and the refusal (or the acceptance of an unknown key) names the unused lines.

Policies (``host_key_policy=`` on the clients and on ``HostConfig``):

``"accept-unknown"`` (the default)
    A host whose key is known and now differs is refused; an unknown host is
    accepted without writing anything (logged at INFO).
``"strict"``
    Unknown and changed keys are refused, and so is every host while a known_hosts file
    exists but cannot be read.
``"accept-new"``
    Unknown keys are accepted and appended to the first known_hosts file;
    changed keys are refused.
``"off"``
    No check at all.

A key listed as ``@revoked`` for the host is refused under every policy but
``"off"``. A host counts as *known* when any file holds a key of any type for
it; the handshake then prefers the known key types, so a server offering
only another type is refused as changed (a downgrade an attacker could use).

Each file is parsed once per process and cached by (path, mtime, size); plain
names are indexed in a dict, patterns and hashed entries (one HMAC-SHA1 per
entry) are scanned, and results are memoised per looked-up name.
"""
import base64
import binascii
import fcntl
import hashlib
import logging
import os
import re
from typing import NamedTuple, Optional

from pssh.exceptions import HostKeyError

__all__ = ["POLICIES", "DEFAULT_POLICY", "DEFAULT_KNOWN_HOSTS", "validate_policy",
           "known_hosts_files", "fingerprint", "key_type", "lookup_name", "KnownHostsFile",
           "load_known_hosts", "HostKeyCheck", "prepare", "compile_host_pattern"]

logger = logging.getLogger(__name__)

STRICT = "strict"
ACCEPT_NEW = "accept-new"
ACCEPT_UNKNOWN = "accept-unknown"
OFF = "off"
POLICIES = (ACCEPT_UNKNOWN, STRICT, ACCEPT_NEW, OFF)
DEFAULT_POLICY = ACCEPT_UNKNOWN
DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")

# Host key algorithms libssh2 may negotiate for a key type of a known_hosts line.
_ALGORITHMS = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "ssh-dss": ("ssh-dss",),
}
_ALL_ALGORITHMS = None


def validate_policy(policy):
    """``policy`` checked and normalised; None gives :data:`DEFAULT_POLICY`."""
    if policy is None:
        return DEFAULT_POLICY
    if not isinstance(policy, str) or policy.lower() not in POLICIES:
        raise ValueError("host_key_policy must be one of %s, got %r"
                         % (", ".join(repr(name) for name in POLICIES), policy))
    return policy.lower()


def known_hosts_files(known_hosts):
    """Tuple of expanded paths: None gives the defaults, a str is one path."""
    if known_hosts is None:
        known_hosts = DEFAULT_KNOWN_HOSTS
    elif isinstance(known_hosts, (str, os.PathLike)):
        known_hosts = (known_hosts,)
    elif not isinstance(known_hosts, (list, tuple)) or not all(
            isinstance(path, (str, os.PathLike)) for path in known_hosts):
        raise ValueError("known_hosts must be a list of file paths, got %r" % (known_hosts,))
    return tuple(os.path.expanduser(os.fspath(path)) for path in known_hosts)


def fingerprint(blob):
    """OpenSSH SHA256 fingerprint of a public key blob: ``SHA256:`` + unpadded base64."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def key_type(blob):
    """Key type name at the start of a public key blob (``ssh-ed25519``, ...), or None."""
    if len(blob) < 4:
        return None
    size = int.from_bytes(blob[:4], "big")
    if size <= 0 or size > 64 or len(blob) < 4 + size:
        return None
    try:
        return blob[4:4 + size].decode("ascii")
    except UnicodeDecodeError:
        return None


def lookup_name(host, port):
    """The name known_hosts stores for ``host``:``port``: ``host`` or ``[host]:port``."""
    host = host.lower()
    if port is None or int(port) == 22:
        return host
    return "[%s]:%d" % (host, int(port))


# -- parsing -----------------------------------------------------------------------------------

class _Entry(NamedTuple):
    """One key line: marker (None or "revoked"), key type, blob, where it came from."""

    marker: Optional[str]
    keytype: str
    blob: bytes
    path: str
    lineno: int

    @property
    def location(self):
        return "%s:%d" % (self.path, self.lineno)

    def __repr__(self):
        return "<known host key %s %s at %s%s>" % (self.keytype, fingerprint(self.blob),
                                                   self.location,
                                                   " (revoked)" if self.marker else "")


_IPAD = bytes(byte ^ 0x36 for byte in range(256))
_OPAD = bytes(byte ^ 0x5C for byte in range(256))


def _hmac_states(salt):
    """SHA-1 states after the inner and outer HMAC pads of key ``salt`` (RFC 2104)."""
    if len(salt) > 64:
        salt = hashlib.sha1(salt).digest()
    key = salt.ljust(64, b"\0")
    return hashlib.sha1(key.translate(_IPAD)), hashlib.sha1(key.translate(_OPAD))


REVOKED = "revoked"
CERT_AUTHORITY = "cert-authority"
_CA_UNUSED = "libssh2 cannot negotiate certificate host keys"
_WARNED_AUTHORITIES = set()
_WARNED_UNREADABLE = set()


def compile_host_pattern(pattern):
    """A matcher (str -> truthy) for one OpenSSH host pattern: ``*`` any run of characters,
    ``?`` one character, the rest literal; shared with ssh_config's ``Host`` lines."""
    if "*" not in pattern and "?" not in pattern:
        return pattern.__eq__
    regex = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char)
                    for char in pattern)
    return re.compile(regex + r"\Z", re.DOTALL).match


class KnownHostsFile:
    """The parsed content of one known_hosts file (see :func:`load_known_hosts`)."""

    def __init__(self, path, text="", stat_key=None, unreadable=None):
        self.path = path
        self.stat_key = stat_key
        # Why the file exists but could not be read (None: read, or absent).
        self.unreadable = unreadable
        self.entries = []
        self._plain = {}      # exact lower-case name -> [entry]
        self._patterned = []  # (positive matchers, negative matchers, entry)
        self._hashed = []     # (HMAC pad states, digest, entry) of key and CA lines
        self._hashed_revoked = []  # the same for @revoked lines
        self._memo = {}
        self._memo_hashed = {}
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        self.lines = len(lines)
        for lineno, line in enumerate(lines, 1):
            self._parse_line(line, lineno)

    def _parse_line(self, line, lineno):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            return
        marker = None
        if fields[0].startswith("@"):
            marker = fields[0][1:].lower()
            fields = fields[1:]
            if marker == CERT_AUTHORITY:
                logger.debug("%s:%d: @cert-authority line read, but not used to verify hosts (%s)",
                             self.path, lineno, _CA_UNUSED)
            elif marker != REVOKED:
                logger.debug("%s:%d: unknown marker @%s, line ignored", self.path, lineno, marker)
                return
        if len(fields) < 3:
            logger.debug("%s:%d: malformed line ignored", self.path, lineno)
            return
        patterns, keytype, data = fields[0], fields[1], fields[2]
        try:
            blob = base64.b64decode(data.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            logger.debug("%s:%d: bad base64 key data, line ignored", self.path, lineno)
            return
        entry = _Entry(marker, key_type(blob) or keytype, blob, self.path, lineno)
        self.entries.append(entry)
        if patterns.startswith("|1|"):
            parts = patterns.split("|")
            try:
                salt = base64.b64decode(parts[2], validate=True)
                digest = base64.b64decode(parts[3], validate=True)
            except (IndexError, binascii.Error, ValueError):
                logger.debug("%s:%d: bad hashed host name, line ignored", self.path, lineno)
                self.entries.pop()
                return
            (self._hashed_revoked if marker == REVOKED else self._hashed).append(
                (_hmac_states(salt), digest, entry))
            return
        names = patterns.lower().split(",")
        if any(name.startswith("!") or "*" in name or "?" in name for name in names):
            positive = tuple(compile_host_pattern(name) for name in names
                             if name and not name.startswith("!"))
            negative = tuple(compile_host_pattern(name[1:]) for name in names
                             if name.startswith("!") and len(name) > 1)
            self._patterned.append((positive, negative, entry))
        else:
            for name in names:
                if name:
                    self._plain.setdefault(name, []).append(entry)

    @property
    def has_hashed(self):
        """True when the file holds hashed key lines (see :meth:`match_hashed`)."""
        return bool(self._hashed)

    def match(self, name):
        """Entries (keys, revocations, CAs) whose host patterns match the lower-case ``name``."""
        return tuple(sorted(self.match_unhashed(name) + self.match_hashed(name),
                            key=_line_order))

    def match_unhashed(self, name):
        """Matching plain and pattern lines, and every matching ``@revoked`` line."""
        found = self._memo.get(name)
        if found is not None:
            return found
        found = list(self._plain.get(name, ()))
        for positive, negative, entry in self._patterned:
            if any(match(name) for match in negative):
                continue
            if any(match(name) for match in positive):
                found.append(entry)
        found.extend(_hashed_matches(self._hashed_revoked, name))
        found = tuple(sorted(found, key=_line_order))
        if len(self._memo) > 4096:
            self._memo.clear()
        self._memo[name] = found
        return found

    def match_hashed(self, name):
        """Matching hashed key lines (one HMAC-SHA1 per hashed line of the file)."""
        found = self._memo_hashed.get(name)
        if found is None:
            found = tuple(_hashed_matches(self._hashed, name))
            if len(self._memo_hashed) > 4096:
                self._memo_hashed.clear()
            self._memo_hashed[name] = found
        return found

    def add(self, name, blob):
        """Append a ``name keytype base64`` line to the file and to this parsed copy."""
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        line = "%s %s %s\n" % (name, key_type(blob), base64.b64encode(blob).decode("ascii"))
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            # Shard processes add hosts to one file at once: the newline check and the
            # append must not interleave with another process's.
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = "\n" + line
            os.write(fd, line.encode("utf-8"))
            stat = os.fstat(fd)
        finally:
            os.close(fd)
        self.lines += 1
        entry = _Entry(None, key_type(blob), blob, self.path, self.lines)
        self.entries.append(entry)
        self._plain.setdefault(name, []).append(entry)
        self._memo.pop(name, None)
        self._memo_hashed.pop(name, None)
        known_size = self.stat_key[1] if self.stat_key else 0
        if size == known_size:
            self.stat_key = (stat.st_mtime_ns, stat.st_size)
            _FILES[self.path] = self
        else:
            # Another process added lines since this copy was read: it is not the file any
            # more, so the next lookup reads the file again.
            self.stat_key = None
            _FILES.pop(self.path, None)


def _hashed_matches(hashed, name):
    # HMAC-SHA1(salt, name) from the precomputed pad states: half the cost of hmac.digest,
    # which sets the key up again on every call.
    if not hashed:
        return []
    encoded = name.encode("utf-8")
    found = []
    for (inner, outer), digest, entry in hashed:
        state = inner.copy()
        state.update(encoded)
        final = outer.copy()
        final.update(state.digest())
        if final.digest() == digest:
            found.append(entry)
    return found


def _line_order(entry):
    return entry.lineno


_FILES = {}


def load_known_hosts(path):
    """The parsed :class:`KnownHostsFile` at ``path``, cached by (path, mtime, size).

    A missing file is an empty one. A file that exists but cannot be read (permissions, a
    directory in its place) is empty too, with the reason in ``unreadable``; it is not
    cached, so it is read as soon as it can be.
    """
    try:
        stat = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        parsed = _FILES.get(path)
        if parsed is None or parsed.stat_key is not None:
            parsed = _FILES[path] = KnownHostsFile(path)
        return parsed
    except OSError as exc:
        return KnownHostsFile(path, unreadable=exc.strerror or str(exc))
    stat_key = (stat.st_mtime_ns, stat.st_size)
    parsed = _FILES.get(path)
    if parsed is not None and parsed.stat_key == stat_key:
        return parsed
    try:
        with open(path, encoding="utf-8", errors="replace") as known:
            text = known.read()
    except OSError as exc:
        return KnownHostsFile(path, unreadable=exc.strerror or str(exc))
    parsed = KnownHostsFile(path, text, stat_key)
    _FILES[path] = parsed
    return parsed


# -- checking ----------------------------------------------------------------------------------

def _hostkey_algorithms():
    global _ALL_ALGORITHMS
    if _ALL_ALGORITHMS is None:
        from ssh2.session import LIBSSH2_METHOD_HOSTKEY, Session
        _ALL_ALGORITHMS = tuple(Session().supported_algs(LIBSSH2_METHOD_HOSTKEY))
    return _ALL_ALGORITHMS


class HostKeyCheck:
    """The known keys of one ``host``:``port``, gathered before the handshake.

    :meth:`hostkey_methods` orders the handshake's host key algorithms so the
    known key types come first; :meth:`verify` checks the key the server
    offered and applies the policy.
    """

    __slots__ = ("host", "port", "policy", "files", "name", "keys", "revoked", "authorities",
                 "unreadable", "_complete")

    def __init__(self, host, port, policy, files, alias=None):
        self.host = host
        self.port = port
        self.policy = policy
        self.files = files
        # OpenSSH's HostKeyAlias: looked up and recorded as given, without a port.
        self.name = alias or lookup_name(host, port)
        self._gather()
        if self.unreadable:
            self._report_unreadable()

    def _gather(self, hashed=False):
        # Hashed lines cost an HMAC each: they are searched only when the plain and
        # pattern lines know no key for the host, or when the offered key is not among
        # those (verify). Revocations, hashed or not, are always gathered.
        keys = []
        revoked = []
        authorities = []
        unreadable = []
        complete = True
        for path in self.files:
            parsed = load_known_hosts(path)
            if parsed.unreadable:
                unreadable.append((path, parsed.unreadable))
            found = parsed.match_unhashed(self.name)
            if hashed:
                found += parsed.match_hashed(self.name)
            elif parsed.has_hashed:
                complete = False
            for entry in found:
                (keys if entry.marker is None else revoked if entry.marker == REVOKED
                 else authorities).append(entry)
        self.keys = keys
        self.revoked = revoked
        self.authorities = authorities
        self.unreadable = unreadable
        self._complete = complete
        if not keys and not complete:
            self._gather(hashed=True)

    def _report_unreadable(self):
        # A file that cannot be read may hold this host's key or a @revoked line for the key
        # it will offer: "strict" cannot vouch for the host; the other policies go on as if
        # the file were empty, saying so once per file (later hosts at DEBUG).
        described = ", ".join("%s (%s)" % pair for pair in self.unreadable)
        if self.policy == STRICT:
            exc = HostKeyError("Host key verification failed for host %s:%s - known_hosts file "
                               "%s cannot be read; policy 'strict' refuses to connect",
                               self.host, self.port, described, host=self.host, port=self.port)
            exc.reason = "unreadable"
            exc.fingerprint = exc.key_type = None
            exc.known_fingerprints = []
            exc.locations = [path for path, _ in self.unreadable]
            raise exc
        new = [path for path, _ in self.unreadable if path not in _WARNED_UNREADABLE]
        _WARNED_UNREADABLE.update(new)
        log = logger.warning if new else logger.debug
        log("[%s] known_hosts file %s cannot be read: checked as if empty under policy %r%s",
            self.host, described, self.policy,
            "; other hosts are logged at DEBUG" if new else "")

    def hostkey_methods(self):
        """Host key algorithm preference (a comma list) putting known types first, or None.

        Never a certificate algorithm first, whatever ``@cert-authority`` lines match:
        libssh2 would pick it and fail the handshake instead of falling back to the plain key.
        """
        if not self.keys:
            return None
        preferred = []
        for entry in self.keys:
            for algorithm in _ALGORITHMS.get(entry.keytype, (entry.keytype,)):
                if algorithm not in preferred:
                    preferred.append(algorithm)
        supported = _hostkey_algorithms()
        ordered = [name for name in preferred if name in supported]
        if not ordered:
            return None
        return ",".join(ordered + [name for name in supported if name not in ordered])

    def verify(self, session):
        """Check the host key of the handshaken ``session``; raises :class:`HostKeyError`."""
        blob = session.hostkey()[0]
        for entry in self.revoked:
            if entry.blob == blob:
                raise self._error("revoked", blob, [entry],
                                  "the offered %s key %s is marked @revoked at %s", key_type(blob),
                                  fingerprint(blob), entry.location)
        for entry in self.keys:
            if entry.blob == blob:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("[%s] host key %s matches %s", self.host, fingerprint(blob),
                                 entry.location)
                return
        if not self._complete:
            self._gather(hashed=True)
            return self.verify(_Offered(blob))
        if self.keys:
            offered = key_type(blob)
            same_type = [entry for entry in self.keys if entry.keytype == offered]
            detail = "" if same_type else \
                " (the server offered no key of a known type: possible downgrade)"
            raise self._error(
                "changed", blob, self.keys,
                "the host key has changed - possible man-in-the-middle attack%s - offered %s "
                "key %s, known: %s", detail, offered, fingerprint(blob),
                ", ".join("%s %s at %s" % (entry.keytype, fingerprint(entry.blob),
                                           entry.location) for entry in self.keys))
        self._unknown(blob)

    def _unknown(self, blob):
        if self.policy == STRICT:
            raise self._error("unknown", blob, [],
                              "no known host key (policy 'strict') - offered %s key %s; "
                              "searched %s", key_type(blob), fingerprint(blob),
                              ", ".join(self.files) or "no known_hosts file")
        if self.policy == ACCEPT_NEW:
            # Another connection may have recorded this host since the handshake began.
            self._gather()
            # Re-verify only on a new fact: with an unrelated @revoked line alone it would
            # come straight back here, forever.
            if self.keys or any(entry.blob == blob for entry in self.revoked):
                return self.verify(_Offered(blob))
            self._warn_authorities(blob)
            if not self.files:
                logger.info("[%s] accepted unknown host key %s for %s (no known_hosts file "
                            "to record it in)", self.host, _Key(blob), self.name)
                return None
            path = self.files[0]
            try:
                load_known_hosts(path).add(self.name, blob)
            except OSError as exc:
                logger.warning("[%s] accepted host key %s %s but could not record it in %s: %s",
                               self.host, key_type(blob), fingerprint(blob), path, exc)
                return None
            logger.info("[%s] recorded new host key %s for %s in %s", self.host, _Key(blob),
                        self.name, path)
            return None
        self._warn_authorities(blob)
        logger.info("[%s] accepted unknown host key %s for %s (not recorded; policy %r)",
                    self.host, _Key(blob), self.name, self.policy)
        return None

    def _authorities_note(self):
        return "@cert-authority %s for %s not used (%s)" % (
            ", ".join(entry.location for entry in self.authorities), self.name, _CA_UNUSED)

    def _warn_authorities(self, blob):
        if not self.authorities:
            return
        # A user with a CA line expects the host to be verified; it is not, so say so loudly,
        # once per CA line: a wildcard line can cover thousands of hosts of one run.
        new = [entry.location for entry in self.authorities
               if entry.location not in _WARNED_AUTHORITIES]
        _WARNED_AUTHORITIES.update(new)
        log = logger.warning if new else logger.debug
        log("[%s] accepting host key %s without certificate verification under policy %r: "
            "%s%s", self.host, _Key(blob), self.policy, self._authorities_note(),
            "; other hosts these lines match are logged at DEBUG" if new else "")

    def _error(self, reason, blob, entries, detail, *args):
        if self.authorities and reason != "revoked":
            detail += "; %s"
            args += (self._authorities_note(),)
        exc = HostKeyError("Host key verification failed for host %s:%s - " + detail,
                           self.host, self.port, *args, host=self.host, port=self.port)
        exc.reason = reason
        exc.fingerprint = fingerprint(blob)
        exc.key_type = key_type(blob)
        exc.known_fingerprints = [fingerprint(entry.blob) for entry in entries]
        exc.locations = [entry.location for entry in entries]
        return exc


class _Key:
    """Formats as "type fingerprint" only when a log record is emitted."""

    __slots__ = ("blob",)

    def __init__(self, blob):
        self.blob = blob

    def __str__(self):
        return "%s %s" % (key_type(self.blob), fingerprint(self.blob))


class _Offered:
    """Stands in for a session whose host key is already known."""

    __slots__ = ("blob",)

    def __init__(self, blob):
        self.blob = blob

    def hostkey(self):
        return self.blob, 0


def prepare(host, port, policy, known_hosts, alias=None):
    """A :class:`HostKeyCheck` for ``host``:``port``, or None when ``policy`` is ``"off"``.

    ``policy`` and ``known_hosts`` are the client values (None: the defaults); ``alias``
    (ssh_config ``HostKeyAlias``) is the name to look up instead of ``host``:``port``.
    """
    policy = validate_policy(policy)
    if policy == OFF:
        return None
    return HostKeyCheck(host, port, policy, known_hosts_files(known_hosts), alias)
