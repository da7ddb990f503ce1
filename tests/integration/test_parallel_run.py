"""ParallelSSHClient.run_command against real sshd servers: order, per-host output, command
options, read/idle timeouts, failures of some hosts among good ones, duplicate hosts."""

import builtins
import time

import gevent
import pytest

from embedded_server import free_port
from pssh import exceptions
from pssh.config import HostConfig
from pssh.exceptions import (
    AuthenticationError, ConnectionRefusedError, HostArgumentError, Timeout, UnknownHostError)
from pssh.output import HostOutput
from pssh.parallel import ParallelSSHClient
from pssh.single import SSHClient

CONNECT_TIMEOUT = 10
# upper bound for anything that should finish at once (a hang fails instead of blocking)
GUARD = 30
# generous slack on timing upper bounds: the machine may be loaded
SLACK = 3

SERVER_ADDRESS = "echo $SSH_CONNECTION | cut -d' ' -f3"
SOURCE_PORT = "echo $SSH_CLIENT | cut -d' ' -f2"


def make_client(hosts, port, key, **kwargs):
    opts = dict(port=port, pkey=key.private, num_retries=1, retry_delay=0.1,
                timeout=CONNECT_TIMEOUT, allow_agent=False, identity_auth=False)
    opts.update(kwargs)
    return ParallelSSHClient(hosts, **opts)


def read_lines(iterator, into=None, guard=GUARD):
    """Lines of ``iterator`` (appended to ``into`` as they come); a hang fails after ``guard`` s."""
    lines = [] if into is None else into
    with gevent.Timeout(guard, AssertionError("output iteration hung for %s s" % guard)):
        for line in iterator:
            lines.append(line)
    return lines


def stdout_of(output):
    return [read_lines(host_out.stdout) for host_out in output]


@pytest.fixture
def farm_client(sshd_farm, user_key):
    client = make_client(sshd_farm.hosts, sshd_farm.port, user_key)
    yield client
    client.close()


@pytest.fixture
def refused_port():
    """A port nobody listens on (on any loopback address used here)."""
    return free_port("127.0.0.1")


# -- order and per-host output ------------------------------------------------------------------

def test_returns_list_of_host_output_in_host_order(sshd_farm, user_key):
    hosts = list(reversed(sshd_farm.hosts)) + [sshd_farm.hosts[2], sshd_farm.hosts[0]]
    with make_client(hosts, sshd_farm.port, user_key) as client:
        output = client.run_command(SERVER_ADDRESS)
        assert isinstance(output, list)
        assert len(output) == len(hosts)
        assert all(isinstance(host_out, HostOutput) for host_out in output)
        assert [host_out.host for host_out in output] == hosts
        # each output really came from the server of its position
        assert stdout_of(output) == [[host] for host in hosts]
        client.join(timeout=GUARD)
        assert [host_out.exit_code for host_out in output] == [0] * len(hosts)
        assert all(host_out.exception is None for host_out in output)


def test_stdout_stderr_and_exit_code_per_host(farm_client, sshd_farm):
    output = farm_client.run_command(
        "%s; echo to-err >&2; exit $(( $(echo $SSH_CONNECTION | cut -d' ' -f3 | cut -d. -f4) ))"
        % SERVER_ADDRESS)
    farm_client.join(timeout=GUARD)
    for host, host_out in zip(sshd_farm.hosts, output):
        assert read_lines(host_out.stdout) == [host]
        assert read_lines(host_out.stderr) == ["to-err"]
        assert host_out.exit_code == int(host.rsplit(".", 1)[1])


def test_run_command_returns_once_started_not_finished(farm_client):
    # every command blocks on stdin: run_command must not wait for any of them
    output = farm_client.run_command("read x; echo got $x")
    assert all(host_out.exit_code is None for host_out in output)
    assert not farm_client.finished(output)
    for host_out in output:
        host_out.stdin.write("%s\n" % host_out.host)
    farm_client.join(timeout=GUARD)
    assert stdout_of(output) == [["got %s" % host_out.host] for host_out in output]
    assert farm_client.finished(output)


# -- host_args ------------------------------------------------------------------------------------

def test_host_args_tuples(farm_client, sshd_farm):
    host_args = [(host, index) for index, host in enumerate(sshd_farm.hosts)]
    output = farm_client.run_command("echo %s-%s", host_args=host_args)
    assert stdout_of(output) == [["%s-%s" % args] for args in host_args]
    assert [host_out.fully_qualified_command for host_out in output] == \
        [("echo %s-%s" % args).encode() for args in host_args]


