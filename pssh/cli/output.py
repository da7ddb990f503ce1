"""Output modes of ``pssh run``: what happens to each line and each finished host.

* inline: ``host: line`` on standard output (remote stderr: ``host [err]: line`` on standard
  error) as the lines are read; failures on standard error as hosts finish.
* fold: identical outputs gathered once under the folded set of hosts that produced them
  (as ``clush -b``), stdout groups, then stderr groups, then the failures.
* json: one JSON object per host per line on standard output when the host finishes.
* files (``--outdir``/``--errdir``, with any of the above): a file per host named after it.

Terminal writes go through ``sys.stdout``/``sys.stderr`` looked up at each call, so that a
live progress display that redirects them keeps its place at the bottom.
"""
import json
import os
import sys
from typing import Dict, List, Optional, TextIO

from pssh.cli.hosts import fold
from pssh.cli.results import HostResult, failure_line

__all__ = ["OutputMode", "InlineOutput", "FoldOutput", "JsonOutput", "FileOutput",
           "unsafe_file_name"]

STDOUT, STDERR = "stdout", "stderr"


def _out() -> TextIO:
    return sys.stdout


def _err() -> TextIO:
    return sys.stderr


class OutputMode:
    """Receives every line read and every host as it finishes; ``finish`` once at the end.
    ``keeps_output``: the runner stores the lines in each HostResult for this mode."""

    keeps_output = False

    def line(self, result: HostResult, stream: str, text: str) -> None:
        pass

    def host_done(self, result: HostResult) -> None:
        pass

    def finish(self, results: List[HostResult]) -> None:
        pass


def report_failure(result: HostResult) -> None:
    message = failure_line(result)
    if message:
        _err().write("pssh: %s\n" % message)
        _err().flush()


class InlineOutput(OutputMode):
    def line(self, result, stream, text):
        if stream == STDOUT:
            _out().write("%s: %s\n" % (result.label, text))
            _out().flush()
        else:
            _err().write("%s [err]: %s\n" % (result.label, text))
            _err().flush()

    def host_done(self, result):
        report_failure(result)


class FoldOutput(OutputMode):
    keeps_output = True

    def finish(self, results):
        for stream in (STDOUT, STDERR):
            groups: Dict[tuple, List[str]] = {}
            for result in results:
                lines = tuple(getattr(result, stream))
                if lines or (stream == STDOUT and result.error is None
                             and not result.interrupted):
                    groups.setdefault(lines, []).append(result.label)
            for lines, labels in groups.items():
                self._group(fold(labels), len(labels), stream, lines)
        for result in results:
            report_failure(result)

    @staticmethod
    def _group(host_set, count, stream, lines):
        title = "%s (%d)%s" % (host_set, count, "" if stream == STDOUT else " stderr")
        rule = "-" * min(max(len(title), 15), 78)
        out = _out()
        out.write("%s\n%s\n%s\n" % (rule, title, rule))
        for text in lines:
            out.write(text + "\n")
        out.flush()


class JsonOutput(OutputMode):
    keeps_output = True

    def host_done(self, result):
        _out().write(json.dumps(result.as_dict(), ensure_ascii=False) + "\n")
        _out().flush()


def unsafe_file_name(label: str) -> bool:
    """True when ``label`` cannot be a file name inside the output directory."""
    return (label in ("", ".", "..") or "\0" in label
            or any(sep in label for sep in (os.sep, os.altsep, "/") if sep))


class FileOutput(OutputMode):
    """A file per host in ``outdir`` (stdout) and ``errdir`` (stderr), created for every host
    that ran, empty when it printed nothing."""

    def __init__(self, outdir: Optional[str], errdir: Optional[str]):
        self.dirs = {STDOUT: outdir, STDERR: errdir}
        self.files: Dict[tuple, TextIO] = {}
        for directory in self.dirs.values():
            if directory:
                os.makedirs(directory, exist_ok=True)

    def _file(self, result, stream):
        key = (result.label, stream)
        handle = self.files.get(key)
        if handle is None and self.dirs[stream]:
            handle = self.files[key] = open(os.path.join(self.dirs[stream], result.label),
                                            "w", encoding="utf-8", errors="backslashreplace")
        return handle

    def line(self, result, stream, text):
        handle = self._file(result, stream)
        if handle is not None:
            handle.write(text + "\n")

    def host_done(self, result):
        if result.error is not None and result.exit_code is None \
                and not self.files.get((result.label, STDOUT)):
            return  # it never ran: no file
        for stream in (STDOUT, STDERR):
            handle = self._file(result, stream)
            if handle is not None:
                handle.close()
                self.files.pop((result.label, stream))

    def finish(self, results):
        for handle in self.files.values():
            handle.close()
        self.files.clear()
