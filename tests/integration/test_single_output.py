"""SSHClient.run_command: what the output lines, streams and exit codes look like (real sshd)."""

import logging
import time

import pytest

from pssh.output import HostOutput

from single_client import READ_TIMEOUT, connect  # noqa: E402



def run(client, command, **kwargs):
    """Run ``command`` to completion; return (stdout lines, stderr lines, output)."""
    kwargs.setdefault("read_timeout", READ_TIMEOUT)
    out = client.run_command(command, **kwargs)
    stdout = list(out.stdout)
    stderr = list(out.stderr)
    client.wait_finished(out, timeout=READ_TIMEOUT)
    return stdout, stderr, out


# -- line splitting ---------------------------------------------------------------------------

def test_no_output_at_all(client):
    stdout, stderr, out = run(client, "true")
    assert (stdout, stderr, out.exit_code) == ([], [], 0)


def test_single_line_without_trailing_newline(client):
    stdout, _, _ = run(client, "printf 'last words'")
    assert stdout == ["last words"]


def test_crlf_is_one_separator(client):
    stdout, _, _ = run(client, r"printf 'one\r\ntwo\r\n'")
    assert stdout == ["one", "two"]


def test_empty_lines_are_yielded(client):
    stdout, _, _ = run(client, r"printf 'a\n\n\nb\n\n'")
    assert stdout == ["a", "", "", "b", ""]


def test_leading_and_trailing_spaces_kept(client):
    stdout, _, _ = run(client, r"printf '  both  \n\tTab\t\n'")
    assert stdout == ["  both  ", "\tTab\t"]


def test_lone_carriage_return_stays_inside_line(client):
    stdout, _, _ = run(client, r"printf 'progress 1\rprogress 2\ndone\n'")
    assert stdout == ["progress 1\rprogress 2", "done"]


def test_fifty_megabytes_counted_exactly(client):
    out = client.run_command(
        r"head -c 50000000 /dev/zero | tr '\0' 'a' | fold -w 100", read_timeout=120)
    expected = "a" * 100
    count = wrong = 0
    for line in out.stdout:
        count += 1
        if line != expected:
            wrong += 1
    client.wait_finished(out, timeout=READ_TIMEOUT)
    assert (count, wrong, out.exit_code) == (500000, 0, 0)


def test_unread_bytes_stay_small_while_the_reader_keeps_up(client):
    # The pump hands over every 256 KiB: a fast stream does not pile up the SSH window and
    # the socket backlog (megabytes) in front of a reader that keeps up.
    out = client.run_command(
        r"head -c 40000000 /dev/zero | tr '\0' 'b' | fold -w 100", read_timeout=120)
    unread = out.channel_state.stdout.data
    largest = count = 0
    for count, _line in enumerate(out.stdout, 1):
        if count % 500 == 0:
            largest = max(largest, len(unread))
    client.wait_finished(out, timeout=READ_TIMEOUT)
    assert (count, out.exit_code) == (400000, 0)
    assert 0 < largest <= 1024 * 1024, largest


def test_output_read_after_command_finished(client):
    # wait_finished does not need the output consumed, and nothing buffered is lost
    out = client.run_command("seq 1 20000", read_timeout=READ_TIMEOUT)
    client.wait_finished(out, timeout=READ_TIMEOUT)
    assert out.exit_code == 0
    assert list(out.stdout) == [str(i) for i in range(1, 20001)]


# -- decoding -----------------------------------------------------------------------------------

def test_non_utf8_output_is_escaped_by_default(client):
    stdout, _, out = run(client, r"printf 'ok\n\377\376bin\n'")
    assert out.decode_errors == "backslashreplace"
    assert stdout == ["ok", "\\xff\\xfebin"]


def test_strict_decode_errors_raise(client):
    out = client.run_command(r"printf '\377\n'", read_timeout=READ_TIMEOUT)
    client.wait_finished(out, timeout=READ_TIMEOUT)
    out.decode_errors = "strict"
    with pytest.raises(UnicodeDecodeError):
        list(out.stdout)


def test_strict_decode_error_loses_no_other_line(client):
    out = client.run_command(r"printf 'good1\n\377\ngood2\n'", read_timeout=READ_TIMEOUT)
    client.wait_finished(out, timeout=READ_TIMEOUT)
    out.decode_errors = "strict"
    seen = []
    with pytest.raises(UnicodeDecodeError):
        for line in out.stdout:
            seen.append(line)
    out.decode_errors = "backslashreplace"
    seen.extend(out.stdout)
    assert "good1" in seen and "good2" in seen


def test_latin1_encoding_for_command_and_output(client):
    stdout, _, out = run(client, "echo \u00e9t\u00e9", encoding="latin-1")
    assert out.fully_qualified_command == b"echo \xe9t\xe9"
    assert out.encoding == "latin-1"
    assert stdout == ["\u00e9t\u00e9"]


def test_encoding_changeable_before_reading(client):
    out = client.run_command(r"printf '\351\n'", read_timeout=READ_TIMEOUT)
    out.encoding = "latin-1"
    assert list(out.stdout) == ["\u00e9"]


def test_utf8_multibyte_characters(client):
    stdout, _, _ = run(client, "printf '\u00e9\u20ac\U0001F600\\n'")
    assert stdout == ["\u00e9\u20ac\U0001F600"]


