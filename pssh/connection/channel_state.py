"""The state of one command's channel, shared by its pump, its output and the waits on it.

The pump of :class:`pssh.connection.channel.Channel` fills the two buffers; when one holds
``max_unread_output`` unread bytes the pump stops reading the channel until the user reads (or
raises the cap); readers and waits that cannot progress meanwhile fail fast
(``pssh.output.buffer_full_error``).
"""
from time import monotonic

import gevent
import gevent.event

from pssh.core.hub import deadline_after
from pssh.output import OutputBuffer, buffer_full_error

__all__ = ["RemoteClosed", "LimitChanged", "ChannelState"]


class RemoteClosed(Exception):
    """Raised out of the backend pump: the server closed the channel without an EOF."""


class LimitChanged(Exception):
    """Raised out of the backend pump: ``max_unread_output`` changed, the pump starts again."""


class ChannelState:
    """What the pump of one channel produced: buffers, exit status, completion.

    ``paused`` (and the ``blocked`` event) while the pump stopped reading because a buffer
    holds ``max_unread_output`` unread bytes; ``room`` is set when bytes leave a buffer.
    """

    __slots__ = ("channel", "stdout", "stderr", "pump", "done", "exit_code", "exit_signal",
                 "error", "closing", "agent_forwarder", "max_unread_output", "paused",
                 "blocked", "room", "host", "orphaned")

    def __init__(self, channel, host, agent_forwarder=None, max_unread_output=None):
        self.channel = channel
        self.host = host
        # Agent channels may arrive for as long as the command runs, even after the
        # client object is gone: the output keeps the forwarder alive.
        self.agent_forwarder = agent_forwarder
        self.room = gevent.event.Event()
        self.stdout = OutputBuffer(self.room)
        self.stderr = OutputBuffer(self.room)
        self.pump = None
        self.done = gevent.event.Event()
        self.exit_code = None
        self.exit_signal = None
        self.error = None
        self.closing = False
        self.max_unread_output = max_unread_output
        self.paused = False
        self.blocked = gevent.event.Event()
        self.orphaned = False   # the HostOutput is gone: nobody will read the buffers

    def limit(self):
        """The buffer limit the pump applies now (0: none). A channel being closed is read
        to its end: its output is no longer wanted."""
        return 0 if self.closing else self.max_unread_output or 0

    def full(self):
        limit = self.limit()
        return bool(limit) and (len(self.stdout.data) >= limit or len(self.stderr.data) >= limit)

    def on_data(self):
        self.stdout.event.set()
        self.stderr.event.set()

    def wait_done(self, timeout=None, discard=False):
        """True once finished, False at ``timeout``; raises OutputBufferFullError while the
        pump waits for the user to read (the command cannot finish before that), unless
        ``discard``: the unread output is then dropped so that the command can go on."""
        deadline = deadline_after(timeout)
        while not self.done.is_set():
            if self.blocked.is_set():
                if self.full() and not discard:
                    raise buffer_full_error(self, self.host)
                if discard:
                    self.stdout.discard()
                    self.stderr.discard()
                self.blocked.clear()    # read meanwhile: the pump is about to resume
            remaining = None if deadline is None else max(0.0, deadline - monotonic())
            if not gevent.wait([self.done, self.blocked], timeout=remaining, count=1):
                return False
        return True
