"""SSHClient read_timeout, idle_timeout and wait_finished(timeout) against a real sshd."""

import time

import gevent
import pytest

from pssh.exceptions import Timeout

from single_client import connect  # noqa: E402
READ_TIMEOUT = 30
# Generous slack on timing upper bounds: the CI machine may be heavily loaded.
SLACK = 3




def read_with_guard(iterator, guard, into):
    """Append lines of ``iterator`` to ``into``; a hang fails the test after ``guard`` s."""
    with gevent.Timeout(guard, AssertionError("output iteration hung for %s s" % guard)):
        for line in iterator:
            into.append(line)


def finish(client, out):
    out.stdin.close()
    client.wait_finished(out, timeout=READ_TIMEOUT)


# -- read_timeout --------------------------------------------------------------------------------

def test_read_timeout_names_host_and_rest_stays_readable(client):
    out = client.run_command("echo first; read x; echo second $x", read_timeout=0.5)
    lines = []
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        read_with_guard(out.stdout, 10, lines)
    elapsed = time.monotonic() - started
    assert lines == ["first"]
    assert 0.4 <= elapsed < 0.5 + SLACK
    assert info.value.host == client.host
    assert client.host in str(info.value)
    assert isinstance(info.value, TimeoutError)
    # the command goes on; a new iterator gets what comes next
    out.stdin.write(b"go\n")
    out.read_timeout = READ_TIMEOUT
    assert list(out.stdout) == ["second go"]
    client.wait_finished(out, timeout=READ_TIMEOUT)
    assert out.exit_code == 0


def test_read_timeout_is_a_total_deadline(client):
    # lines keep arriving, yet the deadline of the whole iteration pass fires
    out = client.run_command("while true; do echo tick; sleep 0.05; done")
    first = []
    with gevent.Timeout(READ_TIMEOUT, AssertionError("no output at all")):
        first.append(next(out.stdout))  # output is flowing now
    out.read_timeout = 1
    lines = []
    started = time.monotonic()
    with pytest.raises(Timeout):
        read_with_guard(out.stdout, 10, lines)
    assert 0.9 <= time.monotonic() - started < 1 + SLACK
    assert first == ["tick"]
    assert len(lines) > 1 and set(lines) == {"tick"}
    client.close_channel(out.channel)


def test_read_timeout_on_stderr(client):
    out = client.run_command("echo e >&2; read x", read_timeout=0.5)
    lines = []
    with pytest.raises(Timeout):
        read_with_guard(out.stderr, 10, lines)
    assert lines == ["e"]
    finish(client, out)


def test_global_timeout_does_not_bound_reads(sshd, user_key):
    with connect(sshd, user_key) as c:
        c.timeout = 1  # set after connecting: a loaded host may need longer for the handshake
        out = c.run_command("sleep 1.5; echo late")
        assert out.read_timeout is None
        lines = []
        read_with_guard(out.stdout, 15, lines)
        assert lines == ["late"]


def test_read_timeout_with_partial_line_buffered(client):
    out = client.run_command("printf 'no newline yet'; read x", read_timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(Timeout):
            read_with_guard(out.stdout, 3, [])
        assert time.monotonic() - started < 0.5 + SLACK
    finally:
        finish(client, out)
    # the partial line is still there for the next reader
    assert list(out.stdout) == ["no newline yet"]


# -- idle_timeout --------------------------------------------------------------------------------

def test_idle_timeout_fires_on_silence(client):
    out = client.run_command("echo a; read x; echo b", idle_timeout=0.5)
    assert out.idle_timeout == 0.5
    lines = []
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        read_with_guard(out.stdout, 10, lines)
    assert 0.4 <= time.monotonic() - started < 0.5 + SLACK
    assert lines == ["a"]
    assert info.value.host == client.host
    assert "idle" in str(info.value)
    out.stdin.write("go\n")
    assert list(out.stdout) == ["b"]
    finish(client, out)


def test_idle_timeout_not_while_output_keeps_coming(client):
    # 30 lines over ~3 s, never silent for 2 s: no timeout, although the total exceeds it
    out = client.run_command("for i in $(seq 1 30); do echo $i; sleep 0.1; done",
                             idle_timeout=2, read_timeout=READ_TIMEOUT)
    lines = []
    started = time.monotonic()
    read_with_guard(out.stdout, READ_TIMEOUT, lines)
    assert lines == [str(i) for i in range(1, 31)]
    assert time.monotonic() - started > 2
    client.wait_finished(out, timeout=READ_TIMEOUT)


def test_idle_timeout_with_partial_line_buffered(client):
    out = client.run_command("printf 'prompt> '; read x", idle_timeout=0.5)
    try:
        with pytest.raises(Timeout):
            read_with_guard(out.stdout, 3, [])
    finally:
        finish(client, out)


def test_idle_and_read_timeout_together_read_wins(client):
    out = client.run_command("while true; do echo tick; sleep 0.05; done",
                             idle_timeout=5, read_timeout=0.5)
    with pytest.raises(Timeout) as info:
        read_with_guard(out.stdout, 10, [])
    assert "idle" not in str(info.value)
    client.close_channel(out.channel)


# -- wait_finished -------------------------------------------------------------------------------

def test_wait_finished_timeout(client):
    out = client.run_command("read x; exit 4")
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        client.wait_finished(out, timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 0.3 + SLACK
    assert info.value.host == client.host
    assert client.host in str(info.value)
    assert out.exit_code is None
    out.stdin.write("\n")
    client.wait_finished(out, timeout=READ_TIMEOUT)
    assert out.exit_code == 4


def test_wait_finished_needs_a_host_output(client):
    out = client.run_command("true")
    with pytest.raises(ValueError):
        client.wait_finished(out.channel)
    with pytest.raises(ValueError):
        client.wait_finished(None)
    client.wait_finished(out, timeout=READ_TIMEOUT)


def test_wait_finished_with_unread_large_output(client):
    # the pump buffers stdout and stderr, so finishing never needs a reader
    out = client.run_command("seq 1 200000 >&2; seq 1 200000")
    client.wait_finished(out, timeout=READ_TIMEOUT)
    assert out.exit_code == 0
    assert sum(1 for _ in out.stderr) == 200000
    assert sum(1 for _ in out.stdout) == 200000
