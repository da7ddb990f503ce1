"""SCP upload and download of single files over one client (libssh2's scp_send64/scp_recv2).

libssh2 does the SCP header exchange; the end of each file is done here, as the protocol wants
it and libssh2 does not: after an upload the status byte ``\\0`` is sent and the remote ``scp``
answers with ``\\0`` or an error line (a full disk or a failed write is reported this way); after
a download the remote status byte is read and acknowledged. Then EOF, channel close, and the
remote ``scp``'s exit status must be 0. Any other outcome raises :class:`SCPError` naming the
host and the path.

Everything the remote ``scp`` sends is untrusted. libssh2 parses the ``C``/``T`` header lines
(bounded, malformed ones fail the call); the size it reports is checked here. After the last
status byte a real ``scp`` prints at most an error message: up to 64 KiB of such trailing output
(stdout and stderr together) is read and its first 4 KiB kept for the error message or the
debug log; trailing output alone is not an error (as with OpenSSH's ``scp``), more than 64 KiB
is, and so is a remote ``scp`` still not done ``timeout`` seconds after the transfer.
"""
import contextlib
import logging
import os
import posixpath
from time import monotonic

from ssh2.exceptions import SSH2Error

from pssh._pure import error_code
from pssh.core.backend import backend
from pssh.core.hub import DeadlineExceeded, WaiterClosed
from pssh.transfer.localfile import TempTarget, open_source
from pssh.transfer.sftp import (
    EAGAIN, Failed, encode_path, local_error, progress_reporter, session_broken,
    transfer_format)
from pssh.exceptions import SCPError, SessionError, SFTPError

logger = logging.getLogger(__name__)

_ERRORS = (Failed, DeadlineExceeded, WaiterClosed)
# What the remote scp may print after the transfer, and how much of it is kept for messages.
TRAILING_LIMIT = 64 * 1024
TRAILING_KEPT = 4096
# libssh2's buffer for SCP header lines holds this many bytes and a NUL.
_SCP_HEADER_MAX = 255
# libssh2 parses the size into a signed 64-bit value and saturates larger ones to this.
_SATURATED_SIZE = 2 ** 63 - 1


class _TrailingOutput(Exception):
    """The remote scp said too much, or took too long, after the transfer."""


def _read_exact(ops, channel, size, stream_id=0, deadline=None):
    """Up to ``size`` bytes of ``channel`` (fewer only at EOF). ``deadline``: one for the
    whole read; without it ``timeout`` bounds each wait."""
    data = b""
    session, waiter = ops.session, ops.waiter
    try:
        while len(data) < size:
            try:
                rc, chunk = channel.read_ex(size - len(data), stream_id)
            except SSH2Error as exc:
                raise Failed(_code(exc), None, exc) from None
            if rc > 0:
                data += chunk
                continue
            if rc == 0 and channel.eof():
                break
            if rc < 0 and rc != EAGAIN:
                raise Failed(rc)
            if rc == 0 and channel.poll_channel_read(0):
                continue
            waiter.wait(session.block_directions(),
                        ops.deadline() if deadline is None else deadline)
    finally:
        ops.settle()
    return data


def _read_line(ops, channel, limit=4096):
    """The remote scp's message line, at most ``limit`` bytes and within ``timeout`` in total:
    a line that trickles in is cut where it is when the time is up."""
    deadline = ops.deadline()
    line = b""
    try:
        while len(line) < limit:
            byte = _read_exact(ops, channel, 1, deadline=deadline)
            if not byte or byte == b"\n":
                break
            line += byte
    except DeadlineExceeded:
        line += b" [...]"
    return line.decode("utf-8", "replace")


def _write(ops, channel, data):
    try:
        rc = backend.write_all(ops.session, channel, data, 0, ops.data_wait())
    finally:
        ops.settle()
    if rc < 0:
        raise Failed(rc)


def _finish(ops, channel):
    """EOF, read what the remote scp still prints until its EOF (bounded, see the module
    docstring), close; returns (exit status, remote output text)."""
    ops.call(channel.send_eof)
    kept = _drain(ops, channel)
    ops.call(channel.close)
    ops.call(channel.wait_closed)
    text = bytes(kept).lstrip(b"\x00\x01\x02").decode("utf-8", "replace").strip()
    return channel.get_exit_status(), text


def _drain(ops, channel):
    """Stdout and stderr of ``channel`` until the remote EOF, read by the backend's pump;
    returns the first ``TRAILING_KEPT`` bytes (stdout first). Raises :class:`_TrailingOutput`
    past ``TRAILING_LIMIT`` bytes (both streams together) or the client's ``timeout`` (from
    now, in total: a slow endless stream ends too)."""
    deadline = ops.deadline()
    out, err = bytearray(), bytearray()

    def kept():
        return (out + err)[:TRAILING_KEPT]

    def check():
        if len(out) + len(err) > TRAILING_LIMIT:
            raise _TrailingOutput("printed more than %d bytes after the transfer"
                                  % TRAILING_LIMIT, kept())
        if deadline is not None and monotonic() > deadline:
            raise _TrailingOutput(_late(ops), kept())

    def wait(directions):
        try:
            ops.waiter.wait(directions, deadline)
        except DeadlineExceeded:
            raise _TrailingOutput(_late(ops), kept()) from None

    try:
        while True:
            # each buffer stops at the limit too, so at most one read more is held
            rc = backend.pump_channel(ops.session, channel, out, err, wait, check,
                                      TRAILING_LIMIT + 1)
            check()
            if rc == backend.PASS_DONE:
                continue
            if rc < 0:
                raise Failed(rc)
            return kept()
    finally:
        ops.settle()


