"""ParallelSSHClient.join, finished, get_last_output and the interactive shell methods
(open_shell, run_shell_commands, join_shells) against real sshd servers."""

import time

import gevent
import pytest

from pssh.config import HostConfig
from pssh.exceptions import ConnectionLostError, ShellError, Timeout
from pssh.parallel import ParallelSSHClient
from pssh.shell import InteractiveShell

CONNECT_TIMEOUT = 10
GUARD = 30
SLACK = 3

SERVER_ADDRESS = "echo $SSH_CONNECTION | cut -d' ' -f3"


def make_client(hosts, port, key, **kwargs):
    opts = dict(port=port, pkey=key.private, num_retries=1, retry_delay=0.1,
                timeout=CONNECT_TIMEOUT, allow_agent=False, identity_auth=False)
    opts.update(kwargs)
    return ParallelSSHClient(hosts, **opts)


def read_lines(iterator, guard=GUARD):
    with gevent.Timeout(guard, AssertionError("output iteration hung for %s s" % guard)):
        return list(iterator)


@pytest.fixture
def client3(sshd_farm, user_key):
    client = make_client(sshd_farm.hosts[:3], sshd_farm.port, user_key)
    yield client
    client.close()


# -- join ----------------------------------------------------------------------------------------

def test_join_waits_and_makes_exit_codes_final(client3):
    output = client3.run_command("read x; exit $x", host_args=None)
    assert [o.exit_code for o in output] == [None] * 3
    assert client3.finished() is False
    assert not any(o.finished for o in output)
    for code, host_out in zip((0, 3, 250), output):
        host_out.stdin.write("%d\n" % code)
    assert client3.join() is None   # default: the last run's output
    assert [o.exit_code for o in output] == [0, 3, 250]
    assert all(o.finished for o in output)
    assert client3.finished() is True
    assert client3.finished(output) is True


def test_join_keeps_output_buffered(client3, sshd_farm):
    output = client3.run_command("%s; echo e >&2" % SERVER_ADDRESS)
    client3.join(output)
    assert [read_lines(o.stdout) for o in output] == [[h] for h in sshd_farm.hosts[:3]]
    assert [read_lines(o.stderr) for o in output] == [["e"]] * 3


def test_join_consume_output_drains_both_streams(client3):
    output = client3.run_command("seq 1 1000; echo e >&2; exit 2")
    client3.join(output, consume_output=True)
    assert [o.exit_code for o in output] == [2] * 3
    assert [read_lines(o.stdout) for o in output] == [[]] * 3
    assert [read_lines(o.stderr) for o in output] == [[]] * 3


def test_join_rejects_non_list_output(client3):
    output = client3.run_command("true")
    with pytest.raises(ValueError):
        client3.join({o.host: o for o in output})
    client3.join(output, timeout=GUARD)


def test_join_timeout_reports_finished_and_unfinished(client3):
    output = client3.run_command("%s", host_args=["true", "read x; exit 3", "read x; exit 4"])
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        client3.join(timeout=1)
    assert 1 <= time.monotonic() - started < 1 + SLACK
    exc = info.value
    assert isinstance(exc, TimeoutError)
    assert exc.args[1] == 1
    finished, unfinished = exc.args[2], exc.args[3]
    assert finished == [output[0]]
    assert sorted(unfinished, key=output.index) == output[1:]
    assert all(o.exit_code is None for o in unfinished)
    # readable message, not a dump of the HostOutput lists
    text = str(exc)
    assert "1" in text and "host=" not in text and "\n" not in text
    # the commands kept running: finish them and join again
    for host_out in unfinished:
        host_out.stdin.write("\n")
    client3.join(unfinished, timeout=GUARD)
    assert [o.exit_code for o in output] == [0, 3, 4]
    client3.join()


