"""The 1.x API (pssh.pssh_client) used the way parallel-ssh 1.x's README showed it, against
real sshd servers: dict output keyed by host, 1.x join/exit codes, the host logger,
load_private_key, the 1.x exception names, dict host_config and 1.x command quoting."""

import logging
import pwd

import gevent
import pytest

from embedded_server import free_port

CONNECT_TIMEOUT = 10
GUARD = 30


def legacy_client(hosts, port, pkey, **kwargs):
    from pssh.pssh_client import ParallelSSHClient
    opts = dict(port=port, pkey=pkey, num_retries=1, retry_delay=0.1, timeout=CONNECT_TIMEOUT,
                allow_agent=False, identity_auth=False)
    opts.update(kwargs)
    return ParallelSSHClient(hosts, **opts)


def read_lines(iterator, guard=GUARD):
    with gevent.Timeout(guard, AssertionError("output iteration hung for %s s" % guard)):
        return list(iterator)


@pytest.fixture
def key_data(user_key):
    from pssh import utils
    return utils.load_private_key(user_key.private)


@pytest.fixture
def client(sshd_farm, key_data):
    c = legacy_client(sshd_farm.hosts[:3], sshd_farm.port, key_data)
    yield c
    c.close()


@pytest.fixture
def home(sshd_farm):
    return pwd.getpwnam(sshd_farm[0].user).pw_dir


@pytest.fixture
def host_logger():
    """The pssh.host_logger, with its handlers and level restored after the test."""
    logger = logging.getLogger("pssh.host_logger")
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


# -- README usage ----------------------------------------------------------------------------------

def test_readme_loop_over_dict_output(client, sshd_farm):
    output = client.run_command("echo $SSH_CONNECTION | cut -d' ' -f3")
    assert isinstance(output, dict)
    assert list(output) == sshd_farm.hosts[:3]
    seen = {}
    for host in output:
        for line in output[host]["stdout"]:
            seen.setdefault(host, []).append(line)
    assert seen == {host: [host] for host in sshd_farm.hosts[:3]}
    for host in output:
        assert output[host]["host"] == output[host].host == host
        assert output[host]["exception"] is None
        assert output[host]["cmd"] is output[host].cmd is not None


def test_lines_are_stripped_and_pty_merges_stderr(client):
    # 1.x defaults: use_pty=True (stderr arrives on stdout) and stripped lines
    output = client.run_command("echo '   padded   '; echo to-err >&2")
    client.join(output)
    for host in output:
        assert read_lines(output[host].stdout) == ["padded", "to-err"]
        assert read_lines(output[host]["stderr"]) == []


def test_duplicate_hosts_get_distinct_keys_and_connections(sshd_farm, key_data):
    a, b = sshd_farm.hosts[:2]
    client = legacy_client([a, a, b, a], sshd_farm.port, key_data)
    try:
        output = client.run_command("echo $SSH_CLIENT | cut -d' ' -f2")
        assert list(output) == [a, "%s_1" % a, b, "%s_2" % a]
        assert [output[key]["host"] for key in output] == [a, a, b, a]
        ports = [read_lines(output[key]["stdout"]) for key in output]
        assert len({p[0] for p in ports}) == 4   # four TCP connections
    finally:
        client.close()


def test_join_makes_exit_codes_final(client):
    output = client.run_command("read x; exit 3")
    for host in output:
        assert output[host]["exit_code"] is None
        assert output[host].exit_code is None
    assert client.finished(output) is False
    for host in output:
        output[host]["stdin"].write("go\n")
    assert client.join(output) is None
    for host in output:
        assert output[host]["exit_code"] == 3
        assert output[host].exit_code == 3
        assert client.get_exit_code(output[host]) == 3
    assert client.finished(output) is True
    client.get_exit_codes(output)
    assert {output[host].exit_code for host in output} == {3}


def test_stop_on_errors_false_records_exception_per_host(sshd_farm, key_data):
    hosts = [sshd_farm.hosts[0], "nosuchhost.invalid"]
    from pssh import UnknownHostException
    client = legacy_client(hosts, sshd_farm.port, key_data)
    try:
        output = client.run_command("echo ok", stop_on_errors=False)
        assert list(output) == hosts
        assert read_lines(output[hosts[0]]["stdout"]) == ["ok"]
        failed = output["nosuchhost.invalid"]
        assert isinstance(failed["exception"], UnknownHostException)
        assert failed["stdout"] is None and failed["channel"] is None
        client.join(output)
        assert output[hosts[0]]["exit_code"] == 0
        assert failed["exit_code"] is None
    finally:
        client.close()


