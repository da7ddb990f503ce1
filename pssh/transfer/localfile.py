"""Local side of file transfers: shared read-only sources for uploads, temporary targets for
downloads.

Uploads read the local file with ``pread`` through one descriptor that every transfer of the
same file running at the same time shares (the hosts of one parallel upload): one open file,
no per-host copy of its contents. Not ``mmap``: a file truncated while mapped kills the
process with SIGBUS on the next touch of the lost pages, and no mapping flag prevents that.
With ``pread`` a shrinking file is just a short read, which fails that host's transfer
(:meth:`LocalSource.check_sent`); a file that changes otherwise is caught after the upload
(:meth:`LocalSource.changed`).

Downloads are written to a temporary file next to the target (``.pssh-tmp-HHHHHHHH-XXXXXXXX``,
see :class:`TempTarget`) that is renamed over the target only after the byte count was
checked, so a failed download never leaves a truncated file under the final name.
"""
import hashlib
import os
import shutil
import stat as stat_mod
import tempfile
import weakref

__all__ = ["LocalSource", "open_source", "TempTarget", "download_mode"]

_SOURCES = weakref.WeakValueDictionary()
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class LocalSource:
    """An open local file to upload: ``fd`` (read with ``pread`` only, never its file
    position, so transfers can share it), ``size`` to send, and its metadata."""

    __slots__ = ("path", "fd", "size", "mode", "atime", "mtime", "_key", "_closer",
                 "__weakref__")

    def __init__(self, path, fd, st, size, key):
        self.path = path
        self.fd = fd
        self.size = size
        self.mode = stat_mod.S_IMODE(st.st_mode)
        self.atime = st.st_atime
        self.mtime = st.st_mtime
        self._key = key
        self._closer = weakref.finalize(self, os.close, fd)

    def close(self):
        self._closer()

    def changed(self):
        """True if the file on disk is no longer the one that was opened."""
        if self._key is None:
            return False
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != self._key

    def check_sent(self, sent, error_class, host, port, remote_path):
        """Raise ``error_class`` (naming the host and the local path) unless the upload loop
        sent all of the file and the file did not change meanwhile.

        The loops stop early only when a read returns end of file before ``size`` bytes: the
        file shrank while it was being sent.
        """
        if sent == self.size and not self.changed():
            return
        if sent != self.size:
            detail = "changed size during upload (%s of %s bytes could be read)" % (
                sent, self.size)
        else:
            detail = "changed during upload"
        raise error_class("Local file %s %s to host %s:%s", self.path, detail, host,
                          remote_path, host=host, port=port, path=self.path)


def open_source(path):
    """The :class:`LocalSource` of ``path``, shared with transfers of the same file in progress.

    Raises ``IsADirectoryError`` for directories and the usual OSErrors for missing or
    unreadable files. FIFOs and devices are read to the end first, into an anonymous
    temporary file (their size is only known then; the memory used stays bounded).
    """
    fd = os.open(path, os.O_RDONLY | _CLOEXEC)
    try:
        st = os.fstat(fd)
        if stat_mod.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "Is a directory", path)
        if not stat_mod.S_ISREG(st.st_mode):
            spooled_fd, size = _spool(fd)
            return LocalSource(path, spooled_fd, st, size, None)
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        source = _SOURCES.get(key)
        if source is None:
            # A descriptor of its own: the source closes it when its last user is gone.
            source = LocalSource(path, os.dup(fd), st, st.st_size, key)
            _SOURCES[key] = source
        return source
    finally:
        os.close(fd)


def _spool(fd):
    """A descriptor of an anonymous temporary file holding what ``fd`` gives until its end,
    and that size."""
    with tempfile.TemporaryFile() as spool:
        with open(fd, "rb", closefd=False) as stream:
            shutil.copyfileobj(stream, spool, 1 << 20)
        spool.flush()
        return os.dup(spool.fileno()), spool.tell()


# -- downloads --------------------------------------------------------------------------------

def _process_umask():
    """The process umask, read without changing it where the system allows.

    ``os.umask`` can only be read by setting it, and setting it twice races with threads that
    create files in between; ``/proc/self/status`` (Linux 4.7+) shows it directly and is read
    at every download, so later changes by the application count. Elsewhere it is set and
    restored once, at the first download, and kept.
    """
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    if not _FALLBACK_UMASK:
        mask = os.umask(0o022)
        os.umask(mask)
        _FALLBACK_UMASK.append(mask)
    return _FALLBACK_UMASK[0]


_FALLBACK_UMASK = []  # where /proc cannot tell: read once, on first need


def download_mode(remote_mode):
    """Local permission bits for a downloaded file whose remote mode is ``remote_mode``.

    As OpenSSH's ``scp`` and ``sftp`` without ``-p``: the remote permission bits less the
    process umask. Setuid, setgid and sticky bits are never kept.
    """
    return stat_mod.S_IMODE(remote_mode) & 0o777 & ~_process_umask()


class TempTarget:
    """A temporary file next to ``path`` that becomes ``path`` on :meth:`commit`.

    Use as a context manager: leaving the block without a commit removes the temporary file.
    Missing parent directories of ``path`` are created.

    The temporary name is ``.pssh-tmp-HHHHHHHH-XXXXXXXX``: ``HHHHHHHH`` the first 8 hex digits
    of the SHA-256 of the target's file name (so a leftover can be matched to its target and
    the name stays short whatever the target's length: a name up to the system limit can be
    downloaded), ``XXXXXXXX`` random.
    """

    def __init__(self, path):
        self.path = path
        parent, name = os.path.split(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
        self.fd, self.tmp_path = tempfile.mkstemp(prefix=".pssh-tmp-%s-" % (digest,),
                                                  dir=parent or ".")
        self._done = False

    def commit(self, mode=None, times=None):
        """Apply ``mode`` (a remote mode, see :func:`download_mode`) and ``times`` ((atime,
        mtime)) through the open descriptor, then rename over the target.

        Through the descriptor, not the name: nothing can swap the temporary file for
        something else between the writes and the metadata.
        """
        if mode is not None:
            os.fchmod(self.fd, download_mode(mode))
        if times is not None:
            os.utime(self.fd, times)
        os.close(self.fd)
        self.fd = -1
        os.replace(self.tmp_path, self.path)
        self._done = True

    def discard(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if not self._done:
            self._done = True
            try:
                os.unlink(self.tmp_path)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.discard()
