"""Recursive downloads: a remote directory tree copied into a local directory, safely.

Every name in a remote directory listing comes from the server and is untrusted. A name is
written locally only if it is one plain path component: not empty, no ``/`` (nor the local
``os.sep``/``os.altsep``), no NUL, not ``.`` or ``..``, not absolute or drive-relative.
Other entries are skipped (the rest of the tree still downloads) and reported together at the
end by :class:`pssh.exceptions.UnsafeRemotePathError`. ``.`` and ``..`` listed as directories
are the usual self/parent entries and are ignored silently.

Names that do not decode with the transfer's encoding are kept byte for byte
(``surrogateescape``): on POSIX the local file gets the same bytes as its remote name.

Local side (defence in depth): every directory the walk enters must be a real directory (not
a symbolic link, whoever made it) whose real path is its parent's real path plus its name,
starting from the real path of the local target; a file is only written into such a
directory. Nothing is ever written through a local link.

Remote symbolic links: a link whose SFTP ``realpath`` lies outside the real path of the tree
being copied is skipped (logged at WARNING); a link to a file inside the tree is downloaded as
a file; links to directories are not followed.

Bounds: a listing may hold at most :data:`MAX_DIRECTORY_ENTRIES` entries and
:data:`MAX_DIRECTORY_NAME_BYTES` bytes of names, and each reply from the server must come
within the client's ``timeout`` (as every SFTP call); the tree may be at most
:data:`MAX_DEPTH` directories deep. Past a bound the download fails with an
:class:`SFTPIOError` naming host and directory (a listing) or an
:class:`UnsafeRemotePathError` (the depth).
"""
import logging
import os
import posixpath
import stat as stat_mod

from ssh2.exceptions import SSH2Error

from pssh.core.hub import DeadlineExceeded, WaiterClosed
from pssh.transfer.sftp import EAGAIN, Failed, code_of, local_error, encode_path
from pssh.exceptions import SFTPIOError, UnsafeRemotePathError

__all__ = ["MAX_DIRECTORY_ENTRIES", "MAX_DIRECTORY_NAME_BYTES", "MAX_DEPTH", "unsafe_name",
           "list_directory", "TreeDownload"]

logger = logging.getLogger(__name__)

MAX_DIRECTORY_ENTRIES = 1000000
MAX_DIRECTORY_NAME_BYTES = 128 * 1024 * 1024
MAX_DEPTH = 256
# The longest entry name read; a longer one fails the listing (libssh2 reports it).
NAME_BUFFER = 4096
REALPATH_BUFFER = 4096
_SEPARATORS = tuple(sep for sep in {"/", os.sep, os.altsep} if sep)


def is_dir(attrs):
    return stat_mod.S_ISDIR(attrs.permissions)


def unsafe_name(raw, name):
    """Why remote entry name ``raw`` (decoded: ``name``) must not become a local path
    component, or None if it may."""
    if not raw or not name:
        return "empty name"
    if b"\0" in raw or "\0" in name:
        return "contains NUL"
    if b"/" in raw:
        return "contains '/'"
    for sep in _SEPARATORS:
        if sep in name:
            return "contains %r" % sep
    if name in (".", ".."):
        return "is %r" % name
    if os.path.isabs(name) or os.path.splitdrive(name)[0]:
        return "absolute path"
    return None


def list_directory(ops, sftp, path, encoding="utf-8"):
    """Remote directory ``path``: ``([(name, attrs)], [(name, reason)])``, the entries safe
    to use as one local path component and the rejected ones (see :func:`unsafe_name`).

    Bounded by :data:`MAX_DIRECTORY_ENTRIES`, :data:`MAX_DIRECTORY_NAME_BYTES` and, per reply,
    the client's timeout; past a bound, or on any failure, :class:`SFTPIOError`.
    """
    try:
        handle = ops.call(sftp.opendir, encode_path(path, encoding), sftp=sftp)
    except (Failed, DeadlineExceeded, WaiterClosed) as failure:
        raise ops.wrap(SFTPIOError, "Listing directory", path, failure) from None
    try:
        listing = _read_listing(ops, sftp, handle, path, encoding)
    except BaseException as exc:
        ops.abandon(handle, exc)
        if isinstance(exc, (Failed, DeadlineExceeded, WaiterClosed)):
            raise ops.wrap(SFTPIOError, "Listing directory", path, exc) from None
        if isinstance(exc, SSH2Error):
            raise ops.wrap(SFTPIOError, "Listing directory", path,
                           Failed(code_of(exc), None, exc)) from None
        raise
    try:
        ops.call(handle.close, sftp=sftp)
    except (Failed, DeadlineExceeded, WaiterClosed) as failure:
        raise ops.wrap(SFTPIOError, "Listing directory", path, failure) from None
    return listing