def _late(ops):
    return "was still running %s s after the transfer" % (ops.timeout,)


def _trailing_error(ops, what, path, exc):
    message, kept = exc.args
    text = bytes(kept).decode("utf-8", "replace").strip()
    return SCPError(transfer_format(what), path, ops.host, "the remote scp %s%s" % (
                    message, ": " + text[:200] if text else ""), host=ops.host, port=ops.port,
                    path=path)


def _close_quietly(ops, channel, why, drain):
    """After a failed SCP transfer on a usable connection: end the remote scp and free the
    channel on the server (sshd limits the channels of a connection). ``drain``: send EOF and
    read what the remote scp still says (uploads); else just close (downloads: the rest of
    the file is not read, at most a window of it arrives)."""
    if session_broken(why):
        return
    if isinstance(why, _TrailingOutput):
        drain = False
    try:
        if drain:
            _finish(ops, channel)
        else:
            ops.call(channel.close)
            ops.call(channel.wait_closed)
    except (Failed, DeadlineExceeded, WaiterClosed, SessionError, _TrailingOutput):
        pass


@contextlib.contextmanager
def _closing_on_failure(ops, channel, what, remote_file, sending):
    """The body of a transfer over ``channel``: on any failure the channel is closed
    quietly and the failure raised as the SCP error of ``what``."""
    try:
        yield
    except _TrailingOutput as exc:
        _close_quietly(ops, channel, exc, sending)
        raise _trailing_error(ops, what, remote_file, exc) from None
    except _ERRORS as failure:
        _close_quietly(ops, channel, failure, sending)
        raise _scp_error(ops, what, remote_file, failure) from None
    except BaseException as exc:
        _close_quietly(ops, channel, exc, sending)
        raise


def _remote_message(ops, channel, status):
    """The text after an SCP status byte other than 0 (1: error, 2: fatal error)."""
    if status in (b"\x01", b"\x02"):
        return _read_line(ops, channel)
    if not status:
        return "connection closed by the remote scp"
    return "unexpected SCP status byte %r" % (status,)


def send(ops, local_file, remote_file, progress=None, sftp_session=None, mkdir_parents=True):
    """Upload one file with SCP keeping mode, mtime and atime; returns the byte count.

    ``sftp_session``: a context manager factory giving an SFTP session, used only when the
    remote parent directory is missing (to create it) or to explain a refusal.
    """
    host = ops.host
    if remote_file.endswith("/"):
        remote_file = remote_file + os.path.basename(local_file)
    try:
        source = open_source(local_file)
    except OSError as exc:
        raise local_error(exc, host, local_file) from None
    total = source.size
    remote_b = encode_path(remote_file)
    _check_header_fits(ops, remote_b, source.mode & 0o777, total, remote_file)
    args = (remote_b, source.mode & 0o777, total, int(source.mtime), int(source.atime))
    try:
        try:
            channel = ops.call(ops.session.scp_send64, *args, exclusive=True)
        except Failed as failure:
            if failure.lost or sftp_session is None:
                raise
            if not _prepare_target(ops, sftp_session, remote_file, mkdir_parents):
                raise
            channel = ops.call(ops.session.scp_send64, *args, exclusive=True)
    except _ERRORS as failure:
        raise _scp_error(ops, "SCP upload", remote_file, failure,
                         "the remote scp refused the file (missing directory, permission "
                         "denied, or not a directory)") from None
    report = progress_reporter(progress, host, remote_file, total)
    with _closing_on_failure(ops, channel, "SCP upload", remote_file, True):
        rc = _data_loop(ops, backend.scp_send_file, channel, source.fd, total, report,
                        local_file)
        # Before the final status byte: a changed file must not be confirmed to the remote.
        source.check_sent(rc, SCPError, host, ops.port, remote_file)
        _write(ops, channel, b"\x00")
        status = _read_exact(ops, channel, 1)
        if status != b"\x00":
            message = _remote_message(ops, channel, status)
            raise SCPError("SCP upload of %s to host %s failed - %s", remote_file, host,
                           message, host=host, port=ops.port, path=remote_file)
        code, text = _finish(ops, channel)
        if code != 0:
            raise SCPError("SCP upload of %s to host %s failed - remote scp exited with %s%s",
                           remote_file, host, code, ": " + text if text else "", host=host,
                           port=ops.port, path=remote_file)
        if text:
            logger.debug("[%s] remote scp said after uploading %s: %s", host, remote_file, text)
    source.check_sent(total, SCPError, host, ops.port, remote_file)
    if progress is not None:
        progress(host, remote_file, total, total)
    logger.info("Copied local file %s to remote destination %s:%s", local_file, host,
                remote_file)
    return total


