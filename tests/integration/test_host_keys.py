"""Host key verification against real sshd servers: policies, changed keys on the same address
and port, hashed and ``[host]:port`` entries, ``@revoked``, several files, accept-new recording,
per-host policies in ParallelSSHClient."""

import os
import shutil
import subprocess
import time

import pytest

from embedded_server import make_host_key
from pssh.config import HostConfig
from pssh.exceptions import HostKeyError
from pssh.parallel import ParallelSSHClient
from pssh.single import SSHClient

TIMEOUT = 10
POLICIES_THAT_CHECK = ["accept-unknown", "strict", "accept-new"]


def connect(server, key, **kwargs):
    opts = dict(port=server.port, user=server.user, pkey=key.private, num_retries=1,
                retry_delay=0.1, timeout=TIMEOUT, allow_agent=False, identity_auth=False)
    opts.update(kwargs)
    return SSHClient(server.host, **opts)


def echo(client, text="ok"):
    out = client.run_command("echo %s" % text)
    lines = list(out.stdout)
    client.wait_finished(out, timeout=TIMEOUT)
    return lines


def write_lines(path, *lines):
    with open(str(path), "w") as known:
        known.write("".join(line + "\n" for line in lines))
    return str(path)


@pytest.fixture
def server(make_sshd):
    return make_sshd(log_level="VERBOSE")


@pytest.fixture
def changed(server, tmp_path):
    """(server, known_hosts path, old fingerprint): the file holds the key the server had
    before it restarted on the same address and port with another key."""
    path = write_lines(tmp_path / "known_hosts", server.known_hosts_line())
    old = server.host_key_fingerprint
    server.replace_host_key()
    server.restart()
    assert server.host_key_fingerprint != old
    return server, path, old


@pytest.mark.parametrize("policy", POLICIES_THAT_CHECK)
def test_known_key_accepted(server, user_key, tmp_path, policy):
    path = write_lines(tmp_path / "kh", server.known_hosts_line())
    with connect(server, user_key, host_key_policy=policy, known_hosts=[path]) as client:
        assert client.host_key_policy == policy and client.known_hosts == [path]
        assert echo(client) == ["ok"]


@pytest.mark.parametrize("policy", POLICIES_THAT_CHECK + [None])
def test_changed_key_refused_before_auth(changed, user_key, policy):
    server, path, old = changed
    start = time.monotonic()
    with pytest.raises(HostKeyError) as info:
        connect(server, user_key, host_key_policy=policy, known_hosts=[path], num_retries=3,
                retry_delay=5)
    assert time.monotonic() - start < 5, "a refused host key is not retried"
    exc = info.value
    assert (exc.host, exc.port, exc.reason) == (server.host, server.port, "changed")
    assert exc.fingerprint == server.host_key_fingerprint
    assert exc.known_fingerprints == [old]
    assert exc.locations == ["%s:1" % path]
    text = str(exc)
    assert server.host in text and str(server.port) in text
    assert old in text and server.host_key_fingerprint in text
    # no credentials were offered to the impostor
    time.sleep(0.2)
    log = server.log_tail(200, since_start=True)
    assert "publickey" not in log and "Accepted" not in log


def test_changed_key_policy_off_connects(changed, user_key):
    server, path, _ = changed
    with connect(server, user_key, host_key_policy="off", known_hosts=[path]) as client:
        assert echo(client) == ["ok"]


def test_second_server_on_same_port(make_sshd, user_key, tmp_path):
    first = make_sshd()
    path = write_lines(tmp_path / "kh", first.known_hosts_line())
    port = first.port
    first.stop()
    second = make_sshd(port=port, host_key_kind="ecdsa")
    assert second.known_hosts_line().split()[0] == "[127.0.0.1]:%d" % port
    with pytest.raises(HostKeyError) as info:
        connect(second, user_key, known_hosts=[path])
    assert info.value.reason == "changed"
    assert "downgrade" in str(info.value)  # only an ecdsa key offered, ed25519 known


def test_unknown_host_per_policy(server, user_key, tmp_path):
    path = write_lines(tmp_path / "kh", "[127.0.0.1]:1 ssh-ed25519 "
                       "AAAAC3NzaC1lZDI1NTE5AAAAIHFq7F2K0gBkUa9RzZxHk1Jq6bZz3R6xY7O0E9c3p2fA")
    before = open(path).read()
    with connect(server, user_key, known_hosts=[path]) as client:
        assert client.host_key_policy == "accept-unknown"
        assert echo(client) == ["ok"]
    assert open(path).read() == before
    with pytest.raises(HostKeyError) as info:
        connect(server, user_key, host_key_policy="strict", known_hosts=[path])
    assert info.value.reason == "unknown"
    assert server.host_key_fingerprint in str(info.value)


