"""Agent forwarding on 300 connections at once (opt-in: --scale or PSSH_SCALE=1).

Every host asks the forwarded agent twice in one command, so hundreds of agent channels
arrive together; the per-process cap on local agent connections makes them queue instead
of exhausting the agent. The agent is a real ssh-agent started here.
"""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from embedded_server import ServerFarm
from embedded_server.keys import fingerprint, make_user_key
from pssh.parallel import ParallelSSHClient

pytestmark = pytest.mark.scale

N_SERVERS = 10
PER_SERVER = 30
BOUND = 180


@pytest.fixture(scope="module")
def agent_with_key():
    directory = tempfile.mkdtemp(prefix="pssh-sagent-")
    key = make_user_key(directory, name="forwarded")
    sock = os.path.join(directory, "agent.sock")
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            assert proc.poll() is None and time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.02)
        subprocess.run(["ssh-add", key.private], check=True, capture_output=True, timeout=10,
                       env=dict(os.environ, SSH_AUTH_SOCK=sock))
        yield sock, key
    finally:
        proc.kill()
        proc.wait(5)
        shutil.rmtree(directory, ignore_errors=True)


def test_forwarding_to_hundreds_of_hosts_at_once(agent_with_key, authorized_keys, user_key,
                                                 monkeypatch):
    sock, key = agent_with_key
    monkeypatch.setenv("SSH_AUTH_SOCK", sock)
    farm = ServerFarm(N_SERVERS, first_ip="127.0.5.2", shared_host_key=True,
                      authorized_keys=authorized_keys)
    try:
        farm.start()
        hosts = [host for host in farm.hosts for _ in range(PER_SERVER)]
        client = ParallelSSHClient(hosts, port=farm.port, pkey=user_key.private,
                                   pool_size=len(hosts), num_retries=1, timeout=120,
                                   allow_agent=False, identity_auth=False,
                                   forward_ssh_agent=True)
        started = time.monotonic()
        output = client.run_command("ssh-add -l && ssh-add -L | wc -l")
        client.join(output, timeout=BOUND)
        expected = fingerprint(key.public)
        bad = []
        for host_out in output:
            lines = list(host_out.stdout)
            if host_out.exit_code != 0 or not lines or expected not in lines[0] or \
                    lines[-1] != "1":
                bad.append((host_out.host, host_out.exit_code, lines, list(host_out.stderr)))
        client.close()
        assert bad == []
        assert time.monotonic() - started < BOUND
    finally:
        farm.stop_all()
