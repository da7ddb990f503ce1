"""Channel-level attacks from a crafted server (tests/hostile/toolkit/crafted_server.py).

A malformed ``exit-signal`` must not hand out heap memory as a signal name; a server that
never answers a channel request, never opens its window or sends data after EOF/close must
fail only its own host, with a clear PSSHError within the configured timeout.
"""
import gc
import logging
import time

import gevent
import paramiko
import pytest
from paramiko.common import cMSG_CHANNEL_CLOSE

from pssh.config import HostConfig
from pssh.exceptions import OutputBufferFullError, SessionError, Timeout
from pssh.parallel import ParallelSSHClient
from pssh.single import SSHClient

from toolkit.crafted_server import (
    CraftedServer, exit_signal_fields, send_channel_request, send_raw_data)

TIMEOUT = 2       # the client's timeout in the stall tests
SLACK = 4         # a loaded CI machine
GUARD = 20        # no test may hang longer than this


def connect(server, key, tmp_path, **kwargs):
    options = dict(port=server.port, pkey=key.private, num_retries=1, timeout=10,
                   allow_agent=False, identity_auth=False,
                   known_hosts=[str(tmp_path / "known_hosts")])
    options.update(kwargs)
    return SSHClient(server.host, **options)


def run_script(script, key, tmp_path, **server_options):
    """Run one command on a crafted server scripted by ``script``; the finished output."""
    with CraftedServer(script, **server_options) as server, gevent.Timeout(GUARD):
        client = connect(server, key, tmp_path)
        try:
            output = client.run_command("anything")
            stdout = list(output.stdout)
            client.wait_finished(output, timeout=10)
        finally:
            client.close()
    assert not server.errors
    return output, stdout


def _signal_script(payload, status=None):
    def script(channel, command):
        channel.sendall(b"out\n")
        if status is not None:
            channel.send_exit_status(status)
        send_channel_request(channel, "exit-signal", payload)
        channel.shutdown_write()
        channel.close()
    return script


# -- exit-signal --------------------------------------------------------------------------------

def test_valid_exit_signal_is_reported(user_key, tmp_path):
    output, stdout = run_script(_signal_script(exit_signal_fields(b"KILL")), user_key, tmp_path)
    assert stdout == ["out"]
    assert (output.exit_signal, output.exit_code) == ("KILL", 128 + 9)


MALFORMED_NAMES = {
    # libssh2 1.11.1 allocates the declared 1000 bytes and copies nothing: heap memory.
    "declared-length-beyond-packet": exit_signal_fields(b"KILL", declared_length=1000),
    "declared-length-just-beyond": exit_signal_fields(b"KILL", declared_length=40),
    "lowercase": exit_signal_fields(b"kill"),
    "1000-bytes": exit_signal_fields(b"K" * 1000),
    "non-ascii": exit_signal_fields("KILLÉ".encode("utf-8")),
    "empty": exit_signal_fields(b""),
}


@pytest.mark.parametrize("payload", list(MALFORMED_NAMES.values()), ids=list(MALFORMED_NAMES))
def test_malformed_exit_signal_is_ignored_and_logged(payload, user_key, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="pssh"):
        output, stdout = run_script(_signal_script(payload, status=3), user_key, tmp_path)
    assert stdout == ["out"]
    assert output.exit_signal is None
    assert output.exit_code == 3        # what the server sent as exit-status
    warnings = [record.getMessage() for record in caplog.records
                if "malformed exit-signal" in record.getMessage()]
    assert warnings and "127.0.0.1" in warnings[0]


def test_malformed_exit_signal_without_status_is_not_a_success(user_key, tmp_path):
    payload = exit_signal_fields(b"KILL", declared_length=1000)
    output, _ = run_script(_signal_script(payload), user_key, tmp_path)
    assert output.exit_signal is None
    assert output.exit_code == 255


