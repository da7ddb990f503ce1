"""SFTP operations of one client: sessions, remote paths, single-file upload and download.

Every libssh2 call runs non-blocking through the client's socket waiter. Failures become
:class:`SFTPError` / :class:`SFTPIOError` naming host and path, with the SFTP status code (when
the server sent one) in ``sftp_status`` and the underlying error in ``cause``.
"""
import logging
import os
import posixpath
import stat as stat_mod
from time import monotonic

import gevent

from ssh2.exceptions import SSH2Error
from ssh2.sftp import (
    LIBSSH2_FXF_CREAT, LIBSSH2_FXF_EXCL, LIBSSH2_FXF_READ, LIBSSH2_FXF_TRUNC, LIBSSH2_FXF_WRITE,
    LIBSSH2_SFTP_ATTR_PERMISSIONS)
from ssh2.sftp_handle import SFTPAttributes

from pssh._pure import error_code
from pssh.core import calls
from pssh.core.calls import CallFailed
from pssh.core.backend import backend
from pssh.core.hub import DeadlineExceeded, WaiterClosed, deadline_after
from pssh.core.libssh2 import LIB, pointer
from pssh.transfer.localfile import TempTarget, open_source
from pssh.exceptions import ConnectionLostError, SessionError, SFTPError, SFTPIOError, Timeout

logger = logging.getLogger(__name__)

EAGAIN = backend.LIBSSH2_ERROR_EAGAIN
SFTP_PROTOCOL = calls.SFTP_PROTOCOL
FX_NO_SUCH_FILE = 2
FX_PERMISSION_DENIED = 3
FX_FAILURE = 4
FX_NAMES = calls.SFTP_STATUS_NAMES

_WRITE_FLAGS = LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC
_NEW_FLAGS = LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL
FX_OP_UNSUPPORTED = 8
DIR_MODE = 0o755

# A transfer step's failure: the one failure of pssh.core.calls (``lost`` when nothing more
# can be done on the SFTP channel or the connection, which includes timeouts).
Failed = CallFailed


def encode_path(path, encoding="utf-8"):
    if isinstance(path, bytes):
        return path
    return os.fsencode(path) if encoding is None else path.encode(encoding, "surrogateescape")


def transfer_format(what):
    """The message format of a failed transfer step ``what``, taking (path, host, reason):
    2.x's ``args`` layout for SCPError/SFTPIOError, path at ``args[1]``, host at ``args[2]``."""
    return what.replace("%", "%%") + " of %s on host %s failed - %s"


