"""SSHClient authentication against a real sshd: keys, passphrases, passwords, identities."""

import os
import time

import pytest

from pssh.exceptions import AuthenticationError, InvalidAPIUseError, PKeyFileError
from pssh.single import SSHClient

CONNECT_TIMEOUT = 20  # generous: a loaded CI host can take seconds to handshake
READ_TIMEOUT = 30


def connect(server, **kwargs):
    opts = dict(port=server.port, user=server.user, num_retries=1, retry_delay=0.1,
                timeout=CONNECT_TIMEOUT, allow_agent=False, identity_auth=False)
    opts.update(kwargs)
    return SSHClient(server.host, **opts)


def whoami(client):
    out = client.run_command("whoami", read_timeout=READ_TIMEOUT)
    lines = list(out.stdout)
    client.wait_finished(out, timeout=READ_TIMEOUT)
    return lines


def assert_auth_error(info, server):
    exc = info.value
    assert exc.host == server.host
    assert exc.port == server.port
    assert server.host in str(exc)


@pytest.fixture(scope="module")
def pam_sshd(authorized_keys):
    """A server whose only password-like method is keyboard-interactive (through PAM)."""
    from embedded_server import OpenSSHServer
    srv = OpenSSHServer(authorized_keys=authorized_keys, password_auth=False,
                        extra_config={"UsePAM": "yes"})
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


# -- private keys --------------------------------------------------------------------------------

def test_pkey_as_path(sshd, user_key):
    with connect(sshd, pkey=user_key.private) as c:
        assert c.pkey == user_key.private
        assert whoami(c) == [sshd.user]


def test_pkey_as_bytes(sshd, user_key):
    with open(user_key.private, "rb") as fh:
        data = fh.read()
    with connect(sshd, pkey=data) as c:
        assert c.pkey == data
        assert whoami(c) == [sshd.user]


