"""ssh_config= on the clients against real sshd servers: connecting by Host alias, explicit
arguments winning over the file, IdentityFile/IdentitiesOnly, host key settings from the file,
per-host values in ParallelSSHClient."""

import pytest

from pssh.config import HostConfig
from pssh.exceptions import AuthenticationError, HostKeyError, ProxyError
from pssh.openssh_config import host_configs
from pssh.parallel import ParallelSSHClient
from pssh.single import SSHClient

TIMEOUT = 10


def write_config(tmp_path, text, name="ssh_config"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def echo(client):
    out = client.run_command("echo ok")
    lines = list(out.stdout)
    client.wait_finished(out, timeout=TIMEOUT)
    return out.host, lines


@pytest.fixture
def wrong_user(monkeypatch):
    """The local user name is not the server's login: only the file's User can work."""
    monkeypatch.setenv("USER", "no-such-user-pssh")
    monkeypatch.setenv("LOGNAME", "no-such-user-pssh")


@pytest.fixture
def no_agent(monkeypatch):
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)


def test_connect_by_alias_only(sshd, user_key, tmp_path, wrong_user, no_agent):
    path = write_config(tmp_path, """
Host myserver
    HostName %s
    Port %d
    User %s
    IdentityFile %s
    StrictHostKeyChecking no
    ConnectTimeout 9
    ServerAliveInterval 15
""" % (sshd.host, sshd.port, sshd.user, user_key.private))
    with SSHClient("myserver", ssh_config=path) as client:
        assert (client.host, client.settings.connect_host, client.port) == ("myserver", sshd.host,
                                                                    sshd.port)
        assert (client.user, client.timeout, client.keepalive_seconds) == (sshd.user, 9, 15)
        assert client.identity_files == (user_key.private,)
        assert client.host_key_policy == "off"
        assert echo(client) == ("myserver", ["ok"])


def test_ssh_config_true_reads_home_config(sshd, user_key, tmp_path, monkeypatch, no_agent):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        "Include conf.d/*\n")
    (home / ".ssh" / "conf.d").mkdir()
    (home / ".ssh" / "conf.d" / "test").write_text(
        "Host viahome\n  HostName %s\n  Port %d\n  IdentityFile %s\n"
        % (sshd.host, sshd.port, user_key.private))
    monkeypatch.setenv("HOME", str(home))
    with SSHClient("viahome", ssh_config=True, num_retries=1) as client:
        assert echo(client) == ("viahome", ["ok"])
    assert not (home / ".ssh" / "known_hosts").exists()  # default policy: nothing written


