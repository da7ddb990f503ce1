"""The channel object (pssh.connection.channel.Channel) behind HostOutput.stdin and shells,
against a real sshd: stdin refuses writes it cannot deliver with an error naming the host and
the reason, EOF goes out once, and the command's own output and exit status stay intact."""
import gevent
import pytest

from pssh.connection.channel import Channel
from pssh.exceptions import SessionError

from single_client import READ_TIMEOUT

GUARD = 20  # seconds any one test may take


def test_output_and_stdin_share_one_channel_object(client):
    out = client.run_command("cat")
    assert isinstance(out.channel_io, Channel)
    assert out.stdin.channel is out.channel_io
    assert out.channel_io.ssh_channel is out.channel
    out.stdin.close()
    client.wait_finished(out, timeout=READ_TIMEOUT)
    assert out.channel_io.finished and out.channel_io.exit_code == 0


def test_write_after_eof_names_host_and_reason(client):
    with gevent.Timeout(GUARD):
        out = client.run_command("cat; echo cat-ended")
        out.stdin.write("before\n")
        out.stdin.close()
        with pytest.raises(SessionError) as info:
            out.stdin.write("after\n")
        assert info.value.host == client.host and info.value.port == client.port
        assert "stdin" in str(info.value) and "EOF was sent" in str(info.value)
        client.wait_finished(out, timeout=READ_TIMEOUT)
    assert list(out.stdout) == ["before", "cat-ended"]
    assert out.exit_code == 0


def test_write_after_command_finished_names_host_and_reason(client):
    with gevent.Timeout(GUARD):
        out = client.run_command("exit 3")
        client.wait_finished(out, timeout=READ_TIMEOUT)
        with pytest.raises(SessionError) as info:
            out.stdin.write("too late\n")
    assert info.value.host == client.host
    assert "channel is closed" in str(info.value)
    assert out.exit_code == 3


def test_write_after_close_channel_names_host_and_reason(client):
    with gevent.Timeout(GUARD):
        out = client.run_command("cat", use_pty=True)
        client.close_channel(out.channel)
        with pytest.raises(SessionError) as info:
            out.stdin.write("after close\n")
        client.wait_finished(out, timeout=READ_TIMEOUT)
    assert "channel is closed" in str(info.value) and client.host in str(info.value)


def test_eof_twice_and_shell_close_after_eof_are_harmless(client):
    with gevent.Timeout(GUARD):
        out = client.run_command("cat")
        out.stdin.write("x\n")
        out.stdin.close()
        out.stdin.close()
        client.wait_finished(out, timeout=READ_TIMEOUT)
        assert list(out.stdout) == ["x"] and out.exit_code == 0
        shell = client.open_shell(read_timeout=READ_TIMEOUT)
        shell.run("echo from-shell")
        shell.stdin.close()
        shell.close()
    assert list(shell.stdout) == ["from-shell"] and shell.exit_code == 0


def test_stdin_of_a_closed_client(sshd, user_key):
    from single_client import connect
    client = connect(sshd, user_key)
    out = client.run_command("cat")
    client.close()
    with gevent.Timeout(GUARD):
        with pytest.raises(SessionError) as info:
            out.stdin.write("x\n")
    assert "is closed" in str(info.value) and info.value.host == sshd.host
