"""A hostile SFTP subsystem: a filter between the client and the real OpenSSH sftp-server.

sshd runs it as the SFTP subsystem (see :func:`subsystem_config`). It starts the real
``sftp-server``, passes packets through in both directions and, as its JSON behaviour file
says, lies about directories:

``inject``
    ``[{"name": ..., "type": "file" | "dir"}]``: extra entries added to the first reply of
    each directory listing (names may be anything JSON can hold: ``../x``, ``/abs``, ``""``,
    ``"x\\u0000y"``). Their attributes say only the type (mode 0644 / 0755, no size).
``only_in``
    list of directory paths (as the client sends them in OPENDIR): inject only there.
``endless``
    answer every READDIR of a directory itself with another batch of new names, never
    ``SSH_FX_EOF``: a listing that never ends.
``stall_readdir``
    never answer READDIR at all.
``strip_permissions``
    attribute replies (STAT, LSTAT, FSTAT) leave the permissions out, as a server may.
``loop``
    a name: every listing gains a directory of that name, and that name is dropped from every
    path the client sends, so the directory appears as its own child, forever.

Usage::

    extra = sftp_filter.subsystem_config(path, inject=[{"name": "../x", "type": "file"}])
    server = make_sshd(extra_config=extra)
    sftp_filter.write_behaviour(path, endless=True)   # from the next SFTP session on

The filter is bounded: it exits as soon as the client closes its side (or the real server
exits), and it only uses the standard library, since sshd runs it as the login user.
"""
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import threading

# SFTP v3 packet types (draft-ietf-secsh-filexfer-02)
OPEN, LSTAT, OPENDIR, READDIR, REALPATH, STAT = 3, 7, 11, 12, 16, 17
STATUS, HANDLE, NAME, ATTRS = 101, 102, 104, 105
PATH_REQUESTS = (OPEN, LSTAT, OPENDIR, REALPATH, STAT)
ATTR_PERMISSIONS = 0x4
ENDLESS_BATCH = 100

SFTP_SERVER_CANDIDATES = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                          "/usr/libexec/sftp-server", "/usr/lib/ssh/sftp-server",
                          "/usr/lib/misc/sftp-server")


# -- helpers for tests -------------------------------------------------------------------------

def find_sftp_server():
    """Path of OpenSSH's ``sftp-server`` binary (``$PSSH_SFTP_SERVER`` first), or None."""
    for path in (os.environ.get("PSSH_SFTP_SERVER"),) + SFTP_SERVER_CANDIDATES:
        if path and os.access(path, os.X_OK):
            return path
    found = shutil.which("sftp-server")
    if found:
        return found
    # Under the prefix sshd was installed in (e.g. /usr/local or a Homebrew prefix).
    prefix = os.path.dirname(os.path.dirname(shutil.which("sshd") or "/usr/sbin/sshd"))
    for sub in ("lib/openssh", "libexec/openssh", "libexec"):
        path = os.path.join(prefix, sub, "sftp-server")
        if os.access(path, os.X_OK):
            return path
    return None


def _world_usable(path):
    """True if any account can run ``path`` (sshd starts the filter as the login user)."""
    path = os.path.realpath(path)
    if not os.stat(path).st_mode & stat.S_IXOTH:
        return False
    parent = os.path.dirname(path)
    while parent != os.path.dirname(parent):
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return False
        parent = os.path.dirname(parent)
    return True