def _data_loop(ops, loop, channel, fd, size, report, local_file):
    """Run the backend's SCP data ``loop`` over ``channel`` and the local descriptor ``fd``;
    returns its byte count. A local error names ``local_file`` and the host; a libssh2 error
    raises :class:`Failed`."""
    try:
        rc = loop(ops.session, channel, fd, size, ops.data_wait(), report)
    except OSError as exc:
        raise local_error(exc, ops.host, local_file) from None
    finally:
        ops.settle()
    if rc < 0:
        raise Failed(rc)
    return rc


def _check_header_fits(ops, remote_b, mode, size, remote_file):
    """libssh2 formats the ``C`` line of an upload into a 256-byte buffer and then sends as
    many bytes as the untruncated line would have: a longer line (a name over about 245
    bytes) would send the session memory that follows the buffer to the server. Refuse it."""
    header = b"C0%o %d %s\n" % (mode, size, posixpath.basename(remote_b))
    if len(header) > _SCP_HEADER_MAX:
        raise SCPError("SCP upload of %s to host %s failed - file name too long for SCP "
                       "(%d bytes; the header line may have at most %d): use copy_file",
                       remote_file, ops.host, len(posixpath.basename(remote_b)),
                       _SCP_HEADER_MAX, host=ops.host, port=ops.port, path=remote_file)


def _prepare_target(ops, sftp_session, remote_file, mkdir_parents):
    """After a refused upload: create a missing parent directory. True to try again."""
    parent = posixpath.dirname(remote_file.rstrip("/"))
    if not parent or not mkdir_parents:
        return False
    try:
        with sftp_session() as sftp:
            if ops.stat(sftp, encode_path(parent)) is not None:
                return False
            ops.mkdir_p(sftp, parent)
            return True
    except (SFTPError, Failed):
        return False


def recv(ops, remote_file, local_file, progress=None, encoding="utf-8"):
    """Download one file with SCP into ``local_file`` (via a temporary file), keeping mode,
    mtime and atime; returns the byte count."""
    host = ops.host
    try:
        channel, info = ops.call(ops.session.scp_recv2, encode_path(remote_file, encoding),
                                 exclusive=True)
    except _ERRORS as failure:
        raise _scp_error(ops, "SCP download", remote_file, failure,
                         "remote file missing, unreadable or not a regular file") from None
    size = info.st_size
    report = progress_reporter(progress, host, remote_file, size)
    with _closing_on_failure(ops, channel, "SCP download", remote_file, False):
        if not 0 <= size < _SATURATED_SIZE:
            raise SCPError("SCP download of %s from host %s failed - invalid file size in the "
                           "remote scp's header (negative, or 2**63 bytes or more)", remote_file,
                           host, host=host, port=ops.port, path=remote_file)
        try:
            target = TempTarget(local_file)
        except OSError as exc:
            raise local_error(exc, host, local_file) from None
        with target:
            rc = _data_loop(ops, backend.scp_recv_file, channel, target.fd, size, report,
                            local_file)
            if rc != size:
                raise SCPError("Short read downloading %s from host %s: %s of %s bytes",
                               remote_file, host, rc, size, host=host, port=ops.port,
                               path=remote_file)
            status = _read_exact(ops, channel, 1)
            if status != b"\x00":
                message = _remote_message(ops, channel, status)
                raise SCPError("SCP download of %s from host %s failed - %s", remote_file,
                               host, message, host=host, port=ops.port, path=remote_file)
            _write(ops, channel, b"\x00")
            code, text = _finish(ops, channel)
            if code not in (0, None):
                raise SCPError("SCP download of %s from host %s failed - remote scp exited "
                               "with %s%s", remote_file, host, code,
                               ": " + text if text else "", host=host, port=ops.port,
                               path=remote_file)
            if text:
                logger.debug("[%s] remote scp said after sending %s: %s", host, remote_file,
                             text)
            target.commit(info.st_mode, (info.st_atime, info.st_mtime))
    if progress is not None:
        progress(host, remote_file, size, size)
    logger.info("Copied remote file %s:%s to local %s", host, remote_file, local_file)
    return size


def _scp_error(ops, what, path, failure, refused=None):
    exc = ops.wrap(SCPError, what, path, failure)
    if refused and isinstance(failure, Failed) and not failure.lost and failure.code == -28:
        detail = _libssh2_message(ops)
        if detail and not detail.startswith("Failed to"):
            # A header libssh2 could not parse (bad mode or size, line too long, ...).
            refused = "invalid reply from the remote scp (%s)" % (detail,)
        # Otherwise libssh2 kept only "failed to send/recv file": say what it usually means.
        exc = SCPError(transfer_format(what), path, ops.host, refused,
                       host=ops.host, port=ops.port, cause=failure.exc, path=path)
    return exc


def _libssh2_message(ops):
    try:
        message = ops.session.last_error()
    except SSH2Error:
        return ""
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return (message or "")[:200]


def _code(exc):
    return error_code(exc)
