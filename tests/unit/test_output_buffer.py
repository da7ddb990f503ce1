"""pssh.output without a network: OutputBuffer line splitting and the HostOutput line iterators.

The iterator tests feed an OutputBuffer from a greenlet, the way the channel pump does.
"""

import logging
import time

import gevent
import pytest

from pssh.exceptions import ConnectionLostError, Timeout
from pssh.output import (
    DEFAULT_DECODE_ERRORS, BufferData, HostOutput, HostOutputBuffers, OutputBuffer)


def lines_of(*chunks, finish=True, encoding="utf-8", errors="strict"):
    buf = OutputBuffer()
    for chunk in chunks:
        buf.data += chunk
        buf.take_lines(encoding, errors)
    if finish:
        buf.finish()
        buf.take_lines(encoding, errors)
    return list(buf.lines)


# -- take_lines ----------------------------------------------------------------------------------

@pytest.mark.parametrize("data, expected", [
    (b"", []),
    (b"one\n", ["one"]),
    (b"one\ntwo\n", ["one", "two"]),
    (b"no newline", ["no newline"]),
    (b"a\r\nb\r\n", ["a", "b"]),
    (b"a\r\nb", ["a", "b"]),
    (b"x\ry\n", ["x\ry"]),
    (b"x\r\r\n", ["x\r"]),
    (b"\n", [""]),
    (b"\n\n", ["", ""]),
    (b"a\n\nb\n", ["a", "", "b"]),
    (b"\r\n\r\n", ["", ""]),
    (b"  padded  \n", ["  padded  "]),
    (b"\ttab\t", ["\ttab\t"]),
])
def test_splitting(data, expected):
    assert lines_of(data) == expected


def test_large_data_is_decoded_in_bounded_batches():
    from pssh.output import BATCH_BYTES
    lines = ["line %d \u00e9" % i for i in range(60000)]
    long_line = "x" * (BATCH_BYTES + 10)
    data = ("\r\n".join(lines[:30000]) + "\r\n" + long_line + "\n"
            + "\n".join(lines[30000:]) + "\nunterminated").encode()
    buf = OutputBuffer()
    buf.data += data
    buf.finish()
    got, batches = [], 0
    while True:
        buf.take_lines("utf-8", "strict")
        batch = list(buf.batch)
        if not batch:
            break
        batches += 1
        if long_line not in batch:
            assert sum(len(line) + 1 for line in batch) <= BATCH_BYTES + 64
        got.extend(batch)
    assert got == lines[:30000] + [long_line] + lines[30000:] + ["unterminated"]
    assert batches > len(data) // BATCH_BYTES - 1
    assert not buf.data


def test_lone_cr_at_end_of_final_partial_line_kept():
    assert lines_of(b"50%\r") == ["50%\r"]


def test_partial_line_waits_for_its_newline():
    buf = OutputBuffer()
    buf.data += b"first\nsec"
    buf.take_lines("utf-8", "strict")
    assert list(buf.lines) == ["first"]
    assert bytes(buf.data) == b"sec"
    buf.data += b"ond\nthi"
    buf.take_lines("utf-8", "strict")
    assert list(buf.lines) == ["first", "second"]
    buf.finish()
    buf.take_lines("utf-8", "strict")
    assert list(buf.lines) == ["first", "second", "thi"]
    assert not buf.data


def test_crlf_split_across_chunks():
    assert lines_of(b"a\r", b"\nb\r", b"\n") == ["a", "b"]


def test_multibyte_character_split_across_chunks():
    euro = "\u20ac".encode()
    assert lines_of(euro[:1], euro[1:2], euro[2:] + b"\n") == ["\u20ac"]


def test_take_lines_without_complete_line_is_a_no_op():
    buf = OutputBuffer()
    buf.take_lines("utf-8", "strict")
    buf.data += b"partial"
    buf.take_lines("utf-8", "strict")
    assert not buf.lines and bytes(buf.data) == b"partial"


def test_decode_errors_policies():
    data = b"ok\n\xff\xfeend\n"
    assert lines_of(data, errors="backslashreplace") == ["ok", "\\xff\\xfeend"]
    assert lines_of(data, errors="replace") == ["ok", "\ufffd\ufffdend"]
    with pytest.raises(UnicodeDecodeError):
        lines_of(data, errors="strict")
    assert DEFAULT_DECODE_ERRORS == "backslashreplace"


def test_other_encodings():
    assert lines_of("\u00e9t\u00e9\n".encode("latin-1"), encoding="latin-1") == ["\u00e9t\u00e9"]


def test_strict_decode_error_keeps_the_data():
    buf = OutputBuffer()
    buf.data += b"good1\n\xff\ngood2\n"
    with pytest.raises(UnicodeDecodeError):
        buf.take_lines("utf-8", "strict")
    buf.take_lines("utf-8", "backslashreplace")
    assert list(buf.lines) == ["good1", "\\xff", "good2"]


def test_read_returns_all_unread_bytes():
    buf = OutputBuffer()
    assert buf.read() is None
    buf.data += b"abc\npartial"
    assert buf.read() == b"abc\npartial"
    assert buf.read() is None


