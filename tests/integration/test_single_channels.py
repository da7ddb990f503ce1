"""SSHClient channel plumbing: PTY, finished/exit status, close_channel, sessions, shells."""

import time

import pytest
from ssh2.channel import Channel

from pssh.exceptions import PSSHError, SessionError, Timeout
from pssh.shell import InteractiveShell
from pssh.single import SSHClient

from single_client import CONNECT_TIMEOUT, READ_TIMEOUT, connect  # noqa: E402,F401



# -- PTY -----------------------------------------------------------------------------------------

def test_pty_merges_stderr_into_stdout(client):
    out = client.run_command("echo to-out; echo to-err >&2", use_pty=True,
                             read_timeout=READ_TIMEOUT)
    assert list(out.stdout) == ["to-out", "to-err"]  # the PTY's \r\n is one separator
    assert list(out.stderr) == []
    client.wait_finished(out, timeout=READ_TIMEOUT)
    assert out.exit_code == 0


def test_pty_exit_code(client):
    out = client.run_command("exit 6", use_pty=True, read_timeout=READ_TIMEOUT)
    client.wait_finished(out, timeout=READ_TIMEOUT)
    assert out.exit_code == 6


def test_close_channel_with_pty_ends_the_remote_command(client):
    out = client.run_command("echo $$; exec sleep 100", use_pty=True, read_timeout=READ_TIMEOUT)
    pid = int(next(out.stdout))
    started = time.monotonic()
    client.close_channel(out.channel)
    client.wait_finished(out, timeout=10)
    assert time.monotonic() - started < 5
    assert out.exit_code is not None
    # the remote sleep got SIGHUP: wait (remotely, bounded) until it is gone
    check = client.run_command(
        "i=0; while kill -0 %d 2>/dev/null; do i=$((i+1)); [ $i -gt 100 ] && exit 1; "
        "sleep 0.05; done; echo gone" % pid, read_timeout=READ_TIMEOUT)
    assert list(check.stdout) == ["gone"]


def test_close_channel_twice_is_harmless(client):
    # (closing before the remote child has its controlling tty would not SIGHUP it: sshd race)
    out = client.run_command("echo ready; sleep 100", use_pty=True, read_timeout=READ_TIMEOUT)
    assert next(out.stdout) == "ready"
    client.close_channel(out.channel)
    client.close_channel(out.channel)
    client.wait_finished(out, timeout=10)


# -- finished / get_exit_status ------------------------------------------------------------------

def test_finished_and_get_exit_status(client):
    out = client.run_command("read x; exit 9")
    assert client.finished(out.channel) is False
    assert client.get_exit_status(out.channel) is None
    out.stdin.write("\n")
    client.wait_finished(out, timeout=READ_TIMEOUT)
    assert client.finished(out.channel) is True
    assert client.get_exit_status(out.channel) == 9
    assert client.finished(None) is None
    assert client.get_exit_status(None) is None


# -- sessions and lifecycle --------------------------------------------------------------------------

def test_open_session_returns_a_channel(client):
    channel = client.open_session()
    assert isinstance(channel, Channel)
    client.close_channel(channel)


def test_deprecated_execute_returns_channel(client):
    with pytest.deprecated_call():
        channel = client.execute("echo legacy")
    assert isinstance(channel, Channel)
    client.close_channel(channel)


def test_deprecated_disconnect_is_a_no_op(client):
    with pytest.deprecated_call():
        client.disconnect()
    out = client.run_command("echo still", read_timeout=READ_TIMEOUT)
    assert list(out.stdout) == ["still"]


def test_context_manager_closes(sshd, user_key):
    with connect(sshd, user_key) as c:
        assert c.session is not None
        out = c.run_command("echo in", read_timeout=READ_TIMEOUT)
        assert list(out.stdout) == ["in"]
    with pytest.raises(SessionError) as info:
        c.run_command("echo after")
    assert info.value.host == sshd.host
    c.close()  # idempotent


def test_close_while_command_runs_fails_readers(client):
    out = client.run_command("echo started; sleep 100", read_timeout=READ_TIMEOUT)
    lines = out.stdout
    assert next(lines) == "started"
    started = time.monotonic()
    client.close()
    with pytest.raises(PSSHError) as info:
        list(lines)
    assert info.value.host == client.host
    with pytest.raises(PSSHError):
        client.wait_finished(out, timeout=5)
    assert time.monotonic() - started < 5


def test_public_attributes(sshd, user_key):
    with connect(sshd, user_key, alias="a1", keepalive_seconds=0) as c:
        assert (c.host, c.port, c.user, c.alias) == (sshd.host, sshd.port, sshd.user, "a1")
        assert c.pkey == user_key.private
        assert (c.num_retries, c.retry_delay, c.timeout) == (1, 0.1, CONNECT_TIMEOUT)
        assert (c.allow_agent, c.identity_auth, c.keepalive_seconds) == (False, False, 0)
        assert c.sock is not None
        assert len(SSHClient.IDENTITIES) == 5


# -- InteractiveShell ----------------------------------------------------------------------------

def test_shell_runs_commands_and_reports_exit(client):
    shell = client.open_shell(read_timeout=READ_TIMEOUT)
    assert isinstance(shell, InteractiveShell)
    shell.run("echo one")
    shell.run("echo two >&2")
    shell.run("exit 5")
    assert shell.close() is shell
    assert list(shell.stdout) == ["one"]
    assert list(shell.stderr) == ["two"]
    assert shell.exit_code == 5
    assert shell.output.fully_qualified_command is None


def test_shell_context_manager(client):
    with client.open_shell(read_timeout=READ_TIMEOUT) as shell:
        shell.run("x=41")
        shell.run("echo $((x+1))")
    assert list(shell.stdout) == ["42"]
    assert shell.exit_code == 0
    assert shell.close() is shell  # closing again is harmless


def test_shell_exit_code_of_last_command(client):
    with client.open_shell(read_timeout=READ_TIMEOUT) as shell:
        shell.run("false")
    assert shell.exit_code == 1


def test_shell_stdin_is_the_shell_input(client):
    shell = client.open_shell(read_timeout=READ_TIMEOUT)
    shell.stdin.write("echo via-stdin\n")
    shell.close()
    assert list(shell.stdout) == ["via-stdin"]


def test_shell_run_after_close_fails(client):
    shell = client.open_shell(read_timeout=READ_TIMEOUT)
    shell.close()
    with pytest.raises(PSSHError):
        shell.run("echo too late")


def test_shell_encoding(client):
    with client.open_shell(encoding="latin-1", read_timeout=READ_TIMEOUT) as shell:
        shell.run("printf '\\351\\n'")
        shell.run("echo \u00e9 | od -An -tx1")
    assert [line.strip() for line in shell.stdout] == ["\u00e9", "e9 0a"]


def test_shell_read_before_close_honours_read_timeout(client):
    shell = client.open_shell(read_timeout=0.3)
    shell.run("echo early")
    lines = []
    with pytest.raises(Timeout):
        for line in shell.stdout:
            lines.append(line)
    assert lines == ["early"]
    shell.run("echo late")
    shell.close()
    assert list(shell.stdout) == ["late"]
    assert shell.exit_code == 0
