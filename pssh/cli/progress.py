"""Progress of a run or transfer: a live display on a terminal (rich), plain lines or nothing
otherwise.

The live display is redrawn by a greenlet on the gevent hub (rich's own refresh thread is
not used: every other wait of the process is on the hub), on standard error, and redirects
``sys.stdout``/``sys.stderr`` while it runs so that output lines scroll above it.
"""
import sys
import time
from typing import List, Optional

import gevent
from rich.console import Console
from rich.filesize import decimal
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from pssh.cli.results import OK, HostResult

__all__ = ["make_progress", "on_terminal", "ProgressDisplay"]

REFRESH_SECONDS = 0.2
SLOWEST_SHOWN = 3


def on_terminal() -> bool:
    """True when both standard output and standard error are terminals."""
    return sys.stdout.isatty() and sys.stderr.isatty()


class ProgressDisplay:
    """Nothing shown; the base of the displays. ``results`` are the hosts' records (updated
    in place by the runner); ``phase`` says what is going on."""

    def __init__(self, title: str, results: List[HostResult], count_bytes: bool = False):
        self.title = title
        self.results = results
        self.count_bytes = count_bytes
        self.phase = "connecting"
        self.begun = time.monotonic()

    def start(self) -> None:
        pass

    def host_done(self, result: HostResult) -> None:
        pass

    def stop(self) -> None:
        pass

    def bytes_done(self) -> int:
        return sum(result.bytes_done for result in self.results)

    def state_text(self) -> str:
        done = [result for result in self.results if result.done]
        failed = sum(1 for result in done if result.status != OK)
        parts = ["%s %d/%d done" % (self.title, len(done), len(self.results)),
                 "%d failed" % failed]
        if self.count_bytes:
            elapsed = max(time.monotonic() - self.begun, 1e-3)
            total = self.bytes_done()
            parts.append("%s, %s/s" % (decimal(total), decimal(int(total / elapsed))))
        running = sorted((result for result in self.results if not result.done),
                         key=lambda result: result.started)
        if running:
            parts.append("%s: %s" % (self.phase, len(running)))
            parts.append("slowest: " + ", ".join(
                "%s %.1fs" % (result.label, result.elapsed)
                for result in running[:SLOWEST_SHOWN]))
        return " · ".join(parts)


class PlainProgress(ProgressDisplay):
    """A line on standard error per host as it finishes (for transfers off a terminal)."""

    def host_done(self, result):
        if result.status == OK:
            size = " %s" % decimal(result.bytes_done) if self.count_bytes else ""
            sys.stderr.write("pssh: %s: done%s in %.1f s\n" % (result.label, size,
                                                               result.elapsed))
            sys.stderr.flush()


class LiveProgress(ProgressDisplay):
    """A bar and a status line at the bottom of the terminal, redrawn on the hub."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.console = Console(stderr=True)
        self.live: Optional[Live] = None
        self.ticker = None

    def _render(self):
        done = sum(1 for result in self.results if result.done)
        line = Table.grid(padding=(0, 1))
        line.add_row(ProgressBar(total=max(len(self.results), 1), completed=done, width=30),
                     Text(self.state_text()))
        return line

    def start(self):
        self.live = Live(get_renderable=self._render, console=self.console,
                         auto_refresh=False, redirect_stdout=True, redirect_stderr=True)
        self.live.start()
        self.ticker = gevent.spawn(self._tick)

    def _tick(self):
        while True:
            gevent.sleep(REFRESH_SECONDS)
            self.live.refresh()

    def stop(self):
        if self.ticker is not None:
            self.ticker.kill(block=False)
            self.ticker = None
        if self.live is not None:
            self.live.refresh()
            self.live.stop()
            self.live = None


def make_progress(mode: Optional[bool], title: str, results: List[HostResult],
                  count_bytes: bool = False, plain_lines: bool = False) -> ProgressDisplay:
    """The display for ``mode`` (True: live, False: none, None: live on a terminal, else
    plain lines when ``plain_lines``, else none)."""
    live = on_terminal() if mode is None else mode
    if live:
        return LiveProgress(title, results, count_bytes)
    if plain_lines and mode is None:
        return PlainProgress(title, results, count_bytes)
    return ProgressDisplay(title, results, count_bytes)