def _read_listing(ops, sftp, handle, path, encoding):
    entries, rejected = [], []
    count = name_bytes = 0
    deadline = ops.deadline()
    try:
        while True:
            # ssh2-python's readdir() generator ends silently on errors and on an empty
            # name: call the step itself to see both.
            rc, raw, attrs = handle._readdir(NAME_BUFFER)
            if rc == EAGAIN:
                ops.waiter.wait(ops.session.block_directions(), deadline)
                continue
            if rc < 0:
                raise ops.data_failure(sftp, rc)
            if rc == 0 and not attrs.flags:
                # SSH_FX_EOF: libssh2 filled in nothing. (An empty name sent without any
                # attributes looks the same: it ends the listing there.)
                return entries, rejected
            deadline = ops.deadline()
            count += 1
            name_bytes += len(raw)
            if count > MAX_DIRECTORY_ENTRIES or name_bytes > MAX_DIRECTORY_NAME_BYTES:
                raise SFTPIOError(
                    "Listing directory %s on host %s failed - more than %s entries or %s "
                    "bytes of names", path, ops.host, MAX_DIRECTORY_ENTRIES,
                    MAX_DIRECTORY_NAME_BYTES, host=ops.host, port=ops.port, path=path)
            if raw in (b".", b"..") and is_dir(attrs):
                continue
            name = raw.decode(encoding, "surrogateescape")
            reason = unsafe_name(raw, name)
            if reason is None:
                entries.append((name, attrs))
            else:
                rejected.append((name, reason))
    finally:
        ops.settle()


class TreeDownload:
    """One recursive download: ``run(remote_dir, local_dir)`` walks the remote tree and calls
    ``fetch(remote_path, local_path, attrs)`` for every file to download."""

    def __init__(self, ops, sftp, encoding, fetch):
        self.ops = ops
        self.sftp = sftp
        self.encoding = encoding
        self.fetch = fetch
        self.rejected = []   # [(remote path, reason)]
        self._remote_root_real = None

    def run(self, remote_dir, local_dir):
        self._remote_root = remote_dir
        try:
            os.makedirs(local_dir, exist_ok=True)
        except OSError as exc:
            raise local_error(exc, self.ops.host, local_dir) from None
        self._walk(remote_dir, local_dir, os.path.realpath(local_dir), 0)
        if self.rejected:
            raise self._error("skipped %d unsafe remote entries" % len(self.rejected))

    def _error(self, what):
        shown = ", ".join("%r (%s)" % item for item in self.rejected[:20])
        more = len(self.rejected) - 20
        if more > 0:
            shown += " and %d more" % more
        host = self.ops.host
        return UnsafeRemotePathError(
            "Recursive download of %s from host %s %s: %s", self._remote_root, host, what,
            shown, host=host, port=self.ops.port, path=self._remote_root,
            rejected=list(self.rejected))

    def _walk(self, remote_dir, local_dir, local_real, depth):
        entries, rejected = list_directory(self.ops, self.sftp, remote_dir, self.encoding)
        # Joined as text: posixpath.join would drop the directory before an absolute name.
        self.rejected.extend((remote_dir.rstrip("/") + "/" + name, reason)
                             for name, reason in rejected)
        for name, attrs in sorted(entries, key=lambda entry: entry[0]):
            remote = posixpath.join(remote_dir, name)
            local = os.path.join(local_dir, name)
            if stat_mod.S_ISLNK(attrs.permissions):
                attrs = self._follow_link(remote)
                if attrs is None or is_dir(attrs):
                    continue  # dangling, outside the tree, or a directory: never followed
            if is_dir(attrs):
                if depth + 1 > MAX_DEPTH:
                    self.rejected.append((remote, "more than %d levels deep" % MAX_DEPTH))
                    raise self._error("stopped")
                child_real = self._enter(local, local_real, name, remote)
                if child_real is not None:
                    self._walk(remote, local, child_real, depth + 1)
            elif self._still_inside(local_dir, local_real, remote):
                self.fetch(remote, local, attrs)

    def _enter(self, local, parent_real, name, remote):
        """Create local directory ``local`` (or use the one there): its real path, or None
        (recorded as rejected) if it is not a plain directory right inside its parent."""
        try:
            try:
                os.mkdir(local)
            except FileExistsError:
                pass
            info = os.lstat(local)
        except OSError as exc:
            raise local_error(exc, self.ops.host, local) from None
        real = os.path.realpath(local)
        if not stat_mod.S_ISDIR(info.st_mode) or real != os.path.join(parent_real, name):
            self.rejected.append((remote, "local %s is not a plain directory inside the "
                                          "target" % local))
            return None
        return real

    def _still_inside(self, local_dir, local_real, remote):
        if os.path.realpath(local_dir) == local_real:
            return True
        self.rejected.append((remote, "local directory %s changed under the download"
                                      % local_dir))
        return False

    def _follow_link(self, remote):
        """Attributes of what link ``remote`` points to, or None if it dangles or resolves
        outside the tree being copied (then logged)."""
        ops, sftp = self.ops, self.sftp
        try:
            if self._remote_root_real is None:
                self._remote_root_real = self._realpath(self._remote_root)
            target = self._realpath(remote)
        except (Failed, DeadlineExceeded, WaiterClosed) as failure:
            if isinstance(failure, Failed) and failure.status is not None and not failure.lost:
                return None  # dangling (the server cannot resolve it)
            raise ops.wrap(SFTPIOError, "Resolving link", remote, failure) from None
        root = self._remote_root_real.rstrip("/")
        if not target.startswith(root + "/"):
            logger.warning("[%s] %s: symbolic link to %s, outside %s: not downloaded",
                           ops.host, remote, target, self._remote_root_real)
            return None
        return ops.lookup(sftp, remote, self.encoding)

    def _realpath(self, path):
        result = self.ops.call(self.sftp.realpath, encode_path(path, self.encoding),
                               REALPATH_BUFFER, sftp=self.sftp)
        if isinstance(result, bytes):
            result = result.decode(self.encoding, "surrogateescape")
        return result