def test_host_args_dicts(farm_client, sshd_farm):
    host_args = [{"name": "n%d" % index, "exit": index} for index in range(len(sshd_farm.hosts))]
    output = farm_client.run_command("echo %(name)s; exit %(exit)s", host_args=host_args)
    farm_client.join(timeout=GUARD)
    assert stdout_of(output) == [[args["name"]] for args in host_args]
    assert [host_out.exit_code for host_out in output] == list(range(len(sshd_farm.hosts)))


def test_host_args_scalars_extra_entries_ignored(farm_client, sshd_farm):
    host_args = ["word%d" % index for index in range(len(sshd_farm.hosts) + 2)]
    output = farm_client.run_command("echo %s", host_args=host_args)
    assert len(output) == len(sshd_farm.hosts)
    assert stdout_of(output) == [[word] for word in host_args[:len(sshd_farm.hosts)]]


def test_too_few_host_args_raises_before_anything_starts(farm_client, sshd_farm):
    with pytest.raises(HostArgumentError) as info:
        farm_client.run_command("echo %s", host_args=["only", "two"])
    assert isinstance(info.value, exceptions.HostArgumentException)
    assert "2" in str(info.value) and str(len(sshd_farm.hosts)) in str(info.value)
    # raised synchronously: nothing was spawned, nothing connected
    assert farm_client.cmds is None
    assert farm_client.get_last_output() is None


def test_host_args_format_error_propagates(farm_client):
    with pytest.raises(TypeError):
        farm_client.run_command("echo %s %s", host_args=[("one",)] * 5)
    with pytest.raises(KeyError):
        farm_client.run_command("echo %(missing)s", host_args=[{"name": 1}] * 5)


# -- command construction -------------------------------------------------------------------------

def test_plain_command_is_sent_unchanged(farm_client):
    output = farm_client.run_command("echo plain")
    assert {host_out.fully_qualified_command for host_out in output} == {b"echo plain"}


def test_sudo_and_user_wrap_the_command(farm_client):
    # only the wrapping is checked: sudo may be missing or wait for a password on stdin
    for kwargs, expected in (
            (dict(sudo=True), b"sudo -S $SHELL -c 'echo hi'"),
            (dict(user="someone"), b"sudo -u someone -S $SHELL -c 'echo hi'"),
            (dict(user="someone", shell="sh -c"), b"sudo -u someone -S sh -c 'echo hi'")):
        output = farm_client.run_command("echo hi", **kwargs)
        assert [host_out.fully_qualified_command for host_out in output] == [expected] * 5


def test_shell_option_runs_through_that_shell(farm_client):
    output = farm_client.run_command("echo $0", shell="sh -c")
    assert {host_out.fully_qualified_command for host_out in output} == {b"sh -c 'echo $0'"}
    assert stdout_of(output) == [["sh"]] * 5


def test_use_pty_merges_stderr_and_gives_a_terminal(farm_client):
    command = "tty -s && echo tty || echo notty; echo to-err >&2"
    output = farm_client.run_command(command)
    farm_client.join(timeout=GUARD)
    assert stdout_of(output) == [["notty"]] * 5
    assert [read_lines(host_out.stderr) for host_out in output] == [["to-err"]] * 5

    output = farm_client.run_command(command, use_pty=True)
    farm_client.join(timeout=GUARD)
    assert stdout_of(output) == [["tty", "to-err"]] * 5
    assert [read_lines(host_out.stderr) for host_out in output] == [[]] * 5


def test_encoding_encodes_command_and_decodes_output(farm_client):
    output = farm_client.run_command("echo 'caf\u00e9'", encoding="latin-1")
    assert {host_out.fully_qualified_command for host_out in output} == {b"echo 'caf\xe9'"}
    assert {host_out.encoding for host_out in output} == {"latin-1"}
    assert stdout_of(output) == [["caf\u00e9"]] * 5

    output = farm_client.run_command("echo 'caf\u00e9'")
    assert {host_out.fully_qualified_command for host_out in output} == \
        {"echo 'caf\u00e9'".encode("utf-8")}
    # the output's encoding may be changed before reading: the two UTF-8 bytes become two chars
    output[0].encoding = "latin-1"
    assert read_lines(output[0].stdout) == ["caf\u00c3\u00a9"]
    assert stdout_of(output[1:]) == [["caf\u00e9"]] * 4


# -- read_timeout and idle_timeout ---------------------------------------------------------------

def test_read_timeout_names_host_and_output_stays_usable(farm_client, sshd_farm):
    output = farm_client.run_command("echo first; read x; echo second $x", read_timeout=0.5)
    assert {host_out.read_timeout for host_out in output} == {0.5}
    lines = []
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        read_lines(output[1].stdout, lines)
    assert 0.4 <= time.monotonic() - started < 0.5 + SLACK
    assert lines == ["first"]
    assert info.value.host == sshd_farm.hosts[1]
    assert sshd_farm.hosts[1] in str(info.value)
    for host_out in output:
        host_out.stdin.write("go\n")
        host_out.read_timeout = GUARD
    assert read_lines(output[1].stdout) == ["second go"]
    assert read_lines(output[0].stdout) == ["first", "second go"]
    farm_client.join(timeout=GUARD)
    assert {host_out.exit_code for host_out in output} == {0}