class Ops:
    """The transfer plumbing of one :class:`pssh.single.SSHClient`."""

    def __init__(self, client):
        self.client = client
        caller = client.caller
        self.host = client.host
        self.port = client.port
        self.session = caller.session
        self.waiter = caller.waiter
        # op_timeout (pssh.connection.settings): each request and each socket wait.
        self.timeout = caller.op_timeout
        # Each request, raising CallFailed; wrap() names the step, the path and the host.
        self.call = caller.attempt

    # -- calls -------------------------------------------------------------------------------

    def deadline(self):
        return deadline_after(self.timeout)

    def data_wait(self):
        """The wait callable for data loops: ``op_timeout`` bounds each wait."""
        waiter, timeout = self.waiter, self.timeout
        if not timeout:
            return waiter

        def wait(directions):
            waiter.wait(directions, monotonic() + timeout)
        return wait

    def settle(self):
        self.waiter.settle()

    def wrap(self, cls, what, path, failure, **extra):
        """The exception (``cls``, naming host and path) for the failure of step ``what``:
        a :class:`CallFailed`, or a wait failure of a data loop."""
        failure = CallFailed.of(failure)
        if failure.timed_out:
            exc = failure.error(self.host, self.port, "%s of %s" % (what, path))
            exc.path = path
            return exc
        if failure.closed:
            cause = SessionError("Client for host %s:%s was closed", self.host, self.port,
                                 host=self.host, port=self.port, cause=failure.exc)
            return cls(transfer_format(what), path, self.host, "client closed",
                       host=self.host, port=self.port, cause=cause, path=path)
        if failure.lost:
            cause = ConnectionLostError("Connection to host %s:%s lost", self.host, self.port,
                                        host=self.host, port=self.port, cause=failure.exc)
        else:
            cause = failure.exc
        exc = cls(transfer_format(what), path, self.host, failure.describe(),
                  host=self.host, port=self.port, cause=cause, path=path)
        exc.sftp_status = failure.status
        for key, value in extra.items():
            setattr(exc, key, value)
        return exc

    # -- SFTP sessions and metadata ----------------------------------------------------------

    def make_sftp(self):
        try:
            return self.call(self.session.sftp_init, exclusive=True)
        except Failed as failure:
            if failure.timed_out:
                raise failure.error(self.host, self.port, "Starting an SFTP session") from None
            raise SFTPError("Error initialising SFTP session on host %s - %s", self.host,
                            "closed" if failure.closed else failure.describe(),
                            host=self.host, port=self.port, cause=failure.exc) from None

    def stat(self, sftp, path_b, follow=True):
        """SFTPAttributes of ``path_b`` (of the link itself unless ``follow``), or None if it
        does not exist."""
        try:
            return self.call(sftp.stat if follow else sftp.lstat, path_b, sftp=sftp)
        except Failed as failure:
            if failure.status == FX_NO_SUCH_FILE:
                return None
            raise

    def lookup(self, sftp, path, encoding="utf-8"):
        """:meth:`stat` raising SFTPIOError (naming host and path) on failures."""
        try:
            return self.stat(sftp, encode_path(path, encoding))
        except (Failed, DeadlineExceeded, WaiterClosed) as failure:
            raise self.wrap(SFTPIOError, "Looking up", path, failure) from None

    def mkdir_p(self, sftp, path, encoding="utf-8"):
        """Create ``path`` and its missing parents (mode 0755); existing directories are fine.

        The deepest directory is tried first, so nothing above an existing parent is ever
        looked at (no stat of unreadable ancestors); relative paths are relative to the
        login directory.
        """
        path = _strip_slashes(path)
        if path in ("", "/", "."):
            return
        try:
            self._mkdir_p(sftp, path, encoding)
        except (Failed, DeadlineExceeded, WaiterClosed) as failure:
            raise self.wrap(SFTPIOError, "Creating directory", path, failure) from None

    def _try_mkdir(self, sftp, path_b, mode):
        """None once created, else the (non-fatal) failure."""
        try:
            self.call(sftp.mkdir, path_b, mode, sftp=sftp)
            return None
        except Failed as failure:
            if failure.lost:
                raise
            return failure

    def _mkdir_p(self, sftp, path, encoding, mode=DIR_MODE):
        path_b = encode_path(path, encoding)
        first = self._try_mkdir(sftp, path_b, mode)
        if first is None:
            return
        if first.status == FX_NO_SUCH_FILE:
            parent = posixpath.dirname(path)
            if parent and parent not in (path, "/", "."):
                self._mkdir_p(sftp, parent, encoding)
                first = self._try_mkdir(sftp, path_b, mode)
                if first is None:
                    return
        # Exists already (FX_FAILURE), or no permission: a directory there is success.
        attrs = self.stat(sftp, path_b)
        if attrs is not None and stat_mod.S_ISDIR(attrs.permissions):
            return
        if attrs is not None:
            raise Failed(0, None, NotADirectoryError(20, "exists and is not a directory", path))
        raise first

    def mkdir_one(self, sftp, path, mode=DIR_MODE, encoding="utf-8"):
        """Create one directory whose parent exists; an existing directory is fine."""
        try:
            try:
                self.call(sftp.mkdir, encode_path(path, encoding), mode, sftp=sftp)
            except Failed as failure:
                if failure.lost:
                    raise
                attrs = self.stat(sftp, encode_path(path, encoding))
                if attrs is None or not stat_mod.S_ISDIR(attrs.permissions):
                    raise
        except (Failed, DeadlineExceeded, WaiterClosed) as failure:
            raise self.wrap(SFTPIOError, "Creating directory", path, failure) from None

    # -- files -------------------------------------------------------------------------------

    def upload(self, sftp, local_file, remote_file, progress=None, mkdir_parents=True):
        """Upload one local file; returns its size. ``remote_file`` may name an existing
        directory (the file then goes inside it under its own name)."""
        try:
            source = open_source(local_file)
        except OSError as exc:
            raise local_error(exc, self.host, local_file) from None
        total = source.size
        handle, remote_file, temp_b, created = self._open_for_write(
            sftp, local_file, remote_file, source.mode, mkdir_parents)
        report = progress_reporter(progress, self.host, remote_file, total)
        try:
            self._write_file(sftp, handle, source, remote_file, report)
            if temp_b is not None:
                self._replace(sftp, temp_b, encode_path(remote_file))
        except BaseException as exc:
            if temp_b is not None or created:
                # Nothing the upload made stays behind, if the connection still works.
                self._discard_temp(sftp, temp_b or encode_path(remote_file), exc)
            if isinstance(exc, (Failed, DeadlineExceeded, WaiterClosed)):
                raise self.wrap(SFTPIOError, "Uploading", remote_file, exc) from None
            raise
        if source.changed():
            raise SFTPIOError("Local file %s changed while it was uploaded to host %s:%s",
                              local_file, self.host, remote_file, host=self.host,
                              port=self.port, path=local_file)
        if progress is not None:
            progress(self.host, remote_file, total, total)
        logger.info("Copied local file %s to remote destination %s:%s", local_file, self.host,
                    remote_file)
        return total

    def _write_file(self, sftp, handle, source, remote_file, report):
        with _OpenHandle(self, sftp, handle, "Uploading", remote_file) as opened:
            try:
                rc = backend.sftp_write_file(self.session, handle, source.fd, source.size,
                                             self.data_wait(), report)
            except OSError as exc:
                raise local_error(exc, self.host, source.path) from None
            finally:
                self.settle()
            if rc < 0:
                raise self.data_failure(sftp, rc)
            source.check_sent(rc, SFTPIOError, self.host, self.port, remote_file)
            attrs = SFTPAttributes()
            attrs.flags = LIBSSH2_SFTP_ATTR_PERMISSIONS
            attrs.permissions = source.mode & 0o777
            try:
                self.call(handle.fsetstat, attrs, sftp=sftp)
            except Failed as failure:
                if failure.status is None:
                    raise
                # The data is complete; a file owned by someone else keeps its mode.
                logger.warning("[%s] could not set mode %o on %s: %s", self.host,
                               source.mode & 0o777, remote_file, failure.describe())
            opened.close()

    def _open_for_write(self, sftp, local_file, remote_file, mode, mkdir_parents):
        """Open where the upload's bytes go: (handle, remote path, temporary path or None,
        whether the upload created the file).

        A new file is created exclusively and written directly (no extra round trip). An
        existing regular file is written to a temporary file beside it that replaces it
        only once complete (see :meth:`_replace`), so a failed upload never destroys the
        previous file. A symbolic link (its target is written) or special file, a directory
        that cannot take the temporary file, or a missing libssh2 binding means in place.
        """
        if remote_file.endswith("/"):
            remote_file = remote_file + os.path.basename(local_file)
        try:
            for _ in range(2):  # a second round for a file inside an existing directory
                path_b = encode_path(remote_file)
                try:
                    return self._create(sftp, path_b, mode), remote_file, None, True
                except Failed as failure:
                    if failure.lost:
                        raise
                    first = failure
                attrs = self.stat(sftp, path_b, follow=False)
                if attrs is not None and stat_mod.S_ISLNK(attrs.permissions):
                    followed = self.stat(sftp, path_b)
                    if followed is not None and stat_mod.S_ISDIR(followed.permissions):
                        attrs = followed
                if attrs is None or not stat_mod.S_ISDIR(attrs.permissions):
                    break
                # An existing directory as target: the file goes inside it.
                remote_file = posixpath.join(remote_file, os.path.basename(local_file))
            else:
                raise first
            parent = posixpath.dirname(_strip_slashes(remote_file))
            if attrs is None:
                if not (first.status == FX_NO_SUCH_FILE and mkdir_parents and parent
                        and self.stat(sftp, encode_path(parent)) is None):
                    raise first
                self.mkdir_p(sftp, parent)
                return self._create(sftp, path_b, mode), remote_file, None, True
            if LIB is None or not stat_mod.S_ISREG(attrs.permissions):
                return self._open_in_place(sftp, path_b, mode), remote_file, None, False
            temp_b = encode_path(posixpath.join(
                parent, ".%s.pssh-%s" % (posixpath.basename(remote_file), os.urandom(4).hex())))
            try:
                return self._create(sftp, temp_b, mode), remote_file, temp_b, False
            except Failed as failure:
                if failure.lost:
                    raise
                # The directory refuses new files but the file itself may be writable.
                logger.debug("[%s] %s: no temporary file beside it (%s), writing in place",
                             self.host, remote_file, failure.describe())
                return self._open_in_place(sftp, path_b, mode), remote_file, None, False
        except (Failed, DeadlineExceeded, WaiterClosed) as failure:
            raise self.wrap(SFTPIOError, "Opening remote file for writing", remote_file,
                            failure) from None

    def _open_in_place(self, sftp, path_b, mode):
        return self.call(sftp.open, path_b, _WRITE_FLAGS, mode & 0o777, sftp=sftp)

    def _create(self, sftp, path_b, mode):
        """Open a file that must not exist yet (O_EXCL)."""
        return self.call(sftp.open, path_b, _NEW_FLAGS, mode & 0o777, sftp=sftp)

    def _replace(self, sftp, temp_b, path_b):
        """Rename the finished temporary file over the target in one step
        (``posix-rename@openssh.com``); a server without it gets remove + rename."""
        rc = self.call(LIB.sftp_posix_rename_ex, pointer(sftp), temp_b, len(temp_b), path_b,
                       len(path_b), sftp=sftp)
        if rc == 0:
            return
        status = sftp.last_error() if rc == SFTP_PROTOCOL else None
        if status != FX_OP_UNSUPPORTED:
            raise Failed(rc, status, None)
        if self.stat(sftp, path_b, follow=False) is not None:
            self.call(sftp.unlink, path_b, sftp=sftp)
        self.call(sftp.rename, temp_b, path_b, sftp=sftp)

    def _discard_temp(self, sftp, temp_b, why):
        if session_broken(why):
            return  # the temporary file stays behind: it cannot be removed now
        try:
            self.call(sftp.unlink, temp_b, sftp=sftp)
        except (Failed, DeadlineExceeded, WaiterClosed, SessionError):
            pass

    def download(self, sftp, remote_file, local_file, progress=None, encoding="utf-8",
                 attrs=None):
        """Download one remote file into ``local_file`` (via a temporary file next to it);
        returns its size. Missing remote file: SFTPIOError; remote directory: ValueError."""
        path_b = encode_path(remote_file, encoding)
        try:
            if attrs is None:
                attrs = self.stat(sftp, path_b)
            if attrs is None:
                raise SFTPIOError("Remote file %s does not exist on host %s", remote_file,
                                  self.host, host=self.host, port=self.port, path=remote_file)
            if stat_mod.S_ISDIR(attrs.permissions):
                raise ValueError("Remote path %s on host %s is a directory: use recurse=True"
                                 % (remote_file, self.host))
        except (Failed, DeadlineExceeded, WaiterClosed) as failure:
            raise self.wrap(SFTPIOError, "Opening remote file", remote_file, failure) from None
        try:
            target = TempTarget(local_file)
        except OSError as exc:
            raise local_error(exc, self.host, local_file) from None
        try:
            handle = self.call(sftp.open, path_b, LIBSSH2_FXF_READ, 0, sftp=sftp)
        except (Failed, DeadlineExceeded, WaiterClosed) as failure:
            target.discard()
            raise self.wrap(SFTPIOError, "Opening remote file", remote_file, failure) from None
        expected = attrs.filesize
        report = progress_reporter(progress, self.host, remote_file, expected)
        with _OpenHandle(self, sftp, handle, "Downloading", remote_file) as opened:
            with target:
                try:
                    rc = backend.sftp_read_file(self.session, handle, target.fd,
                                                self.data_wait(), report)
                except OSError as exc:
                    raise local_error(exc, self.host, local_file) from None
                finally:
                    self.settle()
                if rc < 0:
                    raise self.data_failure(sftp, rc)
                opened.close()
                if rc != expected and expected:
                    raise SFTPIOError("Short read downloading %s from host %s: %s of %s bytes",
                                      remote_file, self.host, rc, expected, host=self.host,
                                      port=self.port, path=remote_file)
                target.commit(_remote_mode(attrs))
        if progress is not None:
            progress(self.host, remote_file, rc, rc)
        logger.info("Copied remote file %s:%s to local %s", self.host, remote_file, local_file)
        return rc

    def data_failure(self, sftp, rc):
        status = None
        if rc == SFTP_PROTOCOL:
            try:
                status = sftp.last_error()
            except SSH2Error:
                pass
        return Failed(rc, status, None)

    def abandon(self, handle, why):
        """After a failed transfer: close the remote handle if the connection is still usable,
        else make sure nothing ever calls libssh2 on it (see ``forget_sftp_handle``)."""
        if not session_broken(why):
            try:
                self.call(handle.close)
                return
            except (Failed, DeadlineExceeded, WaiterClosed, SessionError):
                pass
        backend.forget_sftp_handle(handle)


