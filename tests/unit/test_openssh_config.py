"""pssh.openssh_config: parsing, matching, Include, tokens, HostConfig output, merging;
pssh.openssh_jump: jump hosts looked up in the same file."""

import getpass

import pytest

from pssh import openssh_config
from pssh.connection import jump as openssh_jump
from pssh.connection import settings
from pssh.config import HostConfig
from pssh.openssh_config import SSHConfig, SSHConfigError, host_configs, load


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fake home directory with ~/.ssh (Include paths are relative to it)."""
    path = tmp_path / "home"
    (path / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(path))
    return path


def config(home, text, name="config"):
    path = home / ".ssh" / name
    path.write_text(text)
    return load(str(path))


def test_basic_keywords_first_value_wins(home):
    cfg = config(home, """
# comment
Host web1 web2
    HostName %h.internal.example
    User deploy
    Port 2222
    IdentityFile ~/.ssh/id_web
    IdentitiesOnly yes
    ProxyJump bastion1,bastion2
    ConnectTimeout 7
    ServerAliveInterval 1m
    StrictHostKeyChecking accept-new
    UserKnownHostsFile ~/.ssh/kh_web /dev/null "~/.ssh/kh two"

Host *
    User fallback
    Port 22
    IdentityFile ~/.ssh/id_%r_%h
    ConnectTimeout 30
""")
    got = cfg.lookup("web1")
    assert got == {
        "hostname": "web1.internal.example", "user": "deploy", "port": 2222,
        "identity_files": [str(home / ".ssh/id_web"),
                           str(home / ".ssh/id_deploy_web1.internal.example")],
        "identities_only": True, "proxy_jump": "bastion1,bastion2", "timeout": 7,
        "keepalive_seconds": 60, "host_key_policy": "accept-new",
        "known_hosts": [str(home / ".ssh/kh_web"), str(home / ".ssh/kh two"),
                        "/etc/ssh/ssh_known_hosts"],
    }
    other = cfg.lookup("db")
    assert other == {"user": "fallback", "port": 22, "timeout": 30,
                     "identity_files": [str(home / ".ssh/id_fallback_db")]}


def test_equals_syntax_quotes_and_case(home):
    cfg = config(home, 'HOST=a\n  hostname = "10.0.0.1"\n  USER="some user" # trailing\n'
                       '  port=2200\n')
    assert cfg.lookup("A") == {"hostname": "10.0.0.1", "user": "some user", "port": 2200}


def test_patterns_negation_and_commas(home):
    cfg = config(home, """
Host *.prod.example !db*.prod.example
    User produser
Host web?,api
    Port 2201
Host db1.prod.example
    User dbuser
""")
    assert cfg.lookup("web1.prod.example")["user"] == "produser"
    assert cfg.lookup("db1.prod.example")["user"] == "dbuser"
    assert cfg.lookup("web1") == {"port": 2201}
    assert cfg.lookup("api") == {"port": 2201}
    assert cfg.lookup("web10") == {}


def test_match_host_originalhost_all_and_unsupported(home, caplog):
    with caplog.at_level("DEBUG", logger="pssh.openssh_config"):
        cfg = config(home, """
Host short
    HostName long.example.com
Match host *.example.com
    User matched
Match originalhost short !host other.example.com
    Port 2300
Match user root
    Port 9999
Match exec "true"
    IdentitiesOnly yes
Match all
    ConnectTimeout 3
""")
    assert "'user' is not supported" in caplog.text or "criterion 'user'" in caplog.text
    got = cfg.lookup("short")
    assert got == {"hostname": "long.example.com", "user": "matched", "port": 2300,
                   "timeout": 3}
    assert cfg.lookup("x.example.com") == {"user": "matched", "timeout": 3}
    assert cfg.lookup("other") == {"timeout": 3}


def test_include_relative_glob_and_inside_host(home):
    confd = home / ".ssh" / "conf.d"
    confd.mkdir()
    (confd / "10-a.conf").write_text("Host a\n    User from-a\n")
    (confd / "20-b.conf").write_text("User from-b-top\nHost b\n    Port 2022\n")
    (home / ".ssh" / "inner").write_text("Port 3000\n")
    cfg = config(home, """