def test_read_timeout_is_a_total_deadline_but_idle_timeout_is_not(farm_client):
    ticker = "for i in $(seq 1 16); do echo $i; sleep 0.1; done"
    output = farm_client.run_command(ticker, read_timeout=0.5)
    lines = []
    with pytest.raises(Timeout):
        read_lines(output[0].stdout, lines)
    assert 1 <= len(lines) < 16

    output = farm_client.run_command(ticker, idle_timeout=0.6)
    assert {host_out.idle_timeout for host_out in output} == {0.6}
    started = time.monotonic()
    assert read_lines(output[0].stdout) == [str(i) for i in range(1, 17)]
    assert time.monotonic() - started > 0.6
    farm_client.join(timeout=GUARD)


def test_idle_timeout_raises_timeout_naming_the_host(farm_client, sshd_farm):
    output = farm_client.run_command("echo first; read x; echo second $x", idle_timeout=0.4)
    lines = []
    started = time.monotonic()
    with pytest.raises(Timeout) as info:
        read_lines(output[2].stdout, lines)
    assert 0.3 <= time.monotonic() - started < 0.4 + SLACK
    assert lines == ["first"]
    assert isinstance(info.value, TimeoutError)
    assert info.value.host == sshd_farm.hosts[2]
    assert sshd_farm.hosts[2] in str(info.value)
    # the command goes on; the next reader gets what comes next
    for host_out in output:
        host_out.stdin.write("go\n")
    assert read_lines(output[2].stdout) == ["second go"]
    farm_client.join(timeout=GUARD)


def test_idle_timeout_per_host_config_and_override(sshd_farm, user_key):
    hosts = sshd_farm.hosts[:2]
    config = [HostConfig(idle_timeout=0.3), HostConfig()]
    with make_client(hosts, sshd_farm.port, user_key, host_config=config) as client:
        output = client.run_command("read x; echo late $x")
        assert [host_out.idle_timeout for host_out in output] == [0.3, None]
        with pytest.raises(Timeout) as info:
            read_lines(output[0].stdout)
        assert info.value.host == hosts[0]
        for host_out in output:
            host_out.stdin.write("go\n")
        assert stdout_of(output) == [["late go"]] * 2
        client.join(timeout=GUARD)
        # the run_command argument wins over the per-host value
        output = client.run_command("true", idle_timeout=2)
        assert [host_out.idle_timeout for host_out in output] == [2, 2]
        client.join(timeout=GUARD)


# -- failures among good hosts -----------------------------------------------------------------

def test_stop_on_errors_false_records_each_failure(sshd_farm, user_key, unauthorized_key,
                                                    refused_port):
    hosts = [sshd_farm.hosts[0], sshd_farm.hosts[1], "nosuchhost.invalid", sshd_farm.hosts[2],
             sshd_farm.hosts[3]]
    config = [HostConfig(alias="good-0"), HostConfig(port=refused_port, alias="refused"),
              HostConfig(alias="unknown"),
              HostConfig(private_key=unauthorized_key.private, alias="bad-key"),
              HostConfig(alias="good-3")]
    with make_client(hosts, sshd_farm.port, user_key, host_config=config) as client:
        started = time.monotonic()
        output = client.run_command(SERVER_ADDRESS, stop_on_errors=False)
        assert time.monotonic() - started < CONNECT_TIMEOUT
        assert [host_out.host for host_out in output] == hosts
        assert [host_out.alias for host_out in output] == [c.alias for c in config]

        good = [output[0], output[4]]
        for host_out in good:
            assert host_out.exception is None
            assert read_lines(host_out.stdout) == [host_out.host]

        refused, unknown, bad_key = output[1], output[2], output[3]
        assert isinstance(refused.exception, ConnectionRefusedError)
        assert isinstance(refused.exception, builtins.ConnectionRefusedError)
        assert refused.exception.host == sshd_farm.hosts[1]
        assert refused.exception.port == refused_port
        assert isinstance(unknown.exception, UnknownHostError)
        assert unknown.exception.host == "nosuchhost.invalid"
        assert "nosuchhost.invalid" in str(unknown.exception)
        assert isinstance(bad_key.exception, AuthenticationError)
        assert bad_key.exception.host == sshd_farm.hosts[2]
        assert sshd_farm.hosts[2] in str(bad_key.exception)
        for failed in (refused, unknown, bad_key):
            assert failed.stdout is None and failed.stderr is None
            assert failed.client is None and failed.channel is None and failed.stdin is None
            assert failed.exit_code is None
        # join skips failed hosts and finishes the good ones
        client.join(timeout=GUARD)
        assert [host_out.exit_code for host_out in good] == [0, 0]
        assert client.finished()


