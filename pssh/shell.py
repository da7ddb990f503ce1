"""Interactive shells: a shell on one channel fed command lines over stdin."""

__all__ = ["InteractiveShell"]


class InteractiveShell:
    """A remote shell started without a PTY.

    ``run(cmd)`` sends one command line; ``close()`` sends EOF and waits until
    the shell exits. Output of all commands accumulates in ``output`` (a
    :class:`pssh.output.HostOutput`), readable after close. As a context
    manager the shell is closed at the end of the block.
    """

    __slots__ = ("_chan", "_client", "output", "_encoding")

    def __init__(self, channel, client, encoding="utf-8", read_timeout=None, output=None):
        self._chan = channel
        self._client = client
        self._encoding = encoding
        if output is None:
            output = client._start_output(channel, encoding, read_timeout, None, None)
        self.output = output

    def run(self, cmd):
        """Send ``cmd`` followed by a newline to the shell; does not wait for it."""
        self._client._write_channel(self._chan, cmd.encode(self._encoding) + b"\n")

    def close(self):
        """Send EOF and wait for the shell to exit; returns the shell."""
        if self._chan is None:
            return None
        state = self.output.channel_state
        if not state.done.is_set():
            try:
                self._client._send_eof(self._chan)
            except Exception:  # noqa: BLE001 - the channel may already be gone
                if not state.done.is_set():
                    raise
        self._client.wait_finished(self.output)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def stdout(self):
        return self.output.stdout

    @property
    def stderr(self):
        return self.output.stderr

    @property
    def stdin(self):
        return self.output.stdin

    @property
    def exit_code(self):
        return self.output.exit_code