def test_exit_signal_length_libssh2_cannot_allocate_fails_that_host(user_key, tmp_path):
    # libssh2 refuses a declared length of 2**32-1 with an allocation error on the session.
    payload = exit_signal_fields(b"KILL", declared_length=0xFFFFFFFF)
    with pytest.raises(SessionError) as info:
        run_script(_signal_script(payload, status=3), user_key, tmp_path)
    assert info.value.host == "127.0.0.1" and "AllocError" in str(info.value)


# -- requests never answered --------------------------------------------------------------------

@pytest.mark.parametrize("stall", ["answer_open", "answer_exec"])
def test_unanswered_channel_request_times_out(stall, user_key, tmp_path):
    with CraftedServer(**{stall: False}) as server, gevent.Timeout(GUARD):
        client = connect(server, user_key, tmp_path, timeout=TIMEOUT)
        started = time.monotonic()
        with pytest.raises(Timeout) as info:
            client.run_command("anything")
        elapsed = time.monotonic() - started
        client.close()
    assert server.stalled.is_set()
    assert TIMEOUT - 0.5 <= elapsed < TIMEOUT + SLACK
    assert info.value.host == "127.0.0.1" and "127.0.0.1" in str(info.value)


def test_unanswered_exec_is_bounded_without_a_timeout(user_key, tmp_path, monkeypatch):
    monkeypatch.setattr(SSHClient, "DEFAULT_CONNECT_TIMEOUT", TIMEOUT)
    with CraftedServer(answer_exec=False) as server, gevent.Timeout(GUARD):
        client = connect(server, user_key, tmp_path, timeout=None)
        started = time.monotonic()
        with pytest.raises(Timeout):
            client.run_command("anything")
        elapsed = time.monotonic() - started
        client.close()
    assert TIMEOUT - 0.5 <= elapsed < TIMEOUT + SLACK


def test_unanswered_exec_fails_only_that_host(sshd, user_key, tmp_path):
    with CraftedServer(answer_exec=False) as server, gevent.Timeout(GUARD):
        client = ParallelSSHClient(
            [server.host, sshd.host], pkey=user_key.private, num_retries=1, timeout=TIMEOUT,
            allow_agent=False, identity_auth=False, known_hosts=[str(tmp_path / "kh")],
            host_config=[HostConfig(port=server.port), HostConfig(port=sshd.port,
                                                                  user=sshd.user)])
        started = time.monotonic()
        stalled, healthy = client.run_command("echo healthy", stop_on_errors=False)
        elapsed = time.monotonic() - started
        assert list(healthy.stdout) == ["healthy"]
        client.join(timeout=10)
        assert healthy.exit_code == 0 and healthy.exception is None
        client.close()
    assert isinstance(stalled.exception, Timeout)
    assert elapsed < TIMEOUT + SLACK


# -- a window that never opens -------------------------------------------------------------------

def test_stdin_write_into_closed_window_times_out(user_key, tmp_path):
    def script(channel, command):
        # Reads nothing: paramiko re-opens the window only as the server reads.
        channel.get_transport().server_object.server.stop_event.wait(GUARD)

    with CraftedServer(script, window_size=32768) as server, gevent.Timeout(GUARD):
        client = connect(server, user_key, tmp_path, timeout=TIMEOUT)
        output = client.run_command("cat")
        started = time.monotonic()
        with pytest.raises(Timeout) as info:
            output.stdin.write(b"x" * (1024 * 1024))
        elapsed = time.monotonic() - started
        client.close()
    assert TIMEOUT - 0.5 <= elapsed < TIMEOUT + SLACK
    assert info.value.host == "127.0.0.1" and "127.0.0.1" in str(info.value)


# -- protocol violations after the end ----------------------------------------------------------

def _late_data_script(channel, command):
    channel.sendall(b"one\n")
    channel.send_exit_status(5)
    channel.send_exit_status(6)          # a second exit-status
    channel.shutdown_write()             # EOF ...
    send_raw_data(channel, b"after-eof\n")   # ... then more data
    channel.close()
    send_raw_data(channel, b"after-close\n")