# -- host logger ---------------------------------------------------------------------------------

def test_host_logger_logs_lines_only_when_read(client, sshd_farm, host_logger, caplog):
    from pssh import utils
    utils.enable_host_logger()
    assert host_logger.isEnabledFor(logging.INFO)
    output = client.run_command("echo line-one; echo line-two")
    client.join(output)

    def logged():
        return [r.getMessage() for r in caplog.records if r.name == "pssh.host_logger"]

    assert logged() == []   # joined, not read: nothing logged yet
    for host in output:
        for _ in output[host]["stdout"]:
            pass
    expected = ["[%s]\t%s" % (host, line) for host in sshd_farm.hosts[:3]
                for line in ("line-one", "line-two")]
    assert logged() == expected


# -- imports, keys, exceptions -------------------------------------------------------------------

def test_1x_imports():
    import pssh
    import pssh.utils
    from pssh import ParallelSSHClient, utils  # noqa: F401
    from pssh.pssh_client import ParallelSSHClient as Legacy
    assert utils is pssh.utils
    assert callable(utils.enable_host_logger) and callable(utils.load_private_key)
    assert callable(pssh.enable_host_logger)
    assert issubclass(Legacy, pssh.ParallelSSHClient)


def test_load_private_key_returns_key_bytes(user_key, key_data):
    with open(user_key.private, "rb") as fh:
        assert key_data == fh.read()
    assert isinstance(key_data, bytes)
    from pssh import utils
    assert utils.load_private_key(key_data) is key_data
    with open(user_key.private, "rb") as fh:
        assert utils.load_private_key(fh) == key_data


def test_load_private_key_missing_file(tmp_path):
    from pssh import utils
    from pssh.exceptions import PKeyFileError
    with pytest.raises(PKeyFileError):
        utils.load_private_key(str(tmp_path / "no-such-key"))


def test_1x_exception_names_importable_and_aliased():
    import pssh
    import pssh.exceptions as exc
    from pssh import (  # noqa: F401
        AuthenticationException, ConnectionErrorException, SSHException, UnknownHostException)
    assert pssh.UnknownHostException is exc.UnknownHostException is exc.UnknownHostError
    assert pssh.AuthenticationException is exc.AuthenticationException \
        is exc.AuthenticationError
    assert pssh.ConnectionErrorException is exc.ConnectionErrorException is exc.ConnectionError
    assert pssh.SSHException is exc.SSHException is exc.SSHError
    for cls in (UnknownHostException, AuthenticationException, ConnectionErrorException,
                SSHException):
        assert issubclass(cls, exc.PSSHError)


def test_1x_exceptions_catch_real_failures(sshd_farm, key_data, unauthorized_key):
    from pssh import AuthenticationException, ConnectionErrorException, UnknownHostException
    from pssh import utils
    host = sshd_farm.hosts[0]
    cases = [
        (["nosuchhost.invalid"], dict(), UnknownHostException, "nosuchhost.invalid"),
        ([host], dict(pkey=utils.load_private_key(unauthorized_key.private)),
         AuthenticationException, host),
        ([host], dict(port=free_port(host)), ConnectionErrorException, host),
    ]
    for hosts, kwargs, expected, failing in cases:
        opts = dict(port=sshd_farm.port, pkey=key_data)
        opts.update(kwargs)
        client = legacy_client(hosts, **opts)
        try:
            with pytest.raises(expected) as info:
                client.run_command("echo never")
            assert info.value.host == failing
        finally:
            client.close()


# -- host_config as a 1.x dict -------------------------------------------------------------------

def test_dict_host_config(sshd_farm, user_key, unauthorized_key):
    from pssh import AuthenticationException, ConnectionErrorException, utils
    login = sshd_farm[0].user
    refused = free_port("127.0.0.1")
    a, b, c, d = sshd_farm.hosts[:4]
    host_config = {
        a: {"port": sshd_farm.port, "user": login},
        b: {"port": sshd_farm.port},   # client-level (unknown) user
        d: {"port": sshd_farm.port, "user": login, "private_key": user_key.private},
        # c: not listed, client-level port: refused
    }
    client = legacy_client([a, b, c, d], refused, utils.load_private_key(unauthorized_key.private),
                           user="pssh-no-such-user", host_config=host_config)
    try:
        # the client-level key is the unauthorized one; only d has a key of its own
        output = client.run_command("whoami", stop_on_errors=False)
        assert isinstance(output[a]["exception"], AuthenticationException)
        assert isinstance(output[b]["exception"], AuthenticationException)
        assert isinstance(output[c]["exception"], ConnectionErrorException)
        assert output[c]["exception"].port == refused
        assert output[d]["exception"] is None
        assert read_lines(output[d]["stdout"]) == [login]
    finally:
        client.close()


