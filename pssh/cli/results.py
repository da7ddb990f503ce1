"""Per-host outcomes, the exit summary and the exit status of a command-line run.

Exit status (README "Command line"):

===  ====================================================================================
0    every host ran the command (or transfer) and exited 0
1    every host was reached, but some command exited non-zero, was killed by a signal, or
     some transfer or command failed on a host it had reached
2    usage error (bad option, host list or file), nothing was run
3    some host could not be reached: connection refused or failed, name unknown,
     authentication or host key refused, or a timeout (takes precedence over 1)
130  interrupted (Ctrl-C); the summary shows what had finished
===  ====================================================================================
"""
import time
from typing import Any, Dict, List, Optional

from pssh.exceptions import (
    AuthenticationError, ConnectionError, HostKeyError, NoIPv6AddressFoundError,
    PKeyFileError, ProxyError, Timeout, UnknownHostError)

from pssh.cli.hosts import fold

__all__ = ["HostResult", "OK", "FAILED", "TIMED_OUT", "UNREACHABLE", "INTERRUPTED",
           "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_UNREACHABLE", "EXIT_INTERRUPTED",
           "summary_lines", "exit_status", "describe_error"]

OK, FAILED, TIMED_OUT, UNREACHABLE, INTERRUPTED = (
    "ok", "failed", "timed out", "unreachable", "interrupted")
STATUSES = (OK, FAILED, TIMED_OUT, UNREACHABLE, INTERRUPTED)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

# Failures to reach a host at all (before anything ran on it).
_UNREACHABLE_ERRORS = (ConnectionError, UnknownHostError, AuthenticationError, HostKeyError,
                       ProxyError, PKeyFileError, NoIPv6AddressFoundError)


class HostResult:
    """What happened on one host: its label (display name), exit code and signal, the output
    lines kept (only when the output mode needs them), the error, and the time taken."""

    __slots__ = ("label", "host", "exit_code", "exit_signal", "stdout", "stderr", "error",
                 "started", "ended", "interrupted", "bytes_done")

    def __init__(self, label: str, host: str):
        self.label = label
        self.host = host
        self.exit_code: Optional[int] = None
        self.exit_signal: Optional[str] = None
        self.stdout: List[str] = []
        self.stderr: List[str] = []
        self.error: Optional[BaseException] = None
        self.started = time.monotonic()
        self.ended: Optional[float] = None
        self.interrupted = False
        self.bytes_done = 0

    def finish(self, error: Optional[BaseException] = None) -> None:
        if error is not None and self.error is None:
            self.error = error
        if self.ended is None:
            self.ended = time.monotonic()

    @property
    def done(self) -> bool:
        return self.ended is not None

    @property
    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    @property
    def status(self) -> str:
        if self.interrupted:
            return INTERRUPTED
        if isinstance(self.error, Timeout):
            return TIMED_OUT
        if isinstance(self.error, _UNREACHABLE_ERRORS) and self.exit_code is None:
            return UNREACHABLE
        if self.error is not None or self.exit_code != 0:
            return FAILED
        return OK

    def as_dict(self, with_output: bool = True) -> Dict[str, Any]:
        record = {"host": self.label, "status": self.status, "exit_code": self.exit_code,
                  "exit_signal": self.exit_signal,
                  "error": None if self.error is None else describe_error(self.error),
                  "error_type": None if self.error is None else type(self.error).__name__,
                  "elapsed": round(self.elapsed, 3)}
        if with_output:
            record.update(stdout=self.stdout, stderr=self.stderr)
        return record


def describe_error(error: BaseException) -> str:
    """One line naming the failure (pssh errors already name their host)."""
    text = str(error).strip().replace("\n", " ") or type(error).__name__
    return "%s: %s" % (type(error).__name__, text)


def failure_line(result: HostResult) -> Optional[str]:
    """The line reporting ``result``'s failure, or None when it succeeded."""
    if result.status == INTERRUPTED:
        return "%s: interrupted" % result.label
    if result.error is not None:
        return "%s: %s: %s" % (result.label, result.status, describe_error(result.error))
    if result.exit_signal:
        return "%s: killed by signal %s" % (result.label, result.exit_signal)
    if result.exit_code not in (0, None):
        return "%s: exited with exit code %d" % (result.label, result.exit_code)
    return None


def summary_lines(results: List[HostResult], verb: str = "ran on") -> List[str]:
    """The exit summary: counts per outcome and the hosts of each failed outcome, folded."""
    by_status = {status: [] for status in STATUSES}
    for result in results:
        by_status[result.status].append(result.label)
    counts = ", ".join("%d %s" % (len(by_status[status]), status) for status in STATUSES
                       if by_status[status] or status in (OK, FAILED))
    lines = ["pssh: %s %d hosts: %s" % (verb, len(results), counts)]
    for status in STATUSES[1:]:
        if by_status[status]:
            lines.append("pssh: %s: %s" % (status, fold(by_status[status])))
    return lines


def exit_status(results: List[HostResult]) -> int:
    statuses = {result.status for result in results}
    if INTERRUPTED in statuses:
        return EXIT_INTERRUPTED
    if statuses & {UNREACHABLE, TIMED_OUT}:
        return EXIT_UNREACHABLE
    if FAILED in statuses:
        return EXIT_FAILED
    return EXIT_OK