def test_data_after_eof_and_close_and_second_exit_status(user_key, tmp_path):
    results = set()
    for _ in range(3):
        output, stdout = run_script(_late_data_script, user_key, tmp_path)
        assert output.exception is None
        # libssh2 queues what follows EOF or CLOSE like any data; what matters: no
        # duplicate, no loss of what came before, no hang, the same result every time.
        assert stdout[0] == "one" and len(stdout) == len(set(stdout))
        assert output.exit_code == 6 and output.exit_signal is None   # the last status
        results.add((tuple(stdout), output.exit_code))
    assert len(results) == 1, results    # deterministic


def test_close_without_eof_then_truncated_exit_status(user_key, tmp_path):
    # CLOSE with no EOF before it (libssh2 then never reports EOF), then data and a
    # truncated exit-status for the closed channel: the output ends, nothing is invented.
    def script(channel, command):
        channel.sendall(b"x\n")
        message = paramiko.Message()
        message.add_byte(cMSG_CHANNEL_CLOSE)
        message.add_int(channel.remote_chanid)
        channel.transport._send_user_message(message)
        send_raw_data(channel, b"late\n")
        send_channel_request(channel, "exit-status", b"\0")

    output, stdout = run_script(script, user_key, tmp_path)
    assert stdout[0] == "x" and len(stdout) == len(set(stdout))
    assert output.exception is None
    assert output.exit_code == 0 and output.exit_signal is None


# -- a flood on the stream nobody reads (real sshd) ----------------------------------------------

CAP = 1024 * 1024
# What may sit in the buffer beyond the cap: libssh2's receive window (2 MiB) and one read.
WINDOW_SLACK = 4 * 1024 * 1024
LINE = "E" * 63


def connect_sshd(sshd, key, tmp_path, **kwargs):
    options = dict(port=sshd.port, user=sshd.user, pkey=key.private, num_retries=1,
                   timeout=10, allow_agent=False, identity_auth=False,
                   known_hosts=[str(tmp_path / "known_hosts")])
    options.update(kwargs)
    return SSHClient(sshd.host, **options)


def test_unread_stderr_flood_is_bounded_and_reading_stdout_fails_fast(sshd, user_key,
                                                                       tmp_path):
    with gevent.Timeout(GUARD):
        client = connect_sshd(sshd, user_key, tmp_path, max_unread_output=CAP)
        other = connect_sshd(sshd, user_key, tmp_path)
        output = client.run_command("head -c 1G /dev/zero >&2; echo done")
        started = time.monotonic()
        with pytest.raises(OutputBufferFullError) as info:
            list(output.stdout)
        assert time.monotonic() - started < SLACK
        assert info.value.stream == "stderr" and info.value.host == sshd.host
        assert "stderr" in str(info.value) and "max_unread_output" in str(info.value)
        stderr_buffer = output.buffers.stderr.rw_buffer.data
        held = len(stderr_buffer)
        assert CAP <= held < CAP + WINDOW_SLACK
        gevent.sleep(1)
        assert len(stderr_buffer) == held        # the channel is no longer read
        with pytest.raises(OutputBufferFullError):
            client.wait_finished(output, timeout=10)
        # the same server, another connection: unaffected
        healthy = other.run_command("echo fine")
        assert list(healthy.stdout) == ["fine"]
        other.wait_finished(healthy, timeout=10)
        assert healthy.exit_code == 0
        other.close()
        client.close()
        # closing ends the paused pump: readers get the closed-client error, no hang
        output.buffers.stdout.reader.join(5)
        assert output.buffers.stdout.reader.dead
        with pytest.raises(SessionError):
            list(output.stdout)