def test_accept_new_records_then_strict_passes(server, user_key, tmp_path):
    path = str(tmp_path / "new" / "known_hosts")
    with connect(server, user_key, host_key_policy="accept-new", known_hosts=[path]) as client:
        assert echo(client) == ["ok"]
    assert open(path).read() == server.known_hosts_line() + "\n"
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o600)
    with connect(server, user_key, host_key_policy="strict", known_hosts=[path]) as client:
        assert echo(client) == ["ok"]
    server.replace_host_key()
    server.restart()
    with pytest.raises(HostKeyError):
        connect(server, user_key, host_key_policy="accept-new", known_hosts=[path])
    assert open(path).read().count("\n") == 1


def test_default_never_writes(server, user_key, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with connect(server, user_key) as client:
        assert client.known_hosts[0] == str(tmp_path / "home" / ".ssh" / "known_hosts")
        assert echo(client) == ["ok"]
    assert not os.path.exists(str(tmp_path / "home"))


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="needs ssh-keygen")
def test_hashed_entries(server, user_key, tmp_path):
    path = write_lines(tmp_path / "kh", "other.example ssh-ed25519 "
                       "AAAAC3NzaC1lZDI1NTE5AAAAIHFq7F2K0gBkUa9RzZxHk1Jq6bZz3R6xY7O0E9c3p2fA",
                       server.known_hosts_line())
    subprocess.run(["ssh-keygen", "-H", "-f", path], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    assert "127.0.0.1" not in open(path).read()
    with connect(server, user_key, host_key_policy="strict", known_hosts=[path]) as client:
        assert echo(client) == ["ok"]
    server.replace_host_key()
    server.restart()
    with pytest.raises(HostKeyError) as info:
        connect(server, user_key, host_key_policy="strict", known_hosts=[path])
    assert info.value.locations == ["%s:2" % path]


def test_plain_entry_does_not_cover_other_port(server, user_key, tmp_path):
    keytype, blob = server.known_hosts_line().split()[1:]
    path = write_lines(tmp_path / "kh", "%s %s %s" % (server.host, keytype, blob))
    with pytest.raises(HostKeyError) as info:  # "127.0.0.1" means port 22 only
        connect(server, user_key, host_key_policy="strict", known_hosts=[path])
    assert info.value.reason == "unknown"
    write_lines(path, "[%s]:%d,[other]:22 %s %s" % (server.host, server.port, keytype, blob))
    with connect(server, user_key, host_key_policy="strict", known_hosts=[path]) as client:
        assert echo(client) == ["ok"]


@pytest.mark.parametrize("policy", POLICIES_THAT_CHECK)
def test_revoked_key_refused(server, user_key, tmp_path, policy):
    path = write_lines(tmp_path / "kh", server.known_hosts_line(),
                       "@revoked " + server.known_hosts_line())
    with pytest.raises(HostKeyError) as info:
        connect(server, user_key, host_key_policy=policy, known_hosts=[path])
    assert info.value.reason == "revoked" and "%s:2" % path in str(info.value)


def test_revoked_wildcard_and_off(server, user_key, tmp_path):
    keytype, blob = server.known_hosts_line().split()[1:]
    path = write_lines(tmp_path / "kh", "@revoked * %s %s" % (keytype, blob))
    with pytest.raises(HostKeyError):
        connect(server, user_key, known_hosts=[path])
    with connect(server, user_key, host_key_policy="off", known_hosts=[path]) as client:
        assert echo(client) == ["ok"]


def test_several_files(changed, user_key, tmp_path):
    server, old_path, old = changed
    empty = write_lines(tmp_path / "empty", "# nothing")
    current = write_lines(tmp_path / "current", server.known_hosts_line())
    with connect(server, user_key, host_key_policy="strict",
                 known_hosts=[empty, str(tmp_path / "missing"), current]) as client:
        assert echo(client) == ["ok"]
    # the old key in one file, the new key in another: OpenSSH accepts a key listed anywhere
    with connect(server, user_key, host_key_policy="strict",
                 known_hosts=[old_path, current]) as client:
        assert echo(client) == ["ok"]
    with pytest.raises(HostKeyError) as info:
        connect(server, user_key, host_key_policy="accept-new", known_hosts=[empty, old_path])
    assert info.value.locations == ["%s:1" % old_path]


def test_known_type_preferred_in_handshake(make_sshd, user_key, tmp_path):
    """A server with ed25519, ecdsa and rsa host keys; only its rsa key is known: the handshake
    must negotiate rsa (libssh2 would otherwise pick ecdsa first) and pass strict checking."""
    keys = [make_host_key(str(tmp_path), kind) for kind in ("ecdsa", "ed25519", "rsa")]
    server = make_sshd(extra_config=["HostKey %s" % key.private for key in keys])
    keytype, blob = open(keys[2].public).read().split()[:2]
    path = write_lines(tmp_path / "kh", "[%s]:%d %s %s" % (server.host, server.port, keytype,
                                                           blob))
    with connect(server, user_key, host_key_policy="strict", known_hosts=[path]) as client:
        assert echo(client) == ["ok"]
        assert client.session.hostkey()[0][4:11] == b"ssh-rsa"


def test_parallel_per_host_policy(make_sshd, user_key, tmp_path):
    known = make_sshd()
    unknown = make_sshd()
    moved = make_sshd()
    path = write_lines(tmp_path / "kh", known.known_hosts_line(), moved.known_hosts_line())
    moved.replace_host_key()
    moved.restart()
    servers = [known, unknown, moved, unknown, moved]
    configs = [HostConfig(port=known.port),
               HostConfig(port=unknown.port),                          # strict: refused
               HostConfig(port=moved.port),                            # changed: refused
               HostConfig(port=unknown.port, host_key_policy="accept-unknown"),
               HostConfig(port=moved.port, host_key_policy="off")]
    client = ParallelSSHClient([srv.host for srv in servers], user=known.user,
                               pkey=user_key.private, num_retries=1, timeout=TIMEOUT,
                               allow_agent=False, identity_auth=False, host_config=configs,
                               host_key_policy="strict", known_hosts=[path])
    try:
        output = client.run_command("echo ok", stop_on_errors=False)
        client.join(output)
        results = [(host_out.exception.__class__.__name__ if host_out.exception else
                    list(host_out.stdout)) for host_out in output]
        assert results == [["ok"], "HostKeyError", "HostKeyError", ["ok"], ["ok"]]
        assert output[1].exception.reason == "unknown"
        assert output[2].exception.reason == "changed"
        assert output[2].exception.port == moved.port
    finally:
        client.close()
    # per-host known_hosts files and the default policy at the client level
    other = write_lines(tmp_path / "kh2", moved.known_hosts_line())
    client = ParallelSSHClient([moved.host, moved.host], user=moved.user, pkey=user_key.private,
                               num_retries=1, timeout=TIMEOUT, allow_agent=False,
                               identity_auth=False, port=moved.port,
                               host_config=[HostConfig(), HostConfig(known_hosts=[other])],
                               known_hosts=[path])
    try:
        output = client.run_command("echo ok", stop_on_errors=False)
        client.join(output)
        assert isinstance(output[0].exception, HostKeyError)
        assert list(output[1].stdout) == ["ok"]
    finally:
        client.close()


def test_parallel_accept_new_duplicates_record_once(server, user_key, tmp_path):
    path = str(tmp_path / "kh")
    client = ParallelSSHClient([server.host] * 4, port=server.port, user=server.user,
                               pkey=user_key.private, num_retries=1, timeout=TIMEOUT,
                               allow_agent=False, identity_auth=False,
                               host_key_policy="accept-new", known_hosts=[path])
    try:
        output = client.run_command("echo ok")
        client.join(output)
        assert [list(host_out.stdout) for host_out in output] == [["ok"]] * 4
    finally:
        client.close()
    assert open(path).read() == server.known_hosts_line() + "\n"


def test_constructor_validation():
    with pytest.raises(ValueError):
        ParallelSSHClient(["h"], host_key_policy="maybe")
    with pytest.raises(ValueError):
        ParallelSSHClient(["h"], known_hosts=[1])
    with pytest.raises(ValueError):
        SSHClient("127.0.0.1", port=1, host_key_policy="maybe")


def test_bastion_and_target_keys_checked_through_a_proxy(make_sshd, sshd_farm, user_key,
                                                         tmp_path):
    from pssh.exceptions import ProxyError
    bastion = make_sshd()
    target = sshd_farm[0]
    path = write_lines(tmp_path / "kh", bastion.known_hosts_line(), target.known_hosts_line())
    opts = dict(port=target.port, pkey=user_key.private, num_retries=1, timeout=TIMEOUT,
                allow_agent=False, identity_auth=False, proxy_host=bastion.host,
                proxy_port=bastion.port, known_hosts=[path])
    with SSHClient(target.host, host_key_policy="strict", **opts) as client:
        assert echo(client) == ["ok"]
    # the target is checked by its own name through the tunnel
    other = write_lines(tmp_path / "kh_other_target", bastion.known_hosts_line(),
                        target.known_hosts_line().split()[0] + " " + " ".join(
                            sshd_farm[1].known_hosts_line().split()[1:]))
    assert sshd_farm[1].host_key_fingerprint != target.host_key_fingerprint
    with pytest.raises(HostKeyError) as info:
        SSHClient(target.host, **dict(opts, known_hosts=[other]))
    assert info.value.host == target.host
    # a bastion whose key changed is refused before any credential is sent to it
    bastion.replace_host_key()
    bastion.restart()
    with pytest.raises(ProxyError) as info:
        SSHClient(target.host, **opts)
    assert isinstance(info.value.cause, HostKeyError)
    assert info.value.cause.host == bastion.host and info.value.cause.reason == "changed"
