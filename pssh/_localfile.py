"""Local side of file transfers: shared read-only sources for uploads, temporary targets for
downloads.

Uploads map the local file once with ``mmap`` and share that mapping between every transfer of
the same file that runs at the same time (the hosts of one parallel upload): the data goes from
the page cache to libssh2 with no read per host. Two consequences, documented in the README:
truncating a file while it is being uploaded is an error (checked after every upload; on Linux a
read past the new end raises SIGBUS), and memory use is the page cache, not a copy per host.

Downloads are written to a temporary file next to the target (``.NAME.pssh-tmp-XXXX``) that is
renamed over the target only after the byte count was checked, so a failed download never leaves
a truncated file under the final name.
"""
import mmap
import os
import stat as stat_mod
import tempfile
import weakref

__all__ = ["LocalSource", "open_source", "TempTarget"]

_SOURCES = weakref.WeakValueDictionary()


class LocalSource:
    """A local file's contents (``data``: an mmap or bytes) and its metadata."""

    __slots__ = ("path", "size", "mode", "atime", "mtime", "data", "_key", "__weakref__")

    def __init__(self, path, st, data, key):
        self.path = path
        self.size = len(data)
        self.mode = stat_mod.S_IMODE(st.st_mode)
        self.atime = st.st_atime
        self.mtime = st.st_mtime
        self.data = data
        self._key = key

    def changed(self):
        """True if the file on disk is no longer the one that was mapped."""
        if self._key is None:
            return False
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != self._key


def open_source(path):
    """The :class:`LocalSource` of ``path``, shared with transfers of the same file in progress.

    Raises ``IsADirectoryError`` for directories and the usual OSErrors for missing or
    unreadable files.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if stat_mod.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "Is a directory", path)
        if not stat_mod.S_ISREG(st.st_mode):
            # FIFOs, devices: no size to map; read what they give.
            chunks = []
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
            return LocalSource(path, st, b"".join(chunks), None)
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        source = _SOURCES.get(key)
        if source is not None:
            return source
        if st.st_size == 0:
            data = b""
        else:
            data = mmap.mmap(fd, st.st_size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
            try:
                data.madvise(mmap.MADV_SEQUENTIAL)
            except (AttributeError, OSError, ValueError):
                pass
        source = LocalSource(path, st, data, key)
        _SOURCES[key] = source
        return source
    finally:
        os.close(fd)


class TempTarget:
    """A temporary file next to ``path`` that becomes ``path`` on :meth:`commit`.

    Use as a context manager: leaving the block without a commit removes the temporary file.
    Missing parent directories of ``path`` are created.
    """

    def __init__(self, path):
        self.path = path
        parent, name = os.path.split(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self.fd, self.tmp_path = tempfile.mkstemp(prefix=".%s.pssh-tmp-" % (name,),
                                                  dir=parent or ".")
        self._done = False

    def commit(self, mode=None, times=None):
        """Apply ``mode`` (permission bits) and ``times`` ((atime, mtime)), then rename."""
        if mode is not None:
            os.fchmod(self.fd, stat_mod.S_IMODE(mode) & 0o777)
        os.close(self.fd)
        self.fd = -1
        if times is not None:
            os.utime(self.tmp_path, times)
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