def test_stop_on_errors_raises_first_failure_in_host_order(sshd_farm, user_key, refused_port):
    hosts = [sshd_farm.hosts[0], "nosuchhost.invalid", sshd_farm.hosts[1], sshd_farm.hosts[2]]
    config = [HostConfig(), HostConfig(), HostConfig(port=refused_port), HostConfig()]
    with make_client(hosts, sshd_farm.port, user_key, host_config=config) as client:
        with pytest.raises(UnknownHostError) as info:
            client.run_command(SERVER_ADDRESS)
        assert info.value.host == "nosuchhost.invalid"
        # the good hosts' commands were started and their output is still there
        last = client.get_last_output()
        assert [host_out.host for host_out in last] == hosts
        assert read_lines(last[0].stdout) == [sshd_farm.hosts[0]]
        assert read_lines(last[3].stdout) == [sshd_farm.hosts[2]]
        assert isinstance(last[1].exception, UnknownHostError)
        assert isinstance(last[2].exception, ConnectionRefusedError)
        assert last[2].exception.host == sshd_farm.hosts[1]
        client.join(last, timeout=GUARD)
        assert [last[0].exit_code, last[3].exit_code] == [0, 0]


def test_stop_on_errors_single_refused_host(sshd_farm, user_key, refused_port):
    hosts = sshd_farm.hosts[:3]
    config = [HostConfig(), HostConfig(port=refused_port), HostConfig()]
    with make_client(hosts, sshd_farm.port, user_key, host_config=config) as client:
        with pytest.raises(ConnectionRefusedError) as info:
            client.run_command("echo ok")
        assert info.value.host == hosts[1]
        last = client.get_last_output()
        assert [host_out.exception is None for host_out in last] == [True, False, True]
        assert [read_lines(last[0].stdout), read_lines(last[2].stdout)] == [["ok"], ["ok"]]


def test_failed_host_is_retried_on_next_run(fresh_sshd, sshd_farm, user_key):
    hosts = [fresh_sshd.host, sshd_farm.hosts[0]]
    config = [HostConfig(port=fresh_sshd.port), HostConfig(port=sshd_farm.port)]
    with make_client(hosts, sshd_farm.port, user_key, host_config=config) as client:
        fresh_sshd.kill()
        output = client.run_command("echo ok", stop_on_errors=False)
        assert isinstance(output[0].exception, ConnectionRefusedError)
        assert read_lines(output[1].stdout) == ["ok"]
        fresh_sshd.start()
        output = client.run_command("echo again", stop_on_errors=False)
        assert [host_out.exception for host_out in output] == [None, None]
        assert stdout_of(output) == [["again"], ["again"]]


# -- duplicate hosts ---------------------------------------------------------------------------

def test_duplicate_hosts_get_their_own_connections(sshd_farm, user_key):
    host = sshd_farm.hosts[0]
    hosts = [host, host, sshd_farm.hosts[1], host]
    with make_client(hosts, sshd_farm.port, user_key) as client:
        output = client.run_command("%s; %s" % (SERVER_ADDRESS, SOURCE_PORT))
        client.join(timeout=GUARD)
        lines = stdout_of(output)
        assert [entry[0] for entry in lines] == hosts
        clients = [host_out.client for host_out in output]
        assert all(isinstance(c, SSHClient) for c in clients)
        assert len({id(c) for c in clients}) == len(hosts)
        assert len({entry[1] for entry in lines}) == len(hosts)  # distinct TCP connections
        # each position keeps its own connection on the next run
        again = client.run_command(SOURCE_PORT)
        assert [host_out.client for host_out in again] == clients
        assert stdout_of(again) == [[entry[1]] for entry in lines]


# -- stdin of a finished command -------------------------------------------------------------------

def test_closing_stdin_of_finished_command_leaves_other_commands_alone(farm_client):
    first = farm_client.run_command("true")
    farm_client.join(first, timeout=GUARD)
    assert {host_out.exit_code for host_out in first} == {0}
    second = farm_client.run_command("cat; echo cat-ended")
    for host_out in first:
        # a no-op or a pssh error are both fine; touching another channel is not
        try:
            host_out.stdin.close()
        except exceptions.PSSHError:
            pass
    for host_out in second:
        host_out.stdin.write("data\n")
        host_out.stdin.close()
    farm_client.join(second, timeout=GUARD)
    assert stdout_of(second) == [["data", "cat-ended"]] * 5
    # and the connections are still usable
    assert stdout_of(farm_client.run_command("echo alive")) == [["alive"]] * 5