def test_not_read_unless_asked(sshd, user_key, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text("Host *\n  Port 1\n")
    monkeypatch.setenv("HOME", str(home))
    for flag in (None, False):
        with SSHClient(sshd.host, port=sshd.port, pkey=user_key.private, ssh_config=flag,
                       allow_agent=False, num_retries=1) as client:
            assert client.port == sshd.port and client.proxy_jump is None


def test_explicit_arguments_win(sshd, user_key, unauthorized_key, tmp_path, no_agent):
    path = write_config(tmp_path, """
Host srv
    HostName %s
    Port 1
    User nobody-here
    IdentityFile %s
    ServerAliveInterval 5
""" % (sshd.host, unauthorized_key.private))
    with SSHClient("srv", port=sshd.port, user=sshd.user, pkey=user_key.private,
                   keepalive_seconds=0, ssh_config=path, num_retries=1) as client:
        assert (client.port, client.user, client.keepalive_seconds) == (sshd.port, sshd.user, 0)
        assert echo(client) == ("srv", ["ok"])


def test_identity_files_order_and_identities_only(sshd, user_key, unauthorized_key, tmp_path,
                                                  no_agent):
    class Client(SSHClient):
        IDENTITIES = (user_key.private,)

    base = "Host srv\n  HostName %s\n  Port %d\n  User %s\n  IdentityFile %s\n" % (
        sshd.host, sshd.port, sshd.user, unauthorized_key.private)
    # the file's key is tried first, then the default identities
    with Client("srv", ssh_config=write_config(tmp_path, base), num_retries=1) as client:
        assert echo(client) == ("srv", ["ok"])
    # IdentitiesOnly: the file's keys instead of the default identities
    only = write_config(tmp_path, base + "  IdentitiesOnly yes\n", "only")
    with pytest.raises(AuthenticationError):
        Client("srv", ssh_config=only, num_retries=1)
    both = write_config(tmp_path, base + "  IdentitiesOnly yes\n  IdentityFile %s\n"
                        % user_key.private, "both")
    with Client("srv", ssh_config=both, num_retries=1) as client:
        assert client.identities_only is True
        assert echo(client) == ("srv", ["ok"])


def test_host_key_settings_from_file(sshd, user_key, tmp_path):
    known = tmp_path / "kh"
    base = "Host srv\n  HostName %s\n  Port %d\n  UserKnownHostsFile %s\n" % (
        sshd.host, sshd.port, known)
    opts = dict(pkey=user_key.private, allow_agent=False, num_retries=1, user=sshd.user)
    with pytest.raises(HostKeyError):
        SSHClient("srv", ssh_config=write_config(tmp_path, base + "  StrictHostKeyChecking yes\n",
                                                 "strict"), **opts)
    with SSHClient("srv", ssh_config=write_config(
            tmp_path, base + "  StrictHostKeyChecking accept-new\n", "new"), **opts) as client:
        assert client.known_hosts == [str(known), "/etc/ssh/ssh_known_hosts"]
        assert echo(client) == ("srv", ["ok"])
    assert known.read_text() == sshd.known_hosts_line() + "\n"
    strict = write_config(tmp_path, base + "  StrictHostKeyChecking yes\n", "strict2")
    with SSHClient("srv", ssh_config=strict, **opts) as client:
        assert echo(client) == ("srv", ["ok"])
    # an explicit policy wins over the file
    with SSHClient("srv", ssh_config=strict, host_key_policy="off", known_hosts=[],
                   **opts) as client:
        assert client.host_key_policy == "off"


def test_host_key_alias_names_the_known_hosts_entry(sshd, sshd_farm, user_key, tmp_path):
    known = tmp_path / "kh"
    keyline = sshd.known_hosts_line().split(None, 1)[1]
    known.write_text("stable-name %s\n" % keyline)  # known only under the alias
    base = "Host srv\n  HostName %s\n  Port %d\n  UserKnownHostsFile %s\n" \
           "  StrictHostKeyChecking yes\n" % (sshd.host, sshd.port, known)
    opts = dict(pkey=user_key.private, allow_agent=False, num_retries=1, user=sshd.user)
    with pytest.raises(HostKeyError):
        SSHClient("srv", ssh_config=write_config(tmp_path, base, "plain"), **opts)
    aliased = write_config(tmp_path, base + "  HostKeyAlias stable-name\n", "aliased")
    with SSHClient("srv", ssh_config=aliased, **opts) as client:
        assert echo(client) == ("srv", ["ok"])
    # another server's key under that alias is a changed key, whatever its address
    other = sshd_farm[0]
    moved = "Host srv\n  HostName %s\n  Port %d\n  UserKnownHostsFile %s\n" \
            "  HostKeyAlias stable-name\n" % (other.host, other.port, known)
    with pytest.raises(HostKeyError) as info:
        SSHClient("srv", ssh_config=write_config(tmp_path, moved, "moved"), **opts)
    assert info.value.reason == "changed"
    config = host_configs(["srv"], aliased)[0]
    assert config.host_key_alias == "stable-name"


def test_parallel_aliases_and_precedence(sshd_farm, user_key, tmp_path, wrong_user, no_agent):
    servers = sshd_farm.servers[:3]
    (tmp_path / "hosts.conf").write_text("".join(
        "Host node%d\n  HostName %s\n" % (index, srv.host)
        for index, srv in enumerate(servers)))
    path = write_config(tmp_path, """
Include %s/hosts.conf
Match host 127.0.0.*
    Port %d
    User %s
    IdentityFile %s
    StrictHostKeyChecking no
Host node2
    ProxyJump bastion.example
""" % (tmp_path, servers[0].port, servers[0].user, user_key.private))
    hosts = ["node0", "node1", "node2"]
    configs = host_configs(hosts, path)
    assert [hc.hostname for hc in configs] == [srv.host for srv in servers]
    assert [hc.proxy_jump for hc in configs] == [None, None, "bastion.example"]
    assert {hc.port for hc in configs} == {servers[0].port}
    client = ParallelSSHClient(hosts[:2], ssh_config=path, num_retries=1, timeout=TIMEOUT)
    try:
        output = client.run_command("echo ok")
        client.join(output)
        assert [(out.host, list(out.stdout)) for out in output] == [
            ("node0", ["ok"]), ("node1", ["ok"])]
        made = client._host_clients[(0, "node0")]
        assert (made.settings.connect_host, made.port, made.host_key_policy) == (
            servers[0].host, servers[0].port, "off")
    finally:
        client.close()
    # HostConfig beats explicit client arguments, which beat the file
    client = ParallelSSHClient(hosts[:2], ssh_config=path, num_retries=1, timeout=TIMEOUT,
                               port=1, host_config=[HostConfig(port=servers[0].port),
                                                    HostConfig()])
    try:
        output = client.run_command("echo ok", stop_on_errors=False)
        client.join(output)
        assert list(output[0].stdout) == ["ok"]
        assert output[1].exception is not None
        assert client._host_clients.get((1, "node1")) is None
    finally:
        client.close()


def test_proxy_jump_parsed_and_stored(tmp_path):
    path = write_config(tmp_path, "Host target\n  ProxyJump user@b1:2222,b2\n")
    assert host_configs(["target", "other"], path)[0].proxy_jump == "user@b1:2222,b2"
    assert host_configs(["other"], path)[0].proxy_jump is None


def test_alias_through_proxy_jump_reaches_hostname(make_sshd, sshd_farm, user_key, tmp_path,
                                                   no_agent):
    bastion = make_sshd()
    target = sshd_farm[1]
    path = write_config(tmp_path, """
Host behind
    HostName %s
    Port %d
    ProxyJump %s:%d
    IdentityFile %s
""" % (target.host, target.port, bastion.host, bastion.port, user_key.private))
    with SSHClient("behind", ssh_config=path, num_retries=1, timeout=TIMEOUT,
                   pkey=user_key.private) as client:
        assert client.proxy_jump == "%s:%d" % (bastion.host, bastion.port)
        out = client.run_command("echo $SSH_CONNECTION | cut -d' ' -f3")
        assert list(out.stdout) == [target.host]  # the tunnel went to HostName, not the alias
        client.wait_finished(out, timeout=TIMEOUT)


# -- jump hosts looked up in the file (pssh.openssh_jump) ----------------------------------------

SERVER_ADDRESS = "echo $SSH_CONNECTION | cut -d' ' -f3"


def test_jump_host_entry_gives_address_user_and_key(make_sshd, sshd_farm, user_key,
                                                    unauthorized_key, tmp_path, no_agent):
    # The bastion accepts only a key the target refuses: each hop logs in with its own entry.
    bastion = make_sshd(authorized_keys=[unauthorized_key.public])
    target = sshd_farm[0]
    jump = "Host jump\n  HostName 127.0.0.1\n  Port %d\n  User %%s\n  IdentityFile %s\n" \
           "  IdentitiesOnly yes\n  ServerAliveInterval 17\n" % (bastion.port,
                                                                unauthorized_key.private)
    rest = "Host target*\n  HostName %s\n  Port %d\n  IdentityFile %s\n  IdentitiesOnly yes\n" \
           "  ProxyJump jump\n" % (target.host, target.port, user_key.private)
    path = write_config(tmp_path, jump % bastion.user + rest)
    with SSHClient("target1", ssh_config=path, num_retries=1, timeout=TIMEOUT) as client:
        assert bastion.connections()  # the tunnel runs through the bastion
        assert echo(client) == ("target1", ["ok"])
        from pssh.connection.tunnel import _BASTIONS
        bastions = [b for b in _BASTIONS.values() if b.client.port == bastion.port]
        # the jump entry's ServerAliveInterval, not the target's default
        assert [b.client.keepalive_seconds for b in bastions] == [17]
        assert client.keepalive_seconds == 60
    # the entry's User is used, not the target's (which the bastion would accept)
    path = write_config(tmp_path, jump % "nobody-here" + rest, "wrong_user")
    with pytest.raises(ProxyError, match="Authentication"):
        SSHClient("target1", ssh_config=path, num_retries=1, timeout=TIMEOUT)


def test_two_hop_list_of_aliases(make_sshd, sshd_farm, user_key, tmp_path, no_agent):
    first = make_sshd(listen_ip="127.0.0.1")
    second = make_sshd(listen_ip="127.0.0.7")
    target = sshd_farm[1]
    # b's own ProxyJump (a dead address) is ignored: in a list, b is reached through a.
    path = write_config(tmp_path, """
Host a
    HostName 127.0.0.1
    Port %d
Host b
    HostName 127.0.0.7
    Port %d
    ProxyJump 127.0.0.1:1
Host target
    HostName %s
    Port %d
    ProxyJump a,b
Host *
    User %s
    IdentityFile %s
""" % (first.port, second.port, target.host, target.port, target.user, user_key.private))
    with SSHClient("target", ssh_config=path, num_retries=1, timeout=TIMEOUT) as client:
        assert first.connections() and second.connections()
        out = client.run_command(SERVER_ADDRESS)
        assert list(out.stdout) == [target.host]
        client.wait_finished(out, timeout=TIMEOUT)


def test_jump_item_user_and_port_override_entry_parallel(make_sshd, sshd_farm, user_key,
                                                          tmp_path, no_agent):
    from pssh.connection import tunnel
    bastion = make_sshd(listen_ip="127.0.0.1")
    servers = sshd_farm.servers[:3]
    path = write_config(tmp_path, "".join(
        "Host node%d\n  HostName %s\n" % (index, srv.host) for index, srv in enumerate(servers))
        + """
Host jump
    HostName 127.0.0.1
    Port 1
    User nobody-here
Host *
    Port %d
    User %s
    IdentityFile %s
""" % (sshd_farm.port, servers[0].user, user_key.private))
    hosts = ["node0", "node1", "node2"]
    client = ParallelSSHClient(hosts, ssh_config=path, num_retries=1, timeout=TIMEOUT,
                               proxy_jump="%s@jump:%d" % (bastion.user, bastion.port))
    try:
        output = client.run_command(SERVER_ADDRESS)
        client.join(output, timeout=TIMEOUT)
        assert [list(out.stdout) for out in output] == [[srv.host] for srv in servers]
        hop = client._host_clients[(0, "node0")].settings.proxy_hop
        assert (hop.hostname, hop.port, hop.user) == ("127.0.0.1", bastion.port, bastion.user)
        # one shared bastion connection carries the three tunnels
        shared = [made for key, made in list(tunnel._BASTIONS.items()) if key[0] == hop]
        assert [len(made.tunnels) for made in shared] == [3]
    finally:
        client.close()


def test_jump_host_key_settings_from_its_entry(make_sshd, sshd_farm, user_key, tmp_path,
                                               no_agent):
    bastion = make_sshd(listen_ip="127.0.0.1")
    target = sshd_farm[2]
    known = tmp_path / "jump_known"
    known.write_text("")
    text = """
Host jump
    HostName 127.0.0.1
    Port %d
    StrictHostKeyChecking yes
    UserKnownHostsFile %s
    GlobalKnownHostsFile none
Host target
    HostName %s
    Port %d
    ProxyJump jump
Host *
    IdentityFile %s
""" % (bastion.port, known, target.host, target.port, user_key.private)
    path = write_config(tmp_path, text)
    # strict for the bastion only: its key is not in its known hosts file yet
    with pytest.raises(ProxyError) as info:
        SSHClient("target", ssh_config=path, num_retries=1, timeout=TIMEOUT)
    assert isinstance(info.value.cause, HostKeyError)
    known.write_text(bastion.known_hosts_line() + "\n")
    with SSHClient("target", ssh_config=path, num_retries=1, timeout=TIMEOUT) as client:
        assert client.host_key_policy == "accept-unknown"
        assert echo(client) == ("target", ["ok"])