def test_join_with_failed_hosts_in_output(sshd_farm, user_key):
    hosts = [sshd_farm.hosts[0], "nosuchhost.invalid", sshd_farm.hosts[1]]
    with make_client(hosts, sshd_farm.port, user_key) as client:
        output = client.run_command("exit 5", stop_on_errors=False)
        client.join(output, timeout=GUARD, consume_output=True)
        assert [o.exit_code for o in output] == [5, None, 5]
        assert output[1].exception is not None
        assert client.finished(output) is True


def test_join_raises_connection_lost_and_finishes_other_hosts(fresh_sshd, sshd_farm, user_key):
    hosts = [fresh_sshd.host, sshd_farm.hosts[0]]
    config = [HostConfig(port=fresh_sshd.port), HostConfig(port=sshd_farm.port)]
    with make_client(hosts, sshd_farm.port, user_key, host_config=config) as client:
        output = client.run_command("echo started; read x; echo got $x")
        with gevent.Timeout(GUARD, AssertionError("first line never came")):
            assert next(output[0].stdout) == "started"
        fresh_sshd.kill()
        output[1].stdin.write("go\n")
        with pytest.raises(ConnectionLostError) as info:
            client.join(timeout=GUARD)
        assert info.value.host == fresh_sshd.host
        assert output[1].exit_code == 0
        assert read_lines(output[1].stdout) == ["started", "got go"]


def test_get_last_output_before_any_run(client3):
    assert client3.get_last_output() is None
    assert client3.cmds is None


def test_get_last_output_returns_same_objects(client3):
    output = client3.run_command("echo x")
    last = client3.get_last_output()
    assert len(last) == 3 and all(a is b for a, b in zip(last, output))


# -- shells ------------------------------------------------------------------------------------

def test_shells_run_commands_per_host(client3, sshd_farm):
    shells = client3.open_shell()
    assert len(shells) == 3 and all(isinstance(s, InteractiveShell) for s in shells)
    assert [s.output.host for s in shells] == sshd_farm.hosts[:3]
    greenlets = client3.run_shell_commands(shells, "echo one\n%s" % SERVER_ADDRESS)
    assert all(g.successful() for g in greenlets)
    client3.run_shell_commands(shells, ["echo two", "(exit 4)"])
    client3.join_shells(shells, timeout=GUARD)
    assert [read_lines(s.stdout) for s in shells] == \
        [["one", host, "two"] for host in sshd_farm.hosts[:3]]
    assert [s.exit_code for s in shells] == [4] * 3


def test_shell_stderr_and_encoding(client3):
    shells = client3.open_shell(encoding="latin-1")
    client3.run_shell_commands(shells, ["echo 'caf\u00e9' >&2", "echo out"])
    client3.join_shells(shells, timeout=GUARD)
    assert [read_lines(s.stderr) for s in shells] == [["caf\u00e9"]] * 3
    assert [read_lines(s.stdout) for s in shells] == [["out"]] * 3
    assert [s.exit_code for s in shells] == [0] * 3


def test_run_shell_commands_after_join_raises_shell_error(client3):
    shells = client3.open_shell()
    client3.run_shell_commands(shells, "true")
    client3.join_shells(shells, timeout=GUARD)
    with pytest.raises(ShellError):
        client3.run_shell_commands(shells, "echo too late")


def test_join_shells_timeout_then_join_again(client3):
    shells = client3.open_shell()
    client3.run_shell_commands(shells, "sleep 1; echo slept")
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        client3.join_shells(shells, timeout=0.2)
    assert 0.2 <= time.monotonic() - started < 0.2 + SLACK
    assert info.value.args[1] == 0.2
    assert info.value.args[2] == []
    assert sorted(info.value.args[3], key=shells.index) == shells
    assert "0.2" in str(info.value)
    client3.join_shells(shells, timeout=GUARD)
    assert [read_lines(s.stdout) for s in shells] == [["slept"]] * 3
    assert [s.exit_code for s in shells] == [0] * 3
