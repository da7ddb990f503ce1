"""A known_hosts file that exists but cannot be read must not pass for an empty one in silence:
it may hold the key of the host being contacted, or a @revoked line for the key an impostor
offers. Tests run as root, where permission bits do not stop reading, so a directory stands in
for the unreadable file."""
import logging
import time

import pytest

from pssh.exceptions import HostKeyError
from pssh.single import SSHClient

TIMEOUT = 6


def _connect(server, key, **kwargs):
    return SSHClient(server.host, port=server.port, user=server.user, pkey=key.private,
                     num_retries=1, timeout=TIMEOUT, allow_agent=False, identity_auth=False,
                     **kwargs)


@pytest.fixture
def unreadable(tmp_path):
    path = tmp_path / "known_hosts"
    path.mkdir()  # exists, cannot be read as a file, whoever runs the test
    return str(path)


def test_strict_refuses_while_a_known_hosts_file_is_unreadable(sshd, user_key, unreadable,
                                                               tmp_path):
    readable = tmp_path / "readable_known_hosts"
    readable.write_text(sshd.known_hosts_line() + "\n")
    for files in ([unreadable], [str(readable), unreadable]):
        started = time.monotonic()
        with pytest.raises(HostKeyError) as info:
            _connect(sshd, user_key, host_key_policy="strict", known_hosts=files)
        assert time.monotonic() - started < TIMEOUT
        error = info.value
        assert (error.host, error.port, error.reason) == (sshd.host, sshd.port, "unreadable")
        assert error.locations == [unreadable]
        assert sshd.host in str(error) and unreadable in str(error)
        assert "cannot be read" in str(error) and "strict" in str(error)
    # the same files once readable: the host is known and accepted
    with _connect(sshd, user_key, host_key_policy="strict", known_hosts=[str(readable)]) as ok:
        assert list(ok.run_command("echo ok").stdout) == ["ok"]


@pytest.mark.parametrize("policy", [None, "accept-new"])
def test_other_policies_warn_naming_file_and_host(sshd, user_key, unreadable, caplog, policy):
    with caplog.at_level(logging.DEBUG, logger="pssh.hostkeys"):
        with _connect(sshd, user_key, host_key_policy=policy, known_hosts=[unreadable]) as c:
            assert list(c.run_command("echo ok").stdout) == ["ok"]
        with _connect(sshd, user_key, host_key_policy=policy, known_hosts=[unreadable]):
            pass
    about_file = [r for r in caplog.records
                  if unreadable in r.getMessage() and "cannot be read" in r.getMessage()]
    warnings = [r for r in about_file if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in about_file]  # once per file
    assert sshd.host in warnings[0].getMessage()
    assert any(r.levelno == logging.DEBUG for r in about_file)  # the next, quietly
