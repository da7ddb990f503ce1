"""The programmatic SSHAgent (1.x)."""
import pytest

from pssh.agent import SSHAgent
from pssh.clients import SSHClient
from pssh.exceptions import AuthenticationError


def test_programmatic_agent_keys_authenticate(sshd, user_key, unauthorized_key):
    agent = SSHAgent()
    agent.add_key(unauthorized_key.private)
    with open(user_key.private, "rb") as key_file:
        agent.add_key(key_file.read())
    assert len(agent.get_keys()) == 2
    client = SSHClient(sshd.host, port=sshd.port, agent=agent, identity_auth=False,
                       num_retries=1, timeout=30)
    out = client.run_command("echo agent")
    assert list(out.stdout) == ["agent"]
    client.close()


def test_programmatic_agent_replaces_system_agent(sshd, unauthorized_key):
    agent = SSHAgent()
    agent.add_key(unauthorized_key.private)
    with pytest.raises(AuthenticationError) as info:
        SSHClient(sshd.host, port=sshd.port, agent=agent, identity_auth=False,
                  num_retries=1, timeout=30)
    assert info.value.host == sshd.host


def test_encrypted_key_in_agent_uses_its_passphrase(sshd, encrypted_key,
                                                     encrypted_key_passphrase):
    agent = SSHAgent()
    agent.add_key(encrypted_key.private, passphrase=encrypted_key_passphrase)
    client = SSHClient(sshd.host, port=sshd.port, agent=agent, identity_auth=False,
                       num_retries=1, timeout=30)
    assert list(client.run_command("echo ok").stdout) == ["ok"]
    client.close()

