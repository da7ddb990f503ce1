"""``@cert-authority`` known_hosts lines against a real sshd that offers a host certificate.

libssh2 1.11.1 (bundled with ssh2-python 1.2) cannot negotiate certificate host keys, so pssh
cannot verify host certificates. These tests pin that down: the limitation itself (a canary
that fails once libssh2 learns to do it, so the feature can be built), and pssh's behaviour
meanwhile: a CA line makes no host known, is named in refusals and warned about when an
unknown host is accepted, and never makes the handshake ask for a certificate.
"""

import base64
import socket
import subprocess

import pytest

from embedded_server.keys import ssh_keygen_path
from pssh.exceptions import HostKeyError
from single_client import connect

TIMEOUT = 10


def keygen(*args):
    subprocess.run([ssh_keygen_path(), "-q"] + list(args), check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    """Path of an ed25519 CA private key (its public key is ``ca + ".pub"``)."""
    path = str(tmp_path_factory.mktemp("ca") / "host_ca")
    keygen("-t", "ed25519", "-N", "", "-C", "test host CA", "-f", path)
    return path


def cert_server(make_sshd, ca, kind="ed25519"):
    """A server whose host key is certified by ``ca`` for its address, offering the cert."""
    srv = make_sshd(start=False, host_key_kind=kind, log_level="VERBOSE")
    keygen("-s", ca, "-I", "test host", "-h", "-n", srv.host, srv.host_public_key_path)
    srv.extra_config = {"HostCertificate": srv.host_key_path + "-cert.pub"}
    srv.start()
    return srv


def ca_line(srv, ca):
    with open(ca + ".pub") as pub:
        keytype, data = pub.read().split()[:2]
    return "@cert-authority [%s]:%d %s %s" % (srv.host, srv.port, keytype, data)


def write_lines(path, *lines):
    path.write_text("".join(text + "\n" for text in lines))
    return str(path)


def blob_of(pub_path):
    with open(pub_path) as pub:
        return base64.b64decode(pub.read().split()[1])


@pytest.mark.parametrize("kind,method", [
    ("ed25519", "ssh-ed25519-cert-v01@openssh.com"),
    ("ecdsa", "ecdsa-sha2-nistp256-cert-v01@openssh.com"),
    ("rsa", "rsa-sha2-512-cert-v01@openssh.com"),
])
def test_libssh2_cannot_negotiate_certificate_host_keys(make_sshd, ca, kind, method):
    """Canary. RSA and ECDSA: the cert methods have no signature verifier, so no method is
    agreed (KexFailureError). Ed25519: the method is agreed, then its key importer rejects the
    certificate blob (KeyExchangeError). If this starts passing a handshake, libssh2 has learnt
    host certificates and pssh.hostkeys can verify @cert-authority lines."""
    from ssh2.exceptions import KexFailureError, KeyExchangeError
    from ssh2.session import LIBSSH2_METHOD_HOSTKEY, Session

    srv = cert_server(make_sshd, ca, kind)
    sock = socket.create_connection((srv.host, srv.port), timeout=TIMEOUT)
    try:
        session = Session()
        session.set_timeout(TIMEOUT * 1000)
        assert method in session.supported_algs(LIBSSH2_METHOD_HOSTKEY)
        session.method_pref(LIBSSH2_METHOD_HOSTKEY, method)
        with pytest.raises((KexFailureError, KeyExchangeError)):
            session.handshake(sock)
    finally:
        sock.close()


def test_ca_only_host_refused_under_strict(make_sshd, ca, user_key, tmp_path):
    srv = cert_server(make_sshd, ca)
    path = write_lines(tmp_path / "known_hosts", ca_line(srv, ca))
    with pytest.raises(HostKeyError) as info:
        connect(srv, user_key, host_key_policy="strict", known_hosts=[path], timeout=TIMEOUT)
    exc = info.value
    assert (exc.host, exc.port, exc.reason) == (srv.host, srv.port, "unknown")
    assert exc.fingerprint == srv.host_key_fingerprint
    text = str(exc)
    assert "@cert-authority %s:1 for [%s]:%d not used" % (path, srv.host, srv.port) in text
    assert "libssh2 cannot negotiate certificate host keys" in text
    log = srv.log_tail(200, since_start=True)
    assert "publickey" not in log and "Accepted" not in log


def test_cert_server_known_by_plain_key_passes_strict(make_sshd, ca, user_key, tmp_path):
    # The handshake must keep negotiating the plain key: asking libssh2 for the certificate
    # method first would fail the handshake of a server that offers one.
    srv = cert_server(make_sshd, ca)
    path = write_lines(tmp_path / "known_hosts", ca_line(srv, ca), srv.known_hosts_line())
    with connect(srv, user_key, host_key_policy="strict", known_hosts=[path],
                 timeout=TIMEOUT) as client:
        assert client.session.hostkey()[0] == blob_of(srv.host_public_key_path)
        out = client.run_command("echo ok")
        assert list(out.stdout) == ["ok"]


def test_ca_only_host_accepted_by_default_with_warning(make_sshd, ca, user_key, tmp_path,
                                                       caplog):
    srv = cert_server(make_sshd, ca)
    path = write_lines(tmp_path / "known_hosts", ca_line(srv, ca))
    before = open(path).read()
    with caplog.at_level("WARNING", logger="pssh.hostkeys"):
        with connect(srv, user_key, known_hosts=[path], timeout=TIMEOUT) as client:
            out = client.run_command("echo ok")
            assert list(out.stdout) == ["ok"]
    warnings = [record.getMessage() for record in caplog.records
                if record.levelname == "WARNING" and record.name == "pssh.hostkeys"]
    assert len(warnings) == 1
    assert "without certificate verification" in warnings[0]
    assert "%s:1" % path in warnings[0] and srv.host_key_fingerprint in warnings[0]
    assert open(path).read() == before