def test_pkey_path_with_tilde(sshd, user_key, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    with open(user_key.private, "rb") as src:
        (home / "my_key").write_bytes(src.read())
    os.chmod(home / "my_key", 0o600)
    monkeypatch.setenv("HOME", str(home))
    with connect(sshd, pkey="~/my_key") as c:
        assert whoami(c) == [sshd.user]


def test_rsa_key(sshd, rsa_key):
    with connect(sshd, pkey=rsa_key.private) as c:
        assert whoami(c) == [sshd.user]


def test_encrypted_key_with_passphrase(sshd, encrypted_key, encrypted_key_passphrase):
    with connect(sshd, pkey=encrypted_key.private, password=encrypted_key_passphrase) as c:
        assert whoami(c) == [sshd.user]


def test_encrypted_key_wrong_passphrase(sshd, encrypted_key):
    with pytest.raises(AuthenticationError) as info:
        connect(sshd, pkey=encrypted_key.private, password="not-the-passphrase")
    assert_auth_error(info, sshd)


def test_encrypted_key_without_passphrase(sshd, encrypted_key):
    with pytest.raises(AuthenticationError) as info:
        connect(sshd, pkey=encrypted_key.private)
    assert_auth_error(info, sshd)


def test_unauthorized_key(sshd, unauthorized_key):
    with pytest.raises(AuthenticationError) as info:
        connect(sshd, pkey=unauthorized_key.private)
    assert_auth_error(info, sshd)


def test_garbage_key_file(sshd, tmp_path):
    path = tmp_path / "garbage_key"
    path.write_bytes(os.urandom(600))
    with pytest.raises(AuthenticationError) as info:
        connect(sshd, pkey=str(path))
    assert_auth_error(info, sshd)


def test_garbage_key_bytes(sshd):
    with pytest.raises(AuthenticationError):
        connect(sshd, pkey=b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot a key\n")


def test_missing_key_path_fails_at_construction_before_connecting(tmp_path):
    missing = str(tmp_path / "no_such_key")
    started = time.monotonic()
    # an unresolvable host proves that nothing was attempted on the network
    with pytest.raises(PKeyFileError) as info:
        SSHClient("nonexistent.invalid", pkey=missing, num_retries=1, retry_delay=0.1)
    assert missing in str(info.value)
    assert time.monotonic() - started < 1


def test_pkey_of_wrong_type():
    with pytest.raises(TypeError):
        SSHClient("nonexistent.invalid", pkey=1234, num_retries=1)


def test_unreadable_key_file(tmp_path, user_key):
    if os.geteuid() == 0:
        pytest.skip("root reads any file: chmod 000 is not unreadable for root")
    path = tmp_path / "unreadable_key"
    with open(user_key.private, "rb") as src:
        path.write_bytes(src.read())
    os.chmod(path, 0)
    with pytest.raises(PKeyFileError):
        SSHClient("nonexistent.invalid", pkey=str(path), num_retries=1)


def test_given_pkey_disables_other_methods(sshd, user_key, unauthorized_key):
    class WithIdentity(SSHClient):
        IDENTITIES = (user_key.private,)
    # the default identity would succeed, but a given pkey is the only method tried
    with pytest.raises(AuthenticationError):
        WithIdentity(sshd.host, port=sshd.port, user=sshd.user, pkey=unauthorized_key.private,
                     identity_auth=True, allow_agent=False, num_retries=1, retry_delay=0.1,
                     timeout=CONNECT_TIMEOUT)


# -- identities ----------------------------------------------------------------------------------

def test_identity_auth_from_identities(sshd, user_key, tmp_path):
    class WithIdentity(SSHClient):
        IDENTITIES = (str(tmp_path / "id_missing"), user_key.private)
    with WithIdentity(sshd.host, port=sshd.port, user=sshd.user, pkey=None, allow_agent=False,
                      identity_auth=True, num_retries=1, retry_delay=0.1,
                      timeout=CONNECT_TIMEOUT) as c:
        assert whoami(c) == [sshd.user]


def test_identities_tried_in_order_after_failures(sshd, user_key, unauthorized_key):
    class WithIdentity(SSHClient):
        IDENTITIES = (unauthorized_key.private, user_key.private)
    with WithIdentity(sshd.host, port=sshd.port, user=sshd.user, allow_agent=False,
                      num_retries=1, retry_delay=0.1, timeout=CONNECT_TIMEOUT) as c:
        assert whoami(c) == [sshd.user]


def test_identity_auth_false_ignores_identities(sshd, user_key):
    class WithIdentity(SSHClient):
        IDENTITIES = (user_key.private,)
    with pytest.raises(AuthenticationError):
        WithIdentity(sshd.host, port=sshd.port, user=sshd.user, allow_agent=False,
                     identity_auth=False, num_retries=1, retry_delay=0.1,
                     timeout=CONNECT_TIMEOUT)


def test_no_method_available(sshd):
    started = time.monotonic()
    with pytest.raises(AuthenticationError) as info:
        connect(sshd)
    assert_auth_error(info, sshd)
    assert time.monotonic() - started < CONNECT_TIMEOUT


# -- passwords -----------------------------------------------------------------------------------

def test_password_auth(sshd, password_user):
    with connect(sshd, user=password_user.name, password=password_user.password) as c:
        assert whoami(c) == [password_user.name]


def test_wrong_password(sshd, password_user):
    with pytest.raises(AuthenticationError) as info:
        connect(sshd, user=password_user.name, password="wrong-" + password_user.password)
    assert_auth_error(info, sshd)


def test_password_after_failing_identity(sshd, password_user, unauthorized_key):
    class WithIdentity(SSHClient):
        IDENTITIES = (unauthorized_key.private,)
    with WithIdentity(sshd.host, port=sshd.port, user=password_user.name,
                      password=password_user.password, allow_agent=False, num_retries=1,
                      retry_delay=0.1, timeout=CONNECT_TIMEOUT) as c:
        assert whoami(c) == [password_user.name]


def test_pkey_given_password_is_not_tried(sshd, password_user, unauthorized_key):
    # password doubles as the key passphrase; with a pkey nothing else is attempted
    with pytest.raises(AuthenticationError):
        connect(sshd, user=password_user.name, password=password_user.password,
                pkey=unauthorized_key.private)


def test_keyboard_interactive(pam_sshd, password_user):
    with connect(pam_sshd, user=password_user.name, password=password_user.password,
                 keyboard_interactive=True) as c:
        assert whoami(c) == [password_user.name]


def test_keyboard_interactive_wrong_password(pam_sshd, password_user):
    with pytest.raises(AuthenticationError) as info:
        connect(pam_sshd, user=password_user.name, password="wrong",
                keyboard_interactive=True)
    assert_auth_error(info, pam_sshd)


def test_plain_password_refused_where_only_keyboard_interactive(pam_sshd, password_user):
    with pytest.raises(AuthenticationError):
        connect(pam_sshd, user=password_user.name, password=password_user.password)


def test_keyboard_interactive_requires_password():
    with pytest.raises(InvalidAPIUseError):
        SSHClient("nonexistent.invalid", keyboard_interactive=True, num_retries=1)


def test_auth_runs_the_chain_with_the_clients_settings(sshd, user_key, monkeypatch):
    # 2.x code calls client.auth(); it must hand the chain the client's resolved settings
    # (identities, user, ...), not the client object.
    from pssh.connection import connect as connect_module
    client = connect(sshd, pkey=user_key.private)
    seen = []
    monkeypatch.setattr(connect_module, "authenticate",
                        lambda settings, session, waiter, deadline: seen.append(settings))
    client.auth()
    [settings] = seen
    assert settings is client.settings
    assert settings.user == sshd.user and settings.identities is not None
    client.close()
