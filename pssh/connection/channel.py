"""Channel: one libssh2 channel of a client, from the started command to its exit status.

It owns the channel's output pump (one greenlet draining stdout and stderr), writes to its
stdin (bounded by ``op_timeout``), sends EOF once, closes it, and reads its exit status and
signal. ``Stdin``, shells and joins talk to it; its :class:`ChannelState` is what the output's
readers see. The pump stops reading at ``max_unread_output`` unread bytes (see
:mod:`pssh.connection.channel_state`).
"""
import logging
import re
import signal as signals
from typing import Optional

import gevent
from ssh2.error_codes import LIBSSH2_ERROR_CHANNEL_CLOSED

from pssh.connection.channel_state import ChannelState, LimitChanged, RemoteClosed
from pssh.connection.exit_signal import read_exit_signal, remote_close_flag
from pssh.core.backend import backend
from pssh.core.calls import Caller
from pssh.core.hub import DeadlineExceeded, WaiterClosed, deadline_after
from pssh.core.libssh2 import LIB, pointer
from pssh.exceptions import SessionError, Timeout

__all__ = ["Channel"]

logger = logging.getLogger(__name__)

# A signal name as RFC 4254 sends it: "TERM", "KILL", "HUP"..., without "SIG".
_SIGNAL_NAME = re.compile(r"[A-Z][A-Z0-9]{0,31}\Z")