Include conf.d/*.conf
Host c
    Include inner
Host *
    User default
""")
    assert cfg.files[1:] == [str(confd / "10-a.conf"), str(confd / "20-b.conf"),
                             str(home / ".ssh" / "inner")]
    assert cfg.lookup("a") == {"user": "from-a"}
    assert cfg.lookup("b") == {"user": "from-b-top", "port": 2022}
    assert cfg.lookup("c") == {"user": "from-b-top", "port": 3000}
    assert cfg.lookup("zzz") == {"user": "from-b-top"}


def test_include_absolute_missing_and_recursion(home, tmp_path):
    other = tmp_path / "abs.conf"
    other.write_text("Host abs\n  Port 1234\n")
    cfg = config(home, "Include %s ~/.ssh/nothing-*.conf\n" % other)
    assert cfg.lookup("abs") == {"port": 1234}
    (home / ".ssh" / "loop").write_text("Include loop\n")
    with pytest.raises(SSHConfigError) as info:
        config(home, "Include loop\n")
    assert "Include" in str(info.value)


def test_unsupported_keywords_ignored(home, caplog):
    with caplog.at_level("DEBUG", logger="pssh.openssh_config"):
        cfg = config(home, "Host x\n  ForwardAgent yes\n  LocalForward 1 h:2\n  "
                           "SomeFutureOption whatever\n  User u\n")
    assert cfg.lookup("x") == {"user": "u"}
    assert "ForwardAgent" in caplog.text and "SomeFutureOption" in caplog.text


@pytest.mark.parametrize("text", [
    "Port abc", "Port 70000", "ConnectTimeout soon", "IdentitiesOnly maybe",
    "StrictHostKeyChecking perhaps", "User", "Host", 'User "unterminated',
])
def test_bad_values_raise(home, text):
    with pytest.raises(SSHConfigError) as info:
        config(home, "Host x\n" + text + "\n")
    assert ":2" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("value, policy", [
    ("yes", "strict"), ("ask", "strict"), ("accept-new", "accept-new"), ("no", "off"),
    ("off", "off"),
])
def test_strict_host_key_checking_values(home, value, policy):
    assert config(home, "StrictHostKeyChecking %s\n" % value).lookup("h") == \
        {"host_key_policy": policy}


def test_known_hosts_files(home):
    assert config(home, "UserKnownHostsFile none\n").lookup("h") == \
        {"known_hosts": ["/etc/ssh/ssh_known_hosts"]}
    assert config(home, "UserKnownHostsFile /dev/null\nGlobalKnownHostsFile none\n").lookup(
        "h") == {"known_hosts": []}
    assert config(home, "GlobalKnownHostsFile /g/%h\n").lookup("h") == \
        {"known_hosts": [str(home / ".ssh/known_hosts"), "/g/h"]}


def test_tokens_and_overrides(home):
    cfg = config(home, "Host h\n  HostName real%%x\n  IdentityFile %d/%u/%r/%p/%n/%h/%%/%Z\n")
    got = cfg.lookup("h", user="given", port=2022)
    assert got["hostname"] == "real%x"
    assert got["identity_files"] == ["%s/%s/given/2022/h/real%%x/%%/%%Z"
                                     % (home, getpass.getuser())]


def test_proxy_jump_none_wins_first(home):
    cfg = config(home, "Host direct\n  ProxyJump none\nHost *\n  ProxyJump bastion\n")
    assert cfg.lookup("direct") == {"proxy_jump": None}
    assert cfg.lookup("other") == {"proxy_jump": "bastion"}


def test_load_default_missing_and_explicit_missing(home, tmp_path):
    empty = load()
    assert empty.lookup("anything") == {}
    with pytest.raises(FileNotFoundError):
        load(str(tmp_path / "nope"))


def test_load_cache_and_reload(home):
    path = home / ".ssh" / "config"
    path.write_text("Host a\n  User one\n")
    first = load()
    assert load() is first and load(str(path)) is first
    path.write_text("Host a\n  User second\n")
    assert load().lookup("a") == {"user": "second"}


def test_host_configs(home):
    path = home / ".ssh" / "cfg"
    path.write_text("Host a\n  HostName 10.0.0.9\n  Port 2201\n  IdentityFile ~/k\n"
                    "  StrictHostKeyChecking no\nHost *\n  User u\n")
    configs = host_configs(["a", "b"], str(path))
    assert all(isinstance(hc, HostConfig) for hc in configs)
    a, b = configs
    assert (a.hostname, a.port, a.user, a.host_key_policy) == ("10.0.0.9", 2201, "u", "off")
    assert a.identity_files == [str(home / "k")]
    assert (b.hostname, b.port, b.user, b.identity_files) == (None, None, "u", None)
    assert host_configs(["a"], SSHConfig(str(path)))[0].port == 2201


def test_resolve():
    assert openssh_config.resolve(None) is None
    assert openssh_config.resolve(False) is None
    with pytest.raises(ValueError):
        openssh_config.resolve(42)


FILE_VALUES = """Host *
  User file
  Port 2222
  ConnectTimeout 5
  ServerAliveInterval 5
  HostName addr
  IdentityFile /k
"""


def build(cfg, given, host_config=None, defaults=settings.PARALLEL_DEFAULTS):
    return settings.ConnectSettings.build("h", given, host_config, cfg, defaults=defaults)


def test_merge_precedence(home):
    cfg = config(home, FILE_VALUES)
    # nothing given: the file fills in
    made = build(cfg, {"user": None, "port": 22, "timeout": None})
    assert (made.user, made.port, made.timeout, made.hostname, made.identity_files) == (
        "file", 2222, 5, "addr", ("/k",))
    # explicit client arguments win over the file
    made = build(cfg, {"user": "arg", "port": 2200, "timeout": None})
    assert (made.user, made.port, made.timeout) == ("arg", 2200, 5)
    # HostConfig values win over both
    made = build(cfg, {}, HostConfig(user="hc", hostname="hc-addr"))
    assert (made.user, made.port, made.hostname) == ("hc", 2222, "hc-addr")


def test_single_client_rule_port_none_is_default(home):
    cfg = config(home, FILE_VALUES)
    made = build(cfg, {"port": None, "keepalive_seconds": 60}, defaults=settings.DEFAULTS)
    assert (made.port, made.keepalive_seconds) == (2222, 5)
    made = build(cfg, {"port": 22, "keepalive_seconds": 30}, defaults=settings.DEFAULTS)
    assert (made.port, made.keepalive_seconds) == (22, 30)


# -- jump hosts (pssh.openssh_jump) --------------------------------------------------------------

JUMPS = """
Host jump
    HostName 10.1.0.1
    Port 2201
    User juser
    IdentityFile ~/keys/%r@%h
    IdentitiesOnly yes
    ConnectTimeout 7
    ServerAliveInterval 15
    StrictHostKeyChecking accept-new
    UserKnownHostsFile ~/jump_known
Host jump2
    HostName 10.1.0.1
    Port 2201
    User juser
    IdentityFile ~/keys/%r@%h
    IdentitiesOnly yes
Host target*
    ProxyJump jump
"""


def hops(cfg, spec, host="target1", given=None, effective=None):
    """The Hop chain a client with user "tuser", password "pw" and key /t/key builds."""
    return openssh_jump.proxy_hops(cfg, host, spec, given or {},
                                   dict({"user": "tuser"}, **(effective or {})), "pw", "/t/key")


def test_jump_host_settings_come_from_its_entry(home):
    cfg = config(home, JUMPS)
    hop = hops(cfg, cfg.lookup("target1")["proxy_jump"])
    assert (hop.host, hop.hostname, hop.port, hop.user, hop.via) == (
        "jump", "10.1.0.1", 2201, "juser", None)
    assert hop.identity_files == (str(home / "keys" / "juser@10.1.0.1"),)
    # its own key, not the target's; the password is still the client's
    assert (hop.identities_only, hop.pkey, hop.password) == (True, None, "pw")
    assert (hop.timeout, hop.host_key_policy) == (7, "accept-new")
    assert hop.known_hosts == (str(home / "jump_known"), "/etc/ssh/ssh_known_hosts")
    assert hop.keepalive_seconds == 15  # its ServerAliveInterval
    assert hops(cfg, "plain").keepalive_seconds is None  # no entry: the client's


def test_jump_item_user_and_port_win_over_entry(home):
    hop = hops(config(home, JUMPS), "admin@jump:2022")
    assert (hop.hostname, hop.port, hop.user) == ("10.1.0.1", 2022, "admin")
    assert hop.identity_files == (str(home / "keys" / "admin@10.1.0.1"),)  # %r: the hop's login


def test_jump_without_entry_keeps_target_settings(home):
    cfg = config(home, "Host jump\n  StrictHostKeyChecking no\n  ConnectTimeout 3\n")
    target = {"timeout": 9, "host_key_policy": "strict", "known_hosts": ["/kh"]}
    hop = hops(cfg, "plain", effective=target)
    assert (hop.hostname, hop.port, hop.user, hop.pkey, hop.identity_files) == (
        None, 22, "tuser", "/t/key", ())
    assert (hop.timeout, hop.host_key_policy, hop.known_hosts) == (9, "strict", ("/kh",))
    # the jump host's entry beats the target's values, an explicit client argument beats both
    hop = hops(cfg, "jump", given={"host_key_policy": "strict"}, effective=target)
    assert (hop.host_key_policy, hop.timeout) == ("strict", 3)
    # no timeout anywhere: 0 (the connect default), never the bastion client's in a chain
    assert hops(cfg, "plain").timeout == 0


def test_jump_list_as_written_first_hop_follows_its_entry(home):
    cfg = config(home, """
Host a
    HostName 10.0.0.1
    ProxyJump z
Host b
    HostName 10.0.0.2
    ProxyJump nowhere
Host z
    HostName 10.0.0.26
    User zu
""")
    assert openssh_jump.describe(hops(cfg, "a,b")) == (
        "zu@10.0.0.26:22", "tuser@10.0.0.1:22", "tuser@10.0.0.2:22")
    assert openssh_jump.describe(hops(cfg, "b")) == ("tuser@nowhere:22", "tuser@10.0.0.2:22")
    assert hops(cfg, "none") is None and hops(cfg, None) is None


def test_jump_loops_and_bad_items_raise(home):
    cfg = config(home, "Host *\n  ProxyJump bastion\n")
    with pytest.raises(SSHConfigError, match="target via bastion via bastion"):
        hops(cfg, cfg.lookup("target")["proxy_jump"], host="target")
    cfg = config(home, "Host bastion\n  ProxyJump none\nHost *\n  ProxyJump bastion\n", "ok")
    assert openssh_jump.describe(hops(cfg, cfg.lookup("target")["proxy_jump"])) == (
        "tuser@bastion:22",)
    with pytest.raises(SSHConfigError, match="notaport"):
        hops(cfg, "jump:notaport")


def test_jump_hops_are_equal_by_address_for_sharing(home):
    cfg = config(home, JUMPS)
    one, two = hops(cfg, "jump"), hops(cfg, "jump2")
    assert one == two and hash(one) == hash(two)  # two aliases of one bastion
    assert one != hops(cfg, "other@jump2") and one != hops(cfg, "jump:2202")


def test_parallel_client_resolves_jump_hosts(home):
    from pssh.parallel import ParallelSSHClient
    path = str(home / ".ssh" / "config")
    (home / ".ssh" / "config").write_text(JUMPS)
    client = ParallelSSHClient(["target1", "other"], ssh_config=path, user="tuser")
    hop = client._host_settings(0).proxy_hop
    assert (hop.hostname, hop.port, hop.user, hop.pkey) == ("10.1.0.1", 2201, "juser", None)
    assert client._host_settings(1).proxy_hop is None
    # an explicit proxy_jump= wins over the file for every host, and is looked up in it
    client = ParallelSSHClient(["target1", "other"], ssh_config=path, proxy_jump="u@jump:22")
    assert [openssh_jump.describe(client._host_settings(i).proxy_hop) for i in (0, 1)] == [
        ("u@10.1.0.1:22",)] * 2


@pytest.mark.parametrize("spec, expected", [
    ("b1", [(None, "b1", None)]),
    ("u@b1:2222,b2", [("u", "b1", 2222), (None, "b2", None)]),
    ("ssh://u@b1:2222,ssh://b2/", [("u", "b1", 2222), (None, "b2", None)]),
    ("[::1]:22,u@[fe80::1]", [(None, "::1", 22), ("u", "fe80::1", None)]),
    ("none", []),
])
def test_split_proxy_jump_items(spec, expected):
    from pssh.connection.tunnel import split_proxy_jump
    assert split_proxy_jump(spec) == expected
