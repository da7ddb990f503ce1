"""Agent forwarding against a real ssh-agent started by the test: remote ``ssh-add -l`` and an
onward ``ssh`` from the remote host use the local agent's keys."""
import logging
import os
import shutil
import subprocess
import tempfile
import time

import gevent
import pytest

from embedded_server.keys import fingerprint
from pssh.agent import SSHAgent
from pssh.exceptions import InvalidAPIUseError
from pssh.parallel import ParallelSSHClient
from single_client import READ_TIMEOUT, connect

ONWARD_OPTIONS = ("-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                  "-o LogLevel=ERROR -o ConnectTimeout=10")


def _start_agent(directory):
    path = os.path.join(directory, "agent.sock")
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", path], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not os.path.exists(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("ssh-agent did not start")
        time.sleep(0.02)
    return proc, path


@pytest.fixture
def ssh_agent(unauthorized_key, monkeypatch):
    """A real ssh-agent holding ``unauthorized_key`` (a key no fixture server accepts), as
    ``$SSH_AUTH_SOCK`` of this process; yields (process, socket path)."""
    directory = tempfile.mkdtemp(prefix="pssh-agent-")  # short: unix socket paths are limited
    proc, path = _start_agent(directory)
    try:
        subprocess.run(["ssh-add", unauthorized_key.private], check=True, capture_output=True,
                       timeout=10, env=dict(os.environ, SSH_AUTH_SOCK=path))
        monkeypatch.setenv("SSH_AUTH_SOCK", path)
        yield proc, path
    finally:
        proc.kill()
        proc.wait(5)
        shutil.rmtree(directory, ignore_errors=True)


def _run(client, command):
    out = client.run_command(command, read_timeout=READ_TIMEOUT)
    stdout = list(out.stdout)
    stderr = list(out.stderr)
    client.wait_finished(out)
    return out.exit_code, stdout, stderr


def _wait_idle(forwarder, seconds=10):
    deadline = time.monotonic() + seconds
    while forwarder.active and time.monotonic() < deadline:
        gevent.sleep(0.05)
    return forwarder.active


def test_remote_ssh_add_lists_the_forwarded_key(sshd, user_key, unauthorized_key, ssh_agent):
    expected = fingerprint(unauthorized_key.public)
    client = connect(sshd, user_key, forward_ssh_agent=True)
    try:
        for _ in range(3):  # a fresh agent channel per command, each relayed and freed
            code, stdout, stderr = _run(client, "ssh-add -l")
            assert code == 0, stderr
            assert any(expected in line for line in stdout), stdout
        assert _wait_idle(client._agent_forwarder) == 0
        assert client._agent_forwarder.served == 3
        # several requests on one agent connection, and the session stays usable
        code, stdout, _ = _run(client, "ssh-add -l >/dev/null && ssh-add -L | wc -l")
        assert (code, stdout) == (0, ["1"])
        assert _run(client, "echo still-fine")[1] == ["still-fine"]
    finally:
        client.close()


def test_without_forwarding_the_remote_has_no_agent(sshd, user_key, ssh_agent):
    client = connect(sshd, user_key)
    try:
        code, stdout, _ = _run(client, 'echo "[$SSH_AUTH_SOCK]"; ssh-add -l')
        assert stdout[0] == "[]"
        assert code == 2  # ssh-add: could not open a connection to the agent
    finally:
        client.close()


def test_onward_ssh_authenticates_with_the_forwarded_agent(make_sshd, sshd, user_key,
                                                           unauthorized_key, ssh_agent):
    # The second server accepts only the key held by the local agent.
    inner = make_sshd(authorized_keys=[unauthorized_key])
    onward = "ssh -p %d %s %s@%s echo onward-$((6*7))" % (inner.port, ONWARD_OPTIONS,
                                                          inner.user, inner.host)
    client = connect(sshd, user_key, forward_ssh_agent=True)
    try:
        code, stdout, stderr = _run(client, onward)
        assert (code, stdout) == (0, ["onward-42"]), stderr
    finally:
        client.close()
    plain = connect(sshd, user_key)
    try:
        code, stdout, _ = _run(plain, onward)
        assert code == 255 and stdout == []  # the same command fails without forwarding
    finally:
        plain.close()


def test_parallel_client_forwards_to_every_host(sshd_farm, user_key, unauthorized_key,
                                                ssh_agent):
    expected = fingerprint(unauthorized_key.public)
    hosts = list(sshd_farm.hosts) * 2  # two connections per server
    client = ParallelSSHClient(hosts, port=sshd_farm.port, pkey=user_key.private,
                               num_retries=1, timeout=20, allow_agent=False,
                               identity_auth=False, forward_ssh_agent=True)
    try:
        output = client.run_command("ssh-add -l", read_timeout=READ_TIMEOUT)
        client.join(output, timeout=READ_TIMEOUT)
        for host_out in output:
            lines = list(host_out.stdout)
            assert host_out.exit_code == 0, (host_out.host, list(host_out.stderr))
            assert any(expected in line for line in lines), (host_out.host, lines)
    finally:
        client.close()


def test_local_agent_gone_fails_the_remote_request_not_the_client(sshd, user_key, ssh_agent,
                                                                  caplog):
    proc, _ = ssh_agent
    client = connect(sshd, user_key, forward_ssh_agent=True)
    try:
        proc.kill()
        proc.wait(5)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="pssh.connection.agent_forward"):
            code, _, _ = _run(client, "ssh-add -l")
        assert code != 0
        assert time.monotonic() - started < READ_TIMEOUT
        assert any(sshd.host in rec.getMessage() and "agent forwarding" in rec.getMessage()
                   for rec in caplog.records)
        assert _wait_idle(client._agent_forwarder) == 0
        assert _run(client, "echo alive")[1] == ["alive"]
    finally:
        client.close()


