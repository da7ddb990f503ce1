"""Interactive shells: one shell on one channel, fed command lines through its stdin
(:class:`pssh.output.Stdin`, which writes through the shell's channel object)."""

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
            output = client.open_output(channel, encoding, read_timeout)
        self.output = output

    def run(self, cmd):
        """Send ``cmd`` followed by a newline to the shell; does not wait for it."""
        self.output.stdin.write(cmd.encode(self._encoding) + b"\n")

    def close(self):
        """Send EOF and wait for the shell to exit; returns the shell."""
        if self._chan is None:
            return None
        channel = self.output.channel_io
        if not channel.finished:
            try:
                channel.send_eof()
            except Exception:  # noqa: BLE001 - the channel may already be gone
                if not channel.finished:
                    raise
        channel.wait_finished()
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