def test_finish_records_error_and_sets_event():
    buf = OutputBuffer()
    err = ConnectionLostError("lost")
    assert not buf.event.is_set()
    buf.finish(err)
    assert buf.finished and buf.error is err and buf.event.is_set()


# -- line iterators of HostOutput ----------------------------------------------------------------

def make_output(read_timeout=None, idle_timeout=None, host="unit-host"):
    out_buf, err_buf = OutputBuffer(), OutputBuffer()
    buffers = HostOutputBuffers(BufferData(None, out_buf), BufferData(None, err_buf))
    output = HostOutput(host, None, None, object(), read_timeout=read_timeout,
                        idle_timeout=idle_timeout, buffers=buffers)
    return output, out_buf, err_buf


def feed(buf, chunks, delay=0.0, finish=True, error=None):
    """Greenlet body: append chunks like the pump does, then finish the stream."""
    for chunk in chunks:
        if delay:
            gevent.sleep(delay)
        buf.data += chunk
        buf.notify()
    if finish:
        buf.finish(error)


def collect(iterator, guard=5):
    lines = []
    with gevent.Timeout(guard, AssertionError("line iterator hung")):
        for line in iterator:
            lines.append(line)
    return lines


def test_iterator_follows_the_writer():
    output, out_buf, _ = make_output()
    writer = gevent.spawn(feed, out_buf, [b"a\nb", b"c\n", b"", b"d"])
    assert collect(output.stdout) == ["a", "bc", "d"]
    writer.get()


def test_iterator_raises_stream_error_after_the_lines():
    output, out_buf, _ = make_output()
    err = ConnectionLostError("Connection to %s lost", "unit-host", host="unit-host")
    gevent.spawn(feed, out_buf, [b"x\n"], error=err)
    got = []
    with pytest.raises(ConnectionLostError) as info:
        with gevent.Timeout(5, AssertionError("line iterator hung")):
            for line in output.stdout:
                got.append(line)
    assert got == ["x"] and info.value is err


def test_stdout_and_stderr_are_independent():
    output, out_buf, err_buf = make_output()
    feed(out_buf, [b"o1\no2\n"])
    feed(err_buf, [b"e1\n"])
    assert collect(output.stderr) == ["e1"]
    assert collect(output.stdout) == ["o1", "o2"]


def test_decode_errors_and_encoding_read_at_iteration_time():
    output, out_buf, _ = make_output()
    feed(out_buf, [b"\xe9\n"])
    output.encoding = "latin-1"
    assert collect(output.stdout) == ["\u00e9"]


def test_read_timeout_names_host_and_keeps_unread_data():
    output, out_buf, _ = make_output(read_timeout=0.2)
    out_buf.data += b"one\n"
    started = time.monotonic()
    got = []
    with pytest.raises(Timeout) as info:
        with gevent.Timeout(5, AssertionError("line iterator hung")):
            for line in output.stdout:
                got.append(line)
    assert 0.15 <= time.monotonic() - started < 3
    assert got == ["one"]
    assert info.value.host == "unit-host" and "unit-host" in str(info.value)
    feed(out_buf, [b"two\n"])
    assert collect(output.stdout) == ["two"]


def test_idle_timeout_restarts_with_each_chunk():
    output, out_buf, _ = make_output(idle_timeout=0.5)
    gevent.spawn(feed, out_buf, [b"%d\n" % i for i in range(8)], delay=0.1, finish=False)
    got = []
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        with gevent.Timeout(10, AssertionError("line iterator hung")):
            for line in output.stdout:
                got.append(line)
    assert got == [str(i) for i in range(8)]
    assert time.monotonic() - started >= 0.5 + 0.7  # longer than one idle period in total
    assert "idle" in str(info.value)


def test_read_timeout_with_partial_line_buffered():
    output, out_buf, _ = make_output(read_timeout=0.2)
    out_buf.data += b"prompt> "
    with pytest.raises(Timeout):
        collect(output.stdout, guard=1.5)
    assert bytes(out_buf.data) == b"prompt> "


def test_idle_timeout_with_partial_line_buffered():
    output, out_buf, _ = make_output(idle_timeout=0.2)
    out_buf.data += b"prompt> "
    with pytest.raises(Timeout):
        collect(output.stdout, guard=1.5)


def test_host_logger_gets_lines_with_prefixes(caplog):
    caplog.set_level(logging.INFO, logger="pssh.host_logger")
    output, out_buf, err_buf = make_output()
    feed(out_buf, [b"out\n"])
    feed(err_buf, [b"err\n"])
    collect(output.stdout)
    collect(output.stderr)
    messages = [r.getMessage() for r in caplog.records if r.name == "pssh.host_logger"]
    assert messages == ["[unit-host]\tout", "[unit-host]\t[err]\terr"]


def test_host_output_without_client():
    output = HostOutput("h", None, None, None, exception=ValueError("failed"))
    assert output.stdout is None and output.stderr is None
    assert output.exit_code is None and output.exit_signal is None
    assert output.finished is False
    with pytest.raises(AttributeError):
        output.not_a_slot = 1
