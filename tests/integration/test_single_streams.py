"""SSHClient: stdin, several commands at once on one connection, and object lifetime."""

import gc
import hashlib
import os
import weakref

import gevent
import pytest

from pssh.exceptions import PSSHError

from single_client import connect  # noqa: E402
READ_TIMEOUT = 60




# -- stdin ---------------------------------------------------------------------------------------

def test_stdin_bytes_and_str_reach_the_command_exactly(client):
    out = client.run_command("wc -c", read_timeout=READ_TIMEOUT)
    assert out.stdin.write(b"abc\x00\xff\n") == 6
    assert out.stdin.write("\u00e9\n") == 3  # str: encoded with the output's encoding (utf-8)
    out.stdin.flush()
    out.stdin.close()
    assert [line.strip() for line in out.stdout] == ["9"]
    client.wait_finished(out, timeout=READ_TIMEOUT)
    assert out.exit_code == 0


def test_stdin_roundtrip_through_cat(client):
    out = client.run_command("cat", read_timeout=READ_TIMEOUT)
    out.stdin.write("first line\n")
    out.stdin.write("second, no newline")
    out.stdin.send_eof()
    assert list(out.stdout) == ["first line", "second, no newline"]


def test_stdin_str_uses_command_encoding(client):
    out = client.run_command("od -An -tx1", encoding="latin-1", read_timeout=READ_TIMEOUT)
    out.stdin.write("\u00e9")
    out.stdin.close()
    assert [line.strip() for line in out.stdout] == ["e9"]


def test_ten_megabytes_of_stdin(client):
    data = os.urandom(10 * 1024 * 1024)
    out = client.run_command("sha256sum; echo done >&2", read_timeout=READ_TIMEOUT)
    assert out.stdin.write(data) == len(data)
    out.stdin.close()
    lines = list(out.stdout)
    assert lines == ["%s  -" % hashlib.sha256(data).hexdigest()]
    assert list(out.stderr) == ["done"]


def test_stdin_writer_and_output_reader_concurrently(client):
    # cat echoes while we still write: the writer and the channel pump share the session
    chunk = b"x" * 99 + b"\n"
    count = 20000
    out = client.run_command("cat", read_timeout=READ_TIMEOUT)

    def writer():
        for _ in range(count // 100):
            out.stdin.write(chunk * 100)
        out.stdin.close()

    w = gevent.spawn(writer)
    lines = 0
    for line in out.stdout:
        assert line == "x" * 99
        lines += 1
    w.get(timeout=READ_TIMEOUT)
    assert lines == count


def test_stdin_after_the_command_finished(client):
    out = client.run_command("true", read_timeout=READ_TIMEOUT)
    client.wait_finished(out, timeout=READ_TIMEOUT)
    out.stdin.close()  # EOF to a finished command: nothing to do, no error
    with pytest.raises(PSSHError) as info:
        with gevent.Timeout(10, AssertionError("stdin write hung on a closed channel")):
            out.stdin.write(b"too late\n")
    assert info.value.host == client.host


def test_stdin_write_blocks_on_flow_control_and_close_fails_it(sshd, user_key):
    c = connect(sshd, user_key)
    out = c.run_command("sleep 30")  # never reads its stdin
    writer = gevent.spawn(out.stdin.write, b"x" * 50000000)
    writer.join(timeout=0.5)
    assert not writer.dead  # the SSH window is full: the write waits for the remote side
    c.close()
    with pytest.raises(PSSHError) as info:
        writer.get(timeout=5)
    assert info.value.host == sshd.host


# -- several commands on one connection ------------------------------------------------------------

def test_eight_concurrent_commands_get_their_own_lines(client):
    n_lines = 5000
    outputs = [
        client.run_command(
            "i=0; while [ $i -lt 50 ]; do echo e%d-$i >&2; i=$((i+1)); done; "
            "seq -f 'c%d-%%g' 1 %d" % (k, k, n_lines), read_timeout=READ_TIMEOUT)
        for k in range(8)]

    def read(out):
        return list(out.stdout), list(out.stderr)

    readers = [gevent.spawn(read, out) for out in outputs]
    gevent.joinall(readers, timeout=READ_TIMEOUT, raise_error=True)
    for k, reader in enumerate(readers):
        assert reader.ready(), "reader %d did not finish" % k
        stdout, stderr = reader.value
        assert stdout == ["c%d-%d" % (k, i) for i in range(1, n_lines + 1)]
        assert stderr == ["e%d-%d" % (k, i) for i in range(50)]
        assert outputs[k].exit_code == 0


def test_concurrent_commands_with_different_exit_codes(client):
    outputs = [client.run_command("read x; exit %d" % code) for code in range(5)]
    for out in reversed(outputs):
        out.stdin.write("\n")
    for out in outputs:
        client.wait_finished(out, timeout=READ_TIMEOUT)
    assert [out.exit_code for out in outputs] == list(range(5))


def test_many_sequential_commands_on_one_client(client):
    for i in range(30):
        out = client.run_command("echo %d" % i, read_timeout=READ_TIMEOUT)
        assert list(out.stdout) == [str(i)]
        client.wait_finished(out, timeout=READ_TIMEOUT)
        assert out.exit_code == 0


# -- lifetime ------------------------------------------------------------------------------------

def test_client_dropped_while_output_is_read(sshd, user_key):
    c = connect(sshd, user_key)
    ref = weakref.ref(c)
    out = c.run_command("seq 1 50000; exit 7", read_timeout=READ_TIMEOUT)
    lines = out.stdout
    assert next(lines) == "1"
    del c
    gc.collect()
    rest = list(lines)
    assert rest == [str(i) for i in range(2, 50001)]
    assert ref() is not None and out.client is ref()
    out.client.wait_finished(out, timeout=READ_TIMEOUT)
    assert out.exit_code == 7
    out.client.close()


def test_client_and_output_dropped_are_collected(sshd, user_key):
    # keepalive timer and channel pumps must not keep a client alive forever
    c = connect(sshd, user_key, keepalive_seconds=1)
    out = c.run_command("echo x", read_timeout=READ_TIMEOUT)
    assert list(out.stdout) == ["x"]
    c.wait_finished(out, timeout=READ_TIMEOUT)
    ref = weakref.ref(c)
    out_ref = weakref.ref(out)
    del c, out
    gc.collect()
    assert out_ref() is None
    assert ref() is None


def test_output_of_closed_client_still_readable(client):
    out = client.run_command("seq 1 1000", read_timeout=READ_TIMEOUT)
    client.wait_finished(out, timeout=READ_TIMEOUT)
    client.close()
    assert list(out.stdout) == [str(i) for i in range(1, 1001)]
    assert out.exit_code == 0
