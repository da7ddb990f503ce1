"""SFTP and SCP transfers of one SSHClient (methods mixed into :class:`pssh.single.SSHClient`).

Every method runs on the gevent hub like the rest of the client: libssh2 is driven
non-blocking and waits go through the client's socket waiter. The data loops are the backend's
(``sftp_write_file``, ``sftp_read_file``, ``scp_send_file``, ``scp_recv_file``).

Integrity: byte counts are checked; downloads go to a temporary file renamed into place only
when complete; uploads keep the local file's mode (SFTP sets it on the remote file, SCP sends
it with the times). ``progress(host, path, bytes_done, bytes_total)``, when given, is called
about every MiB of each file and once when the file is complete (``path`` is the remote path).

``client.timeout``, when set, bounds each metadata operation and every wait for the socket
during data transfer (an inactivity limit: a transfer may take longer as long as it moves).
"""
import contextlib
import os
import posixpath

from gevent.lock import Semaphore

from pssh.transfer import scp as _scp
from pssh.exceptions import UnsafeRemotePathError
from pssh.transfer.remote_tree import TreeDownload, is_dir, unsafe_name
from pssh.transfer.sftp import Ops, session_broken

__all__ = ["TransferMixin"]


class TransferMixin:
    """copy_file, copy_remote_file, scp_send, scp_recv, sftp_put, sftp_get, mkdir."""

    _sftp_cached = None
    _sftp_lock = None

    # -- SFTP sessions -----------------------------------------------------------------------

    def _ops(self):
        return Ops(self)

    def _make_sftp(self):
        """A new SFTP session (``ssh2.sftp.SFTP``) on this client's connection.

        The copy methods share one session per client (created on first use, serialised
        between greenlets); pass ``sftp=`` to use one of your own instead.
        """
        return self._ops().make_sftp()

    @contextlib.contextmanager
    def _sftp_session(self, sftp=None):
        if sftp is not None:
            yield sftp
            return
        if self._sftp_lock is None:
            self._sftp_lock = Semaphore()
        with self._sftp_lock:
            if self._sftp_cached is None:
                self._sftp_cached = self._make_sftp()
            try:
                yield self._sftp_cached
            except BaseException as exc:
                if session_broken(exc):
                    # The session may be mid-request: never reuse it.
                    self._sftp_cached = None
                raise

    # -- 2.x building blocks -----------------------------------------------------------------

    def mkdir(self, sftp, directory):
        """Create remote ``directory`` and every missing parent (mode 0755), like ``mkdir -p``.

        Relative paths are relative to the login directory.
        """
        self._ops().mkdir_p(sftp, directory)

    def _mkdir(self, sftp, directory):
        """2.x internal name of :meth:`mkdir`."""
        self.mkdir(sftp, directory)

    def _copy_remote_dir(self, file_list, remote_dir, local_dir, sftp, encoding="utf-8"):
        """2.x internal: download the entries ``file_list`` (names, bytes or text, as listed
        in ``remote_dir``) into ``local_dir``, directories recursively, through ``sftp``.

        ``.`` and ``..`` are skipped; any other name that is not one plain path component is
        skipped too and reported afterwards by :class:`UnsafeRemotePathError`.
        """
        rejected = []
        for entry in file_list:
            raw = entry if isinstance(entry, bytes) else entry.encode(encoding)
            name = entry.decode(encoding) if isinstance(entry, bytes) else entry
            if name in (".", ".."):
                continue
            reason = unsafe_name(raw, name)
            if reason is not None:
                rejected.append((remote_dir.rstrip("/") + "/" + name, reason))
                continue
            self.copy_remote_file(posixpath.join(remote_dir, name),
                                  os.path.join(local_dir, name), recurse=True, sftp=sftp,
                                  encoding=encoding)
        if rejected:
            raise UnsafeRemotePathError(
                "Download of %s from host %s skipped unsafe remote entries: %s", remote_dir,
                self.host, ", ".join("%r (%s)" % item for item in rejected),
                host=self.host, port=self.port, path=remote_dir, rejected=rejected)

    def sftp_put(self, sftp, local_file, remote_file):
        """Upload one local file through ``sftp`` (the remote directory must exist)."""
        self._ops().upload(sftp, local_file, remote_file, mkdir_parents=False)

    def sftp_get(self, sftp, remote_file, local_file):
        """Download one remote file through ``sftp``."""
        self._ops().download(sftp, remote_file, local_file)

    # -- SFTP --------------------------------------------------------------------------------

    def copy_file(self, local_file, remote_file, recurse=False, sftp=None, progress=None):
        """Upload ``local_file`` to ``remote_file`` with SFTP.

        Missing remote parent directories are created; a ``remote_file`` ending in ``/`` or
        naming an existing remote directory receives the file under its own name. The remote
        file gets the local file's permission bits. A directory needs ``recurse=True`` (else
        ``ValueError``); it is copied with its whole tree, empty directories included, into
        ``remote_file``. Errors: :class:`SFTPError` (no SFTP session), :class:`SFTPIOError`
        (remote open/write/mkdir, connection lost; ``host``, ``path`` and ``cause`` set),
        ``OSError`` for local files (its message names the host).
        """
        if os.path.isdir(local_file):
            if not recurse:
                raise ValueError("Local path %s is a directory: use recurse=True" % local_file)
            with self._sftp_session(sftp) as session:
                return self._copy_dir_up(session, local_file, remote_file, progress)
        with self._sftp_session(sftp) as session:
            self._ops().upload(session, local_file, remote_file, progress)

    def _copy_dir_up(self, sftp, local_dir, remote_dir, progress, send=None):
        ops = self._ops()
        remote_dir = remote_dir.rstrip("/") or "/"
        ops.mkdir_p(sftp, remote_dir)
        for root, dirs, files in os.walk(local_dir, onerror=_raise):
            rel = os.path.relpath(root, local_dir)
            base = remote_dir if rel == "." else posixpath.join(remote_dir, *rel.split(os.sep))
            for name in sorted(dirs):
                path = os.path.join(root, name)
                mode = os.stat(path).st_mode & 0o777 | 0o700
                ops.mkdir_one(sftp, posixpath.join(base, name), mode)
            for name in sorted(files):
                local = os.path.join(root, name)
                remote = posixpath.join(base, name)
                if send is None:
                    ops.upload(sftp, local, remote, progress, mkdir_parents=False)
                else:
                    send(local, remote)

    def copy_remote_file(self, remote_file, local_file, recurse=False, sftp=None,
                         encoding="utf-8", progress=None):
        """Download ``remote_file`` to ``local_file`` with SFTP.

        Local parent directories are created; a ``local_file`` ending in ``/`` or naming an
        existing local directory receives the file under its remote name. The data goes to a
        temporary file next to the target, renamed into place when complete; the local file
        gets the remote permission bits. A remote directory needs ``recurse=True`` (else
        ``ValueError``). ``encoding`` encodes remote paths and decodes remote directory
        listings. A missing remote file raises :class:`SFTPIOError`.

        Recursive downloads never write outside ``local_file`` (see :mod:`pssh.transfer.remote_tree`):
        remote names that are not one plain path component are skipped and, once the rest
        of the tree is downloaded, reported by :class:`UnsafeRemotePathError` (``rejected``
        lists them); remote links resolving outside the tree are skipped, links to
        directories are not followed; listings and depth are bounded.
        """
        ops = self._ops()
        with self._sftp_session(sftp) as session:
            attrs = ops.lookup(session, remote_file, encoding)
            if attrs is not None and is_dir(attrs):
                if not recurse:
                    raise ValueError("Remote path %s on host %s is a directory: use "
                                     "recurse=True" % (remote_file, self.host))
                return self._copy_dir_down(session, remote_file, local_file, encoding,
                                           progress)
            local_file = _local_target(local_file, remote_file)
            ops.download(session, remote_file, local_file, progress, encoding, attrs)

    def _copy_dir_down(self, sftp, remote_dir, local_dir, encoding, progress, recv=None):
        ops = self._ops()
        if recv is None:
            def fetch(remote, local, attrs):
                ops.download(sftp, remote, local, progress, encoding, attrs)
        else:
            def fetch(remote, local, attrs):
                recv(remote, local)
        TreeDownload(ops, sftp, encoding, fetch).run(remote_dir, local_dir)

    # -- SCP ---------------------------------------------------------------------------------

    def scp_send(self, local_file, remote_file, recurse=False, sftp=None, progress=None):
        """Upload ``local_file`` to ``remote_file`` with SCP, keeping mode, mtime and atime.

        A ``remote_file`` ending in ``/`` receives the file under its local name. Directories
        need ``recurse=True`` (else ``ValueError``); their remote directories are created
        with SFTP. A missing remote parent directory is created with SFTP when the server
        refuses the file. Errors: :class:`SCPError` naming host and path.
        """
        ops = self._ops()

        def sftp_session():
            return self._sftp_session(sftp)

        if os.path.isdir(local_file):
            if not recurse:
                raise ValueError("Local path %s is a directory: use recurse=True" % local_file)

            def send(local, remote):
                _scp.send(ops, local, remote, progress, None)
            with self._sftp_session(sftp) as session:
                self._copy_dir_up(session, local_file, remote_file, progress, send)
            return
        _scp.send(ops, local_file, remote_file, progress, sftp_session)

    def scp_recv(self, remote_file, local_file, recurse=False, sftp=None, encoding="utf-8",
                 progress=None):
        """Download ``remote_file`` to ``local_file`` with SCP, keeping mode, mtime and atime.

        A ``local_file`` ending in ``/`` or naming an existing directory receives the file
        under its remote name; data goes through a temporary file renamed when complete. With
        ``recurse=True`` a remote directory is listed with SFTP and every file fetched with
        SCP, with the safeguards of :meth:`copy_remote_file` (unsafe names:
        :class:`UnsafeRemotePathError`, also an :class:`SCPError`). Errors:
        :class:`SCPError` naming host and path.
        """
        ops = self._ops()
        if recurse:
            with self._sftp_session(sftp) as session:
                attrs = ops.lookup(session, remote_file, encoding)
                if attrs is not None and is_dir(attrs):
                    def recv(remote, local):
                        _scp.recv(ops, remote, local, progress, encoding)
                    return self._copy_dir_down(session, remote_file, local_file, encoding,
                                               progress, recv)
        _scp.recv(ops, remote_file, _local_target(local_file, remote_file), progress, encoding)


def _local_target(local_file, remote_file):
    if local_file.endswith(os.sep) or os.path.isdir(local_file):
        return os.path.join(local_file, posixpath.basename(remote_file.rstrip("/")))
    return local_file


def _raise(exc):
    raise exc