def test_dict_host_config_port_and_user(sshd_farm, key_data):
    login = sshd_farm[0].user
    refused = free_port("127.0.0.1")
    a, b = sshd_farm.hosts[:2]
    client = legacy_client([a, b], refused, key_data, user="pssh-no-such-user",
                           host_config={a: {"port": sshd_farm.port, "user": login}})
    try:
        output = client.run_command("whoami", stop_on_errors=False)
        assert read_lines(output[a]["stdout"]) == [login]
        assert output[b]["exception"] is not None
        assert output[b]["exception"].port == refused
    finally:
        client.close()


# -- 1.x command quoting -------------------------------------------------------------------------

def test_command_runs_through_shell_with_1x_escaping(client, home):
    output = client.run_command('echo "$HOME"')
    assert {read_lines(output[h]["stdout"])[0] for h in output} == {home}

    command = 'echo "$HOME" \'$HOME\' "it\'s" `echo nested` a\\\\b "say \\"hi\\""'
    output = client.run_command(command)
    for host in output:
        assert output[host]["cmd"].get().fully_qualified_command.startswith(b'$SHELL -c "')
        assert read_lines(output[host]["stdout"]) == \
            ['%s $HOME it\'s nested a\\b say "hi"' % home]


def test_use_shell_false_and_custom_shell(client):
    output = client.run_command("echo $0", shell="sh -c")
    assert {tuple(read_lines(output[h]["stdout"])) for h in output} == {("sh",)}
    output = client.run_command("echo plain", use_shell=False)
    assert {tuple(read_lines(output[h]["stdout"])) for h in output} == {("plain",)}


def test_sudo_wraps_the_shell_command(client):
    output = client.run_command("echo hi", sudo=True)
    assert {output[h]["cmd"].get().fully_qualified_command for h in output} == \
        {b'sudo -S $SHELL -c "echo hi"'}
    output = client.run_command("echo hi", user="someone")
    assert {output[h]["cmd"].get().fully_qualified_command for h in output} == \
        {b'sudo -u someone -S $SHELL -c "echo hi"'}


def test_host_args(client):
    output = client.run_command("echo %s", host_args=["one", "two", "three"])
    assert [read_lines(output[h]["stdout"]) for h in output] == [["one"], ["two"], ["three"]]


def test_host_args_are_quoted_like_the_command(client):
    literal = client.run_command("echo '$HOME'")
    assert {tuple(read_lines(literal[h]["stdout"])) for h in literal} == {("$HOME",)}
    output = client.run_command("echo %s", host_args=["'$HOME'"] * 3)
    assert {tuple(read_lines(output[h]["stdout"])) for h in output} == {("$HOME",)}


@pytest.mark.parametrize("command, args", [
    ("echo %s", "'$HOME' \"dq\" `echo bt` a\\\\b"),
    ("echo %s %s", ("'$1'", '"x"')),
    ("echo %(a)s-%(b)d", {"a": "'$HOME'", "b": 3}),
    ("echo 100%% %s", "'$x'"),
])
def test_host_args_output_same_as_literal_command(client, command, args):
    # 1.x: host i runs exactly what ``command % args`` typed in directly would run
    literal = client.run_command(command % args)
    expected = {tuple(read_lines(literal[h]["stdout"])) for h in literal}
    assert len(expected) == 1
    output = client.run_command(command, host_args=[args] * 3)
    assert {tuple(read_lines(output[h]["stdout"])) for h in output} == expected


def test_host_args_repr_and_precision_conversions(client, home):
    command, args = "echo %r %.5s", ("a$b", "$HOME/tail")
    literal = client.run_command(command % args)   # echo 'a$b' $HOME
    assert {tuple(read_lines(literal[h]["stdout"])) for h in literal} == {("a$b %s" % home,)}
    output = client.run_command(command, host_args=[args] * 3)
    assert {tuple(read_lines(output[h]["stdout"])) for h in output} == {("a$b %s" % home,)}