class Channel:
    """The libssh2 channel ``ssh_channel`` (an ``ssh2.channel.Channel`` running a command or a
    shell) of the connection behind ``caller``.

    ``finish_timeout`` bounds the close handshake at the end; ``agent_forwarder`` is kept
    alive while the command runs (agent requests may come until its end).
    """

    __slots__ = ("ssh_channel", "state", "caller", "finish_timeout", "eof_sent")

    def __init__(self, ssh_channel, caller: Caller, finish_timeout: Optional[float],
                 agent_forwarder=None, max_unread_output: Optional[int] = None):
        self.ssh_channel = ssh_channel
        self.caller = caller
        self.finish_timeout = finish_timeout
        self.state = ChannelState(ssh_channel, caller.host, agent_forwarder, max_unread_output)
        self.eof_sent = False

    @property
    def host(self) -> str:
        return self.caller.host

    def start(self) -> "Channel":
        """Start the output pump; returns the channel."""
        self.state.pump = gevent.spawn(self._pump)
        return self

    # -- what the user sees ---------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """True once remote EOF, exit status and the close handshake are all done."""
        return self.state.done.is_set()

    @property
    def exit_code(self) -> Optional[int]:
        return self.state.exit_code

    def wait_finished(self, timeout: Optional[float] = None) -> None:
        """Wait until finished; :class:`Timeout` after ``timeout`` s; raises the pump's error."""
        if not self.state.wait_done(timeout):
            raise Timeout("Timeout of %s s waiting for the command on host %s to finish",
                          timeout, self.host, host=self.host, port=self.caller.port)
        if self.state.error is not None:
            raise self.state.error

    def write(self, data: bytes) -> int:
        """Write all of ``data`` to the command's stdin within ``op_timeout`` (a server that
        never opens its window must not hold the writer forever); returns its length."""
        caller = self.caller
        if caller.is_closed():
            raise caller.closed_error()
        if self.eof_sent or self.state.closing or self.finished:
            why = "EOF was sent" if self.eof_sent else "the channel is closed"
            raise SessionError("Cannot write to the stdin of the command on host %s:%s: %s",
                               caller.host, caller.port, why, host=caller.host,
                               port=caller.port)
        wait = caller.waiter.bind(deadline_after(caller.op_timeout))
        try:
            rc = backend.write_all(caller.session, self.ssh_channel, data, 0, wait)
        except DeadlineExceeded:
            raise Timeout("Writing to host %s:%s timed out after %s s: the server did not "
                          "take the data (its channel window stayed closed or the network "
                          "stalled)", caller.host, caller.port, caller.op_timeout,
                          host=caller.host, port=caller.port) from None
        finally:
            caller.waiter.settle()
        return caller.check(rc, "Writing to the channel")

    def send_eof(self) -> None:
        """Send EOF on stdin, once; nothing to do once the channel is closed or finished."""
        if self.eof_sent or self.state.closing or self.finished:
            return
        self.caller.call(self.ssh_channel.send_eof, what="Sending EOF")
        self.eof_sent = True

    def close(self) -> None:
        """Close the channel (with a PTY this ends the remote command); the pump reads the
        rest of the output and the exit status."""
        state = self.state
        if state.closing:
            return
        state.closing = True
        state.room.set()
        self.caller.call(self.ssh_channel.close, what="Closing the channel")

    def signal(self, name: str, timeout: Optional[float] = None) -> bool:
        """Ask the server to send signal ``name`` (``"TERM"``, ``"KILL"``...) to the command;
        False when the channel is closing or pssh cannot call libssh2 for it. The server may
        ignore it: OpenSSH before 7.8 does, and so does OpenSSH for a forced command. Raises
        the pssh error of a failed send (``timeout``: the client's ``op_timeout``)."""
        if not isinstance(name, str) or not _SIGNAL_NAME.match(name) or name.startswith("SIG"):
            raise ValueError("not a signal name (as RFC 4254 sends them: TERM, KILL, ...): %r"
                             % (name,))
        if self.state.closing or LIB is None:
            return False
        raw = name.encode("ascii")
        deadline = deadline_after(self.caller.op_timeout if timeout is None else timeout)
        self.caller.call(LIB.channel_signal_ex, pointer(self.ssh_channel), raw, len(raw),
                         what="Sending signal %s" % name, deadline=deadline)
        return True

    def orphan(self) -> None:
        """Nobody can read the output any more: a pump paused on a full buffer drops it and
        goes on, so that the command still runs to its end."""
        self.state.orphaned = True
        self.state.room.set()

    def wake(self) -> None:
        """The client closes: a pump paused on a full buffer ends now."""
        self.state.room.set()

    # -- the pump -------------------------------------------------------------------------

    def _pump(self):
        state, caller = self.state, self.caller
        error = None
        try:
            rc, remote_closed = self._pump_until_end()
            if rc != 0 and not (state.closing and rc == LIBSSH2_ERROR_CHANNEL_CLOSED):
                caller.check(rc, "Reading command output")
            self._finish(remote_closed)
        except WaiterClosed as exc:
            error = SessionError("Client for host %s:%s was closed while the command ran",
                                 caller.host, caller.port, host=caller.host, port=caller.port,
                                 cause=exc)
        except Exception as exc:  # noqa: BLE001 - stored and re-raised to readers
            error = exc
        finally:
            caller.waiter.settle()
            state.error = error
            state.stdout.finish(error)
            state.stderr.finish(error)
            state.done.set()

    def _pump_until_end(self):
        """Run the backend pump to the end of the output: (its code, closed without EOF).

        The pump stops when a buffer reaches ``max_unread_output`` and resumes once the user
        read some of it; meanwhile the channel is not read at all (each libssh2 read would
        re-open the SSH window), so the server's sends stall on this channel alone.
        """
        state, session = self.state, self.caller.session
        closed_by_server = remote_close_flag(self.ssh_channel)
        while True:
            limit = state.limit()
            wait = self._pump_wait(closed_by_server, limit)
            try:
                rc = backend.pump_channel(session, self.ssh_channel, state.stdout.data,
                                          state.stderr.data, wait, state.on_data, limit)
            except RemoteClosed:
                logger.warning("[%s] the server closed the channel without sending EOF",
                               self.host)
                return 0, True
            except LimitChanged:
                continue
            if rc == backend.PASS_DONE:
                # the readers take their lines before the next 256 KiB come in: the buffers
                # stay small instead of swinging between empty and the whole SSH window
                gevent.sleep(0)
                continue
            if rc != backend.BUFFER_FULL:
                return rc, False
            self._wait_for_room()

    def _pump_wait(self, closed_by_server, limit):
        """The pump's wait: leaves the backend loop when the server closed the channel
        (libssh2 never reports EOF for a channel closed without one: the pump would wait
        for the socket forever) or when the buffer limit was changed meanwhile."""
        waiter, state = self.caller.waiter, self.state

        def wait(directions):
            if closed_by_server is not None and closed_by_server():
                raise RemoteClosed()
            if state.limit() != limit:
                raise LimitChanged()
            waiter(directions)
            # The limit is often changed while the pump sleeps here (max_unread_output set
            # right after run_command): the data that woke it must be read under the new one.
            if state.limit() != limit:
                raise LimitChanged()
        return wait

    def _wait_for_room(self):
        state, is_closed = self.state, self.caller.is_closed
        state.paused = True
        state.blocked.set()
        state.stdout.notify()   # readers waiting for the other stream fail fast
        state.stderr.notify()
        try:
            while state.full() and not is_closed():
                if state.orphaned:
                    state.stdout.discard()
                    state.stderr.discard()
                    break
                state.room.clear()
                state.room.wait()
        finally:
            state.paused = False
            state.blocked.clear()
        if is_closed():
            raise WaiterClosed("client closed")

    def _finish(self, remote_closed):
        state, channel, caller = self.state, self.ssh_channel, self.caller
        deadline = deadline_after(self.finish_timeout)
        if not state.closing:
            state.closing = True
            caller.call(channel.close, deadline=deadline, what="Closing the channel")
        if not remote_closed:  # libssh2 refuses to wait for a close that came without EOF
            caller.call(channel.wait_closed, deadline=deadline,
                        what="Waiting for channel close")
        signal = read_exit_signal(channel)
        status = channel.get_exit_status()
        if signal.name:
            state.exit_signal = signal.name
            state.exit_code = _signal_exit_code(signal.name)
        elif signal.malformed:
            # libssh2 answers 0 when no exit-status came: a command reported killed must
            # not read as a success.
            logger.warning("[%s] ignored a malformed exit-signal from the server (the name "
                           "is not 1-32 of A-Z, 0-9); exit code %s", self.host, status or 255)
            state.exit_code = status or 255
        else:
            state.exit_code = status


def _signal_exit_code(name):
    try:
        return 128 + int(signals.Signals["SIG" + name.upper()])
    except KeyError:
        return 255
