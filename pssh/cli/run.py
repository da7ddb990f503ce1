"""``pssh run``: start a command on every host, read each host's output as it arrives, and
record how each host ended.

The library's ``run_command`` starts the command everywhere (connecting as needed) and
returns once every host has started or failed; then one greenlet per host and stream reads
the lines and hands them to the output modes. Ctrl-C (KeyboardInterrupt in the main
greenlet) stops the readers and marks the hosts not finished as interrupted; closing the
client then closes their channels.
"""
import signal
from typing import List, Optional, Sequence

import gevent
import greenlet

from pssh.exceptions import PSSHError

from pssh.cli.output import STDERR, STDOUT, OutputMode
from pssh.cli.progress import ProgressDisplay
from pssh.cli.results import HostResult

__all__ = ["run_on_hosts", "quiet_expected_errors", "stop_unfinished", "feed_lines",
           "host_finished"]

# How long Ctrl-C waits for the greenlets it stops.
STOP_WAIT_SECONDS = 2


def quiet_expected_errors() -> None:
    """gevent prints a traceback for every greenlet that ends with an exception; a host's
    pssh or OS error is an expected outcome the CLI reports itself (a greenlet's error is
    still raised by ``get()``). Ctrl-C caught while the hub runs is still passed on to the
    main greenlet, only not printed."""
    hub = gevent.get_hub()
    quiet = tuple(kind for kind in (PSSHError, OSError, KeyboardInterrupt)
                  if kind not in hub.NOT_ERROR)
    hub.NOT_ERROR = tuple(hub.NOT_ERROR) + quiet


def interrupt_main_on_sigint():
    """Deliver Ctrl-C to the calling (main) greenlet only, from the hub, the way gevent passes
    on system errors; Python's own handler would raise it in whichever greenlet runs, which
    would then record it as that host's failure. Returns the handler (``cancel()`` it)."""
    main = greenlet.getcurrent()
    hub = gevent.get_hub()
    return gevent.signal_handler(
        signal.SIGINT, lambda: hub.loop.run_callback(main.throw, KeyboardInterrupt))


def stop_unfinished(results: Sequence[HostResult], greenlets: Sequence) -> None:
    """After Ctrl-C: kill ``greenlets`` (bounded) and mark every unfinished host."""
    gevent.killall([greenlet for greenlet in greenlets if greenlet is not None],
                   block=True, timeout=STOP_WAIT_SECONDS)
    for result in results:
        if not result.done:
            result.interrupted = True
            result.finish()


def feed_lines(result: HostResult, stream: str, lines, modes: Sequence[OutputMode],
               keep: bool) -> None:
    """Hand each line of a host's ``stream`` to the output modes (and keep it in ``result``
    when a mode needs it at the end)."""
    store = getattr(result, stream) if keep else None
    for text in lines:
        if store is not None:
            store.append(text)
        for mode in modes:
            mode.line(result, stream, text)


def host_finished(result: HostResult, modes: Sequence[OutputMode], progress: ProgressDisplay,
                  error: Optional[BaseException] = None) -> None:
    """Record how a host ended and tell the output modes and the progress display."""
    result.finish(error)
    for mode in modes:
        mode.host_done(result)
    progress.host_done(result)


class _Runner:
    def __init__(self, client, results: List[HostResult], modes: Sequence[OutputMode],
                 progress: ProgressDisplay):
        self.client = client
        self.results = results
        self.modes = modes
        self.progress = progress
        self.keep_lines = any(mode.keeps_output for mode in modes)

    def _read(self, result, stream, lines):
        feed_lines(result, stream, lines, self.modes, self.keep_lines)

    def _finished(self, result, error=None):
        host_finished(result, self.modes, self.progress, error)

    def drain(self, index, host_out):
        result = self.results[index]
        if host_out.exception is not None:
            self._finished(result, host_out.exception)
            return
        readers = [gevent.spawn(self._read, result, STDOUT, host_out.stdout),
                   gevent.spawn(self._read, result, STDERR, host_out.stderr)]
        try:
            error = self._first_error(readers)
            if error is None:
                self.client.join([host_out], timeout=self.client.timeout)
                result.exit_code = host_out.exit_code
                result.exit_signal = host_out.exit_signal
        except Exception as exc:  # noqa: BLE001 - a host's failure is its result
            error = exc
        finally:
            gevent.killall(readers, block=False)
        if isinstance(error, Exception) or error is None:
            self._finished(result, error)

    @staticmethod
    def _first_error(readers) -> Optional[BaseException]:
        """Wait for both streams; the first reader's error (the other is then stopped)."""
        pending = list(readers)
        while pending:
            finished = gevent.wait(pending, count=1)
            for greenlet in finished:
                pending.remove(greenlet)
                if greenlet.exception is not None:
                    return greenlet.exception
        return None


def run_on_hosts(client, results: List[HostResult], command: str,
                 modes: Sequence[OutputMode], progress: ProgressDisplay, *,
                 use_pty: bool = False, idle_timeout: Optional[float] = None,
                 read_timeout: Optional[float] = None) -> bool:
    """Run ``command`` on every host of ``client`` (``results`` in host order, updated in
    place); True when it ran to the end, False when interrupted by Ctrl-C."""
    runner = _Runner(client, results, modes, progress)
    drainers = []
    interrupted = False
    handler = interrupt_main_on_sigint()
    progress.start()
    try:
        try:
            outputs = client.run_command(command, stop_on_errors=False, use_pty=use_pty,
                                         idle_timeout=idle_timeout, read_timeout=read_timeout)
            progress.phase = "running"
            drainers = [gevent.spawn(runner.drain, index, host_out)
                        for index, host_out in enumerate(outputs)]
            gevent.joinall(drainers)
        except KeyboardInterrupt:
            interrupted = True
            stop_unfinished(results, list(drainers) + list(client.cmds or ()))
            client.pool.kill(block=True, timeout=STOP_WAIT_SECONDS)
    finally:
        handler.cancel()
        progress.stop()
    for mode in modes:
        mode.finish(results)
    return not interrupted