def test_parallel_client_passes_max_unread_output_to_its_hosts(sshd, user_key, tmp_path):
    with gevent.Timeout(GUARD):
        client = ParallelSSHClient(
            [sshd.host, sshd.host], port=sshd.port, user=sshd.user, pkey=user_key.private,
            num_retries=1, timeout=10, allow_agent=False, identity_auth=False,
            known_hosts=[str(tmp_path / "known_hosts")], max_unread_output=CAP)
        outputs = client.run_command("head -c 1G /dev/zero >&2; echo done")
        for output in outputs:
            assert output.max_unread_output == CAP
            with pytest.raises(OutputBufferFullError) as info:
                list(output.stdout)
            assert info.value.stream == "stderr" and info.value.host == sshd.host
            assert CAP <= len(output.buffers.stderr.rw_buffer.data) < CAP + WINDOW_SLACK
        client.close()


def test_reading_the_full_stream_resumes_the_command(sshd, user_key, tmp_path):
    with gevent.Timeout(GUARD):
        client = connect_sshd(sshd, user_key, tmp_path, max_unread_output=CAP)
        # Far more than the cap, one read and libssh2's window together: were "done" sent
        # before the pump pauses, it could be read first and nothing would have to fail.
        size = 4 * (CAP + WINDOW_SLACK)
        output = client.run_command("yes %s | head -c %d >&2; echo done" % (LINE, size))
        with pytest.raises(OutputBufferFullError):
            next(output.stdout)
        stderr = list(output.stderr)
        assert len(stderr) == size // (len(LINE) + 1) and set(stderr) == {LINE}
        assert list(output.stdout) == ["done"]
        client.wait_finished(output, timeout=10)
        assert output.exit_code == 0
        client.close()


def test_a_line_longer_than_the_cap_fails_fast_until_the_cap_is_raised(sshd, user_key,
                                                                       tmp_path):
    with gevent.Timeout(GUARD):
        client = connect_sshd(sshd, user_key, tmp_path, max_unread_output=CAP)
        output = client.run_command("head -c 3M /dev/zero | tr '\\0' x; echo")
        with pytest.raises(OutputBufferFullError) as info:
            next(output.stdout)
        assert info.value.stream == "stdout" and "complete line" in str(info.value)
        output.max_unread_output = 8 * CAP
        assert [len(line) for line in output.stdout] == [3 * CAP]
        client.wait_finished(output, timeout=10)
        assert output.exit_code == 0
        client.close()


def test_join_fails_fast_on_a_full_buffer_and_consume_output_drains_it(sshd, user_key,
                                                                       tmp_path):
    with gevent.Timeout(GUARD):
        client = ParallelSSHClient(
            [sshd.host], port=sshd.port, user=sshd.user, pkey=user_key.private, num_retries=1,
            timeout=10, allow_agent=False, identity_auth=False,
            known_hosts=[str(tmp_path / "kh")])
        command = "sleep 0.5; head -c 6M /dev/zero >&2; echo done"   # after the cap is set
        output = client.run_command(command)
        output[0].max_unread_output = CAP
        started = time.monotonic()
        with pytest.raises(OutputBufferFullError) as info:
            client.join(output, timeout=10)
        assert time.monotonic() - started < SLACK and info.value.stream == "stderr"
        output = client.run_command(command)
        output[0].max_unread_output = CAP
        client.join(output, consume_output=True, timeout=10)
        assert output[0].exit_code == 0
        client.close()


def test_a_dropped_output_does_not_keep_its_paused_command_alive(sshd, user_key, tmp_path):
    with gevent.Timeout(GUARD):
        client = connect_sshd(sshd, user_key, tmp_path, max_unread_output=CAP)
        output = client.run_command("head -c 8M /dev/zero >&2")
        pump = output.buffers.stderr.reader
        with pytest.raises(OutputBufferFullError):
            client.wait_finished(output, timeout=10)
        del output
        gc.collect()
        pump.join(10)
        assert pump.dead and not client._channels   # the command ran to its end
        client.close()