# -- streams and exit codes ---------------------------------------------------------------------

def test_stderr_separate_from_stdout(client):
    stdout, stderr, out = run(client, "echo out1; echo err1 >&2; echo out2; echo err2 >&2")
    assert stdout == ["out1", "out2"]
    assert stderr == ["err1", "err2"]


@pytest.mark.parametrize("code", [0, 1, 255])
def test_exit_codes(client, code):
    _, _, out = run(client, "exit %d" % code)
    assert out.exit_code == code
    assert client.get_exit_status(out.channel) == code


def test_exit_code_known_once_stdout_is_exhausted(client):
    out = client.run_command("echo x; exit 3", read_timeout=READ_TIMEOUT)
    assert list(out.stdout) == ["x"]
    assert out.exit_code == 3


def test_killed_by_signal(client):
    out = client.run_command("kill -9 $$", read_timeout=READ_TIMEOUT)
    client.wait_finished(out, timeout=READ_TIMEOUT)
    # ssh2-python's get_exit_signal() loses the name; pssh reads it from libssh2 and
    # reports the shell convention 128 + signal number.
    assert (out.exit_code, out.exit_signal) == (128 + 9, "KILL")


def test_signal_sent_to_a_command_without_a_pty(client):
    out = client.run_command("echo started; exec sleep 30", read_timeout=READ_TIMEOUT)
    assert next(out.stdout) == "started"
    started = time.monotonic()
    assert out.channel_io.signal("TERM") is True
    client.wait_finished(out, timeout=READ_TIMEOUT)
    assert time.monotonic() - started < 10
    assert (out.exit_code, out.exit_signal) == (128 + 15, "TERM")
    assert out.channel_io.signal("TERM") is False  # closing: nothing more is sent
    for bad in ("SIGTERM", "term", "", "T" * 33, "TE RM", None):
        with pytest.raises(ValueError):
            out.channel_io.signal(bad)


def test_exit_code_none_until_finished(client):
    out = client.run_command("cat", read_timeout=READ_TIMEOUT)
    assert out.exit_code is None
    assert client.get_exit_status(out.channel) is None
    assert out.finished is False
    out.stdin.close()
    client.wait_finished(out, timeout=READ_TIMEOUT)
    assert out.exit_code == 0
    assert out.finished is True


# -- HostOutput as an object --------------------------------------------------------------------

def test_stdout_new_generator_each_access_shared_buffer(client):
    out = client.run_command(r"printf 'l1\nl2\nl3\nl4\n'", read_timeout=READ_TIMEOUT)
    client.wait_finished(out, timeout=READ_TIMEOUT)
    first, second = out.stdout, out.stdout
    assert first is not second
    assert next(first) == "l1"
    assert next(second) == "l2"
    assert list(out.stdout) == ["l3", "l4"]
    assert list(first) == [] and list(second) == []
    assert list(out.stdout) == []


def test_host_output_attributes(sshd, user_key):
    with connect(sshd, user_key, alias="web-1") as c:
        out = c.run_command("echo hi", read_timeout=READ_TIMEOUT)
        assert isinstance(out, HostOutput)
        assert (out.host, out.alias, out.client) == (sshd.host, "web-1", c)
        assert out.exception is None
        assert out.read_timeout == READ_TIMEOUT
        assert out.buffers.stdout.rw_buffer is not out.buffers.stderr.rw_buffer
        c.wait_finished(out, timeout=READ_TIMEOUT)
        text = repr(out)
        assert "host=%s" % sshd.host in text and "exit_code=0" in text
        assert str(out) == text


def test_deprecated_timeout_is_read_timeout(client):
    out = client.run_command("true", timeout=7)
    assert out.read_timeout == 7
    out = client.run_command("true", timeout=7, read_timeout=3)
    assert out.read_timeout == 3
    client.wait_finished(out, timeout=READ_TIMEOUT)


@pytest.mark.parametrize("kwargs, expected", [
    ({}, b"echo hi"),
    ({"sudo": True}, b"sudo -S $SHELL -c 'echo hi'"),
    ({"user": "bob"}, b"sudo -u bob -S $SHELL -c 'echo hi'"),
    ({"shell": "bash -c"}, b"bash -c 'echo hi'"),
    ({"sudo": True, "shell": "sh -c"}, b"sudo -S sh -c 'echo hi'"),
    ({"user": "bob", "shell": "sh -c"}, b"sudo -u bob -S sh -c 'echo hi'"),
])
def test_fully_qualified_command(client, kwargs, expected):
    out = client.run_command("echo hi", read_timeout=READ_TIMEOUT, **kwargs)
    assert out.fully_qualified_command == expected
    out.stdin.close()  # sudo -S may wait for a password
    client.wait_finished(out, timeout=READ_TIMEOUT)


def test_shell_wrapping_really_runs_that_shell(client):
    stdout, _, out = run(client, "echo $0", shell="sh -c")
    assert stdout == ["sh"]
    assert out.exit_code == 0


def test_host_logger_logs_lines_when_read(client, caplog):
    caplog.set_level(logging.INFO, logger="pssh.host_logger")
    run(client, "echo out-line; echo err-line >&2")
    messages = [r.getMessage() for r in caplog.records if r.name == "pssh.host_logger"]
    host = client.host
    assert "[%s]\tout-line" % host in messages
    assert "[%s]\t[err]\terr-line" % host in messages