def server_python():
    """A Python 3 interpreter the server's login user can run."""
    for path in (sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"):
        if path and os.path.exists(path) and _world_usable(path):
            return os.path.realpath(path)
    raise RuntimeError("no Python interpreter usable by the sshd login user")


def write_behaviour(behaviour_file, **behaviour):
    """Set what the filter does; read at the start of each SFTP session."""
    server = find_sftp_server()
    if server is None:
        raise RuntimeError("OpenSSH sftp-server not found (set PSSH_SFTP_SERVER)")
    behaviour.setdefault("sftp_server", server)
    with open(behaviour_file + ".tmp", "w") as fh:
        json.dump(behaviour, fh)
    os.chmod(behaviour_file + ".tmp", 0o644)
    os.replace(behaviour_file + ".tmp", behaviour_file)


def subsystem_config(behaviour_file, **behaviour):
    """Write ``behaviour`` to ``behaviour_file`` and return the ``extra_config`` for
    ``make_sshd`` that runs this filter as the SFTP subsystem."""
    write_behaviour(behaviour_file, **behaviour)
    return {"Subsystem": "sftp %s %s %s" % (server_python(), os.path.abspath(__file__),
                                            os.path.abspath(behaviour_file))}


# -- packets -----------------------------------------------------------------------------------

def read_packet(stream):
    """(type, payload) of the next packet, or None at end of stream."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    body = stream.read(struct.unpack(">I", head)[0])
    if not body:
        return None
    return body[0], body[1:]


def packet(kind, payload):
    return struct.pack(">IB", len(payload) + 1, kind) + payload


def sftp_string(data):
    return struct.pack(">I", len(data)) + data


def take_string(payload, offset):
    size = struct.unpack_from(">I", payload, offset)[0]
    start = offset + 4
    return payload[start:start + size], start + size


def entry(name, is_dir):
    """One NAME entry: filename, longname, attributes (permissions only)."""
    mode = (stat.S_IFDIR | 0o755) if is_dir else (stat.S_IFREG | 0o644)
    return (sftp_string(name) + sftp_string(b"?" * 10 + b" " + name)
            + struct.pack(">II", ATTR_PERMISSIONS, mode))


def with_entries(payload, extra):
    """A NAME reply ``payload`` (id, count, entries) with the ``extra`` entries added."""
    request_id, count = struct.unpack_from(">II", payload)
    return struct.pack(">II", request_id, count + len(extra)) + payload[8:] + b"".join(extra)


# -- the filter --------------------------------------------------------------------------------

class Filter:
    def __init__(self, behaviour):
        self.inject = [entry(item["name"].encode("utf-8", "surrogateescape"),
                             item.get("type") == "dir") for item in behaviour.get("inject", ())]
        self.only_in = [p.encode() for p in behaviour.get("only_in", ())] or None
        self.endless = behaviour.get("endless", False)
        self.stall_readdir = behaviour.get("stall_readdir", False)
        self.loop = behaviour.get("loop", "").encode() or None
        self.strip_permissions = behaviour.get("strip_permissions", False)
        if self.loop:
            self.inject.append(entry(self.loop, True))
        self.opendir_paths = {}       # request id -> directory path
        self.handle_paths = {}        # directory handle -> path
        self.readdir_handles = {}     # request id -> directory handle
        self.injected = set()         # handles whose listing got the extra entries
        self.counter = 0
        self.out_lock = threading.Lock()
        self.out = sys.stdout.buffer

    def send_client(self, data):
        with self.out_lock:
            self.out.write(data)
            self.out.flush()

    def from_client(self, kind, payload):
        """The request to forward to the real server, or None if the filter answered it."""
        if kind in PATH_REQUESTS and len(payload) >= 8:
            request_id = struct.unpack_from(">I", payload)[0]
            path, end = take_string(payload, 4)
            if self.loop:
                path = b"/".join(p for p in path.split(b"/") if p != self.loop) or b"."
                payload = struct.pack(">I", request_id) + sftp_string(path) + payload[end:]
            if kind == OPENDIR:
                self.opendir_paths[request_id] = path
        elif kind == READDIR:
            request_id = struct.unpack_from(">I", payload)[0]
            handle = take_string(payload, 4)[0]
            if self.stall_readdir:
                return None
            if self.endless:
                self.send_client(packet(NAME, self.endless_batch(request_id)))
                return None
            self.readdir_handles[request_id] = handle
        return packet(kind, payload)

    def endless_batch(self, request_id):
        names = []
        for _ in range(ENDLESS_BATCH):
            self.counter += 1
            names.append(entry(b"endless-%09d" % self.counter, False))
        return struct.pack(">II", request_id, len(names)) + b"".join(names)

    def from_server(self, kind, payload):
        if len(payload) < 4:
            return packet(kind, payload)
        request_id = struct.unpack_from(">I", payload)[0]
        if kind == HANDLE and request_id in self.opendir_paths:
            handle = take_string(payload, 4)[0]
            self.handle_paths[handle] = self.opendir_paths.pop(request_id)
            self.injected.discard(handle)  # the server reuses handle strings
        if kind == ATTRS and self.strip_permissions:
            payload = without_permissions(payload)
        handle = self.readdir_handles.pop(request_id, None)
        if kind == NAME and handle is not None and handle not in self.injected:
            self.injected.add(handle)
            if self.only_in is None or self.handle_paths.get(handle) in self.only_in:
                payload = with_entries(payload, self.inject)
        return packet(kind, payload)


def without_permissions(payload):
    """An ATTRS reply (request id, flags, size?, uid+gid?, permissions?, ...) without the
    permissions field and its flag."""
    flags = struct.unpack_from(">I", payload, 4)[0]
    if not flags & ATTR_PERMISSIONS:
        return payload
    offset = 8 + (8 if flags & 0x1 else 0) + (8 if flags & 0x2 else 0)
    return (payload[:4] + struct.pack(">I", flags & ~ATTR_PERMISSIONS) + payload[8:offset]
            + payload[offset + 4:])


def _pump(source, handle, sink, finished):
    try:
        while True:
            item = read_packet(source)
            if item is None:
                break
            data = handle(*item)
            if data is not None:
                sink(data)
    except (OSError, ValueError, struct.error):
        pass
    finally:
        finished.set()


def relay(sftp_server, from_client, from_server, to_client=None):
    """Run the real ``sftp_server`` behind this process's stdin/stdout, passing each client
    packet through ``from_client(kind, payload)`` and each server packet through
    ``from_server`` (a returned packet is forwarded, None drops it); ``to_client(data)``
    replaces the plain write to stdout. Returns when either side went away, server gone."""
    server = subprocess.Popen([sftp_server], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    client_out = sys.stdout.buffer

    def to_server(data):
        server.stdin.write(data)
        server.stdin.flush()

    def write_client(data):
        client_out.write(data)
        client_out.flush()

    finished = threading.Event()
    for args in ((sys.stdin.buffer, from_client, to_server, finished),
                 (server.stdout, from_server, to_client or write_client, finished)):
        threading.Thread(target=_pump, args=args, daemon=True).start()
    finished.wait()
    server.kill()
    server.wait()

def main(behaviour_file):
    with open(behaviour_file) as fh:
        behaviour = json.load(fh)
    flt = Filter(behaviour)
    relay(behaviour["sftp_server"], flt.from_client, flt.from_server, flt.send_client)
    os._exit(0)

if __name__ == "__main__":
    main(sys.argv[1])
