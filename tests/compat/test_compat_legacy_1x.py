"""The 1.x single client (pssh.ssh_client), read_openssh_config, host_clients and 1.x agent
forwarding defaults, against real sshd servers.

1.x shapes from parallel-ssh's public 1.x source (pssh/ssh_client.py,
pssh/clients/miko/single.py, pssh/pssh_client.py, pssh/utils.py): the
constructor connects, ``exec_command`` returns ``(channel, host, stdout,
stderr, stdin)`` and runs ``$SHELL -c "<escaped>"`` with a PTY,
``read_openssh_config(host, config_file=None)`` returns
``(hostname, user, port, pkey)`` or None, and agent forwarding is on by default.
"""
import logging

import gevent
import pytest

GUARD = 30


def legacy_single(server, key, **kwargs):
    from pssh.ssh_client import SSHClient
    opts = dict(port=server.port, user=server.user, pkey=key.private, num_retries=1,
                allow_agent=False, identity_auth=False, _openssh_config_file="/dev/null")
    opts.update(kwargs)
    with gevent.Timeout(GUARD, AssertionError("connect hung")):
        return SSHClient(server.host, **opts)


def drain(lines):
    with gevent.Timeout(GUARD, AssertionError("output iteration hung")):
        return list(lines)


def test_exec_command_returns_the_1x_tuple(sshd, user_key):
    client = legacy_single(sshd, user_key)
    channel, host, stdout, stderr, stdin = client.exec_command("echo $((40 + 2)); exit 3")
    assert host == sshd.host
    assert drain(stdout) == ["42"]
    assert drain(stderr) == []  # a PTY merges stderr into stdout, as in 1.x
    assert client.get_exit_status(channel) == 3
    assert hasattr(stdin, "write")
    client.close()


def test_exec_command_escapes_like_1x(sshd, user_key):
    client = legacy_single(sshd, user_key)
    # 1.x escaped \\ " $ ` and wrapped the command in "...": the inner shell sees it verbatim.
    _, _, stdout, _, _ = client.exec_command('x=inner; echo "[$x]" `echo tick`')
    assert drain(stdout) == ["[inner] tick"]
    _, _, stdout, _, _ = client.exec_command("echo shell=$0", shell="sh -c")
    assert drain(stdout) == ["shell=sh"]
    client.close()


def test_legacy_command_layout():
    from pssh.ssh_client import legacy_command
    assert legacy_command('echo "$A"') == '$SHELL -c "echo \\"\\$A\\""'
    assert legacy_command("id", sudo=True) == 'sudo -S $SHELL -c "id"'
    assert legacy_command("id", user="bob", shell="bash -c") == 'sudo -u bob -S bash -c "id"'
    assert legacy_command("id", use_shell=False) == "id"


def test_openssh_config_supplies_host_port_user_and_key(sshd, user_key, tmp_path):
    from pssh.ssh_client import SSHClient
    from pssh.utils import read_openssh_config
    config = tmp_path / "config"
    config.write_text("Host compat-alias\n  HostName %s\n  Port %d\n  User %s\n"
                      "  IdentityFile %s\n" % (sshd.host, sshd.port, sshd.user, user_key.private))
    with open(user_key.private, "rb") as key_file:
        key_bytes = key_file.read()
    assert read_openssh_config("compat-alias", config_file=str(config)) == (
        sshd.host, sshd.user, sshd.port, key_bytes)
    assert read_openssh_config("other", config_file=str(config)) == ("other", None, 22, None)
    assert read_openssh_config("compat-alias", config_file=str(tmp_path / "missing")) is None
    with gevent.Timeout(GUARD, AssertionError("connect hung")):
        client = SSHClient("compat-alias", num_retries=1, allow_agent=False,
                           identity_auth=False, _openssh_config_file=str(config))
    _, host, stdout, _, _ = client.exec_command("echo via-config")
    assert host == "compat-alias"
    assert drain(stdout) == ["via-config"]
    client.close()


# -- agent forwarding: on by default in 1.x, quiet where there is no agent -----------------------

@pytest.fixture
def pssh_warnings(caplog):
    caplog.set_level(logging.WARNING, logger="pssh")
    return caplog


def test_single_1x_forwards_by_default_but_not_without_agent(sshd, user_key, monkeypatch,
                                                             pssh_warnings):
    import inspect
    from pssh.ssh_client import SSHClient
    assert inspect.signature(SSHClient).parameters["forward_ssh_agent"].default is True
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    client = legacy_single(sshd, user_key)
    _, _, stdout, _, _ = client.exec_command("echo ok")
    assert drain(stdout) == ["ok"]
    assert client.forward_ssh_agent is False
    assert not [r for r in pssh_warnings.records if "forward" in r.getMessage()]
    client.close()


def test_parallel_1x_no_agent_no_warning(sshd, user_key, monkeypatch, pssh_warnings):
    from pssh.pssh_client import ParallelSSHClient
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    client = ParallelSSHClient([sshd.host], port=sshd.port, user=sshd.user,
                               pkey=user_key.private, num_retries=1, timeout=10,
                               allow_agent=False, identity_auth=False)
    with gevent.Timeout(GUARD, AssertionError("run_command hung")):
        output = client.run_command("echo ok")
        client.join(output)
    assert list(output[sshd.host]["stdout"]) == ["ok"]
    assert not [r for r in pssh_warnings.records if "forward" in r.getMessage()]
    client.close()


def test_forwarding_kept_where_an_agent_exists(monkeypatch, tmp_path):
    from pssh.agent import SSHAgent
    from pssh.ssh_client import agent_forwarding_wanted
    from pssh.connection.agent_forward import forwarding_unavailable
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    assert agent_forwarding_wanted(True) is (forwarding_unavailable() is None)
    assert agent_forwarding_wanted(False) is False
    # A programmatic agent has nothing to forward (pssh refuses forwarding it): skipped.
    assert agent_forwarding_wanted(True, SSHAgent()) is False


# -- host_clients and dict output ------------------------------------------------------------------

def test_host_clients_and_dict_output(sshd_farm, user_key):
    from pssh.pssh_client import ParallelSSHClient
    from pssh.single import SSHClient
    hosts = [sshd_farm.hosts[0], sshd_farm.hosts[1], sshd_farm.hosts[0]]
    client = ParallelSSHClient(hosts, port=sshd_farm.port, pkey=user_key.private,
                               num_retries=1, timeout=10, allow_agent=False,
                               identity_auth=False)
    assert client.host_clients == {}
    with gevent.Timeout(GUARD, AssertionError("run_command hung")):
        output = client.run_command("echo $((6 * 7))")
        client.join(output)
    assert sorted(output) == sorted([hosts[0], hosts[1], hosts[0] + "_1"])
    for host_output in output.values():
        assert list(host_output["stdout"]) == ["42"]
        assert host_output.exit_code == 0
    clients = client.host_clients
    assert sorted(clients) == sorted(hosts[:2])
    assert all(isinstance(c, SSHClient) for c in clients.values())
    assert clients[hosts[0]].host == hosts[0]
    client.close()