class _OpenHandle:
    """Scope of an open remote file during a transfer: the body calls :meth:`close` once the
    data is through; a failure before that abandons the handle, and libssh2 and time-out
    failures become an :class:`SFTPIOError` naming ``verb``, host and path."""

    __slots__ = ("ops", "sftp", "handle", "verb", "path", "closed")

    def __init__(self, ops, sftp, handle, verb, path):
        self.ops = ops
        self.sftp = sftp
        self.handle = handle
        self.verb = verb
        self.path = path
        self.closed = False

    def close(self):
        self.closed = True
        self.ops.call(self.handle.close, sftp=self.sftp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            return False
        if not self.closed:
            self.ops.abandon(self.handle, exc)
        if isinstance(exc, (Failed, DeadlineExceeded, WaiterClosed)):
            raise self.ops.wrap(SFTPIOError, self.verb, self.path, exc) from None
        return False


def session_broken(exc):
    """True if ``exc`` (raised during a transfer) leaves the connection or libssh2's request
    state unusable: connection lost, client closed, a timeout or an interruption (e.g.
    GreenletExit) in the middle of a request. Remote status errors (no such file, permission
    denied, disk full) and local errors leave it usable."""
    if isinstance(exc, Failed):
        return exc.lost
    if isinstance(exc, (DeadlineExceeded, WaiterClosed, Timeout, SessionError,
                        ConnectionLostError)):
        return True
    if isinstance(getattr(exc, "cause", None), (ConnectionLostError, SessionError, Timeout)):
        return True
    return not isinstance(exc, Exception)


def code_of(exc):
    return error_code(exc)


def _strip_slashes(path):
    stripped = path.rstrip("/")
    return stripped if stripped or not path else "/"


# The data loops call their progress callable about every MiB; it also lets the other
# greenlets run every few MiB, since a loop that never waits (the data keeps coming) would
# otherwise keep the hub to itself until its file is done (other hosts' transfers could not
# even start, timers would not fire).
_YIELD_EVERY = 1024 * 1024


def _remote_mode(attrs):
    """The mode a download applies: a server may leave permissions out of its attributes,
    and then the file gets 0666 less the umask, as OpenSSH's sftp gives it, not 0000."""
    if attrs.flags & LIBSSH2_SFTP_ATTR_PERMISSIONS:
        return attrs.permissions
    return 0o666


def progress_reporter(progress, host, path, total):
    last = [0]

    def tick(done):
        if progress is not None:
            progress(host, path, done, total)
        if done - last[0] >= _YIELD_EVERY:
            last[0] = done
            gevent.sleep(0)
    return tick


def local_error(exc, host, path):
    """The OSError ``exc`` of a local file, same class and errno, message naming the host."""
    text = "%s (transfer with host %s)" % (exc.strerror or exc, host)
    try:
        new = type(exc)(exc.errno, text, exc.filename or path)
    except TypeError:
        return exc
    new.host = host
    new.path = exc.filename or path
    return new