def test_no_local_agent_warns_and_runs_without(sshd, user_key, monkeypatch, caplog):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with caplog.at_level(logging.WARNING, logger="pssh.single"):
        client = connect(sshd, user_key, forward_ssh_agent=True)
    try:
        assert any("SSH_AUTH_SOCK" in rec.getMessage() and sshd.host in rec.getMessage()
                   for rec in caplog.records)
        assert _run(client, "ssh-add -l")[0] == 2
    finally:
        client.close()


def test_server_refusing_agent_forwarding_warns_and_runs(make_sshd, user_key, ssh_agent,
                                                         caplog):
    server = make_sshd(extra_config={"AllowAgentForwarding": "no"})
    client = connect(server, user_key, forward_ssh_agent=True)
    try:
        with caplog.at_level(logging.WARNING, logger="pssh.single"):
            code, stdout, _ = _run(client, "echo ran; ssh-add -l")
        assert stdout == ["ran"] and code == 2
        assert any("refused agent forwarding" in rec.getMessage() for rec in caplog.records)
    finally:
        client.close()


def test_later_commands_on_one_connection_do_not_warn_of_a_refusal(sshd, user_key,
                                                                     unauthorized_key,
                                                                     ssh_agent, caplog):
    # sshd grants one agent-forwarding request per connection and refuses the later ones,
    # while its agent socket keeps serving every later command: no warning for those.
    expected = fingerprint(unauthorized_key.public)
    client = connect(sshd, user_key, forward_ssh_agent=True)
    try:
        with caplog.at_level(logging.WARNING, logger="pssh.single"):
            for _ in range(3):
                code, stdout, stderr = _run(client, "ssh-add -l")
                assert code == 0, stderr
                assert any(expected in line for line in stdout), stdout
        warnings = [rec.getMessage() for rec in caplog.records
                    if rec.levelno >= logging.WARNING and rec.name == "pssh.single"]
        assert warnings == []
    finally:
        client.close()


def test_forwarding_a_programmatic_agent_is_refused(sshd, user_key):
    agent = SSHAgent()
    agent.add_key(user_key.private)
    with pytest.raises(InvalidAPIUseError) as info:
        connect(sshd, user_key, forward_ssh_agent=True, agent=agent)
    assert "SSHAgent" in str(info.value)
    with pytest.raises(InvalidAPIUseError):
        ParallelSSHClient([sshd.host], port=sshd.port, forward_ssh_agent=True, agent=agent)


def test_dropped_client_releases_its_forwarder(sshd, user_key, ssh_agent):
    import gc
    import weakref

    from pssh.connection import agent_forward as _agent_forward
    client = connect(sshd, user_key, forward_ssh_agent=True)
    out = client.run_command("ssh-add -l", read_timeout=READ_TIMEOUT)
    assert list(out.stdout)
    forwarder = weakref.ref(client._agent_forwarder)
    session_key = client._agent_forwarder._session_ptr
    assert _wait_idle(forwarder()) == 0
    # the output alone keeps the forwarder (its command may still ask the agent)
    del client
    gc.collect()
    assert forwarder() is not None
    del out
    gc.collect()
    assert forwarder() is None
    assert session_key not in _agent_forward._FORWARDERS


def test_agent_connections_are_capped_during_authentication(make_sshd, unauthorized_key,
                                                            ssh_agent, monkeypatch):
    from pssh.connection import agent_forward as _agent_forward

    class Recording(_agent_forward.ProcessSlots):
        peak = 0

        def acquire(self, *args, **kwargs):
            got = super().acquire(*args, **kwargs)
            Recording.peak = max(Recording.peak, self.in_use)
            return got

    monkeypatch.setattr(_agent_forward, "_AUTH_SLOTS", Recording(2))
    server = make_sshd(authorized_keys=[unauthorized_key])  # only the agent's key logs in
    client = ParallelSSHClient([server.host] * 8, port=server.port, user=server.user,
                               num_retries=1, timeout=20, allow_agent=True,
                               identity_auth=False, pool_size=8)
    try:
        output = client.run_command("echo via-agent", read_timeout=READ_TIMEOUT)
        client.join(output, timeout=READ_TIMEOUT)
        assert [list(o.stdout) for o in output] == [["via-agent"]] * 8
        assert Recording.peak == 2
    finally:
        client.close()


def test_forwarding_without_the_libssh2_binding_is_refused_clearly(sshd, user_key,
                                                                    monkeypatch):
    from pssh.connection import agent_forward as _agent_forward
    from pssh.core import libssh2 as _libssh2
    monkeypatch.setattr(_agent_forward, "LIB", None)
    monkeypatch.setattr(_libssh2, "unavailable_reason", "ssh2-python object layout changed")
    with pytest.raises(InvalidAPIUseError) as info:
        connect(sshd, user_key, forward_ssh_agent=True)
    assert "layout changed" in str(info.value)


def test_interactive_shell_gets_the_forwarded_agent(sshd, user_key, unauthorized_key,
                                                    ssh_agent):
    client = connect(sshd, user_key, forward_ssh_agent=True)
    try:
        with client.open_shell(read_timeout=READ_TIMEOUT) as shell:
            shell.run("ssh-add -l")
            shell.run("exit 0")
        lines = list(shell.stdout)
        assert any(fingerprint(unauthorized_key.public) in line for line in lines), lines
    finally:
        client.close()
