"""OpenSSH user certificates (libssh2 1.11: RSA certificates only)."""
import os
import subprocess

import pytest

from embedded_server import make_user_key
from pssh.clients import ParallelSSHClient, SSHClient
from pssh.config import HostConfig
from pssh.exceptions import AuthenticationError, InvalidAPIUseError


def _sign(ca, key, principal, directory):
    subprocess.run(["ssh-keygen", "-q", "-s", ca.private, "-I", "pssh-test", "-n", principal,
                    "-V", "+1h", key.public], check=True, cwd=directory)
    return key.public[:-len(".pub")] + "-cert.pub"


@pytest.fixture
def cert_setup(tmp_path, make_sshd):
    directory = str(tmp_path)
    os.chmod(directory, 0o755)
    ca = make_user_key(directory, kind="ed25519", name="ca")
    os.chmod(ca.public, 0o644)
    rsa = make_user_key(directory, kind="rsa", name="id_rsa_cert")
    ed = make_user_key(directory, kind="ed25519", name="id_ed_cert")
    server = make_sshd(authorized_keys=[], extra_config={"TrustedUserCAKeys": ca.public})
    rsa_cert = _sign(ca, rsa, server.user, directory)
    ed_cert = _sign(ca, ed, server.user, directory)
    return server, rsa, rsa_cert, ed, ed_cert


def test_rsa_certificate_authenticates(cert_setup):
    server, rsa, rsa_cert, _, _ = cert_setup
    with pytest.raises(AuthenticationError):
        SSHClient(server.host, port=server.port, pkey=rsa.private, num_retries=1, timeout=30)
    client = SSHClient(server.host, port=server.port, pkey=rsa.private, cert_file=rsa_cert,
                       num_retries=1, timeout=30)
    assert list(client.run_command("echo cert").stdout) == ["cert"]
    client.close()


def test_certificate_per_host_in_parallel(cert_setup):
    server, rsa, rsa_cert, _, _ = cert_setup
    client = ParallelSSHClient([server.host], port=server.port, num_retries=1, timeout=30,
                               host_config=[HostConfig(private_key=rsa.private,
                                                       cert_file=rsa_cert)])
    output = client.run_command("echo cert")
    assert list(output[0].stdout) == ["cert"]


def test_non_rsa_certificate_is_refused_clearly(cert_setup):
    server, _, _, ed, ed_cert = cert_setup
    with pytest.raises(InvalidAPIUseError) as info:
        SSHClient(server.host, port=server.port, pkey=ed.private, cert_file=ed_cert,
                  num_retries=1, timeout=30)
    assert "RSA" in str(info.value)
