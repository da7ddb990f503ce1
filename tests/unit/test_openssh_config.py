"""pssh.openssh_config: parsing, matching, Include, tokens, HostConfig output, merging."""

import getpass

import pytest

from pssh import openssh_config
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


def test_merge_precedence():
    defaults = openssh_config.PARALLEL_DEFAULTS
    values = {"user": "file", "port": 2222, "timeout": 5, "hostname": "addr",
              "identity_files": ["/k"]}
    # nothing given: the file fills in
    settings = {"user": None, "port": 22, "timeout": None, "hostname": None,
                "identity_files": None}
    openssh_config.merge(settings, values, defaults)
    assert settings == values
    # explicit client arguments win over the file
    settings = {"user": "arg", "port": 2200, "timeout": None, "hostname": None}
    openssh_config.merge(settings, values, defaults)
    assert (settings["user"], settings["port"], settings["timeout"]) == ("arg", 2200, 5)
    # HostConfig values win over both
    hc = HostConfig(user="hc", hostname="hc-addr")
    settings = {"user": "hc", "port": 22, "timeout": None, "hostname": "hc-addr"}
    openssh_config.merge(settings, values, defaults, hc)
    assert (settings["user"], settings["port"], settings["hostname"]) == ("hc", 2222, "hc-addr")


def test_single_client_rule_port_none_is_default():
    settings = {"port": None, "keepalive_seconds": 60}
    openssh_config.merge(settings, {"port": 2222, "keepalive_seconds": 5},
                         openssh_config.SINGLE_DEFAULTS)
    assert settings == {"port": 2222, "keepalive_seconds": 5}
    settings = {"port": 22, "keepalive_seconds": 30}
    openssh_config.merge(settings, {"port": 2222, "keepalive_seconds": 5},
                         openssh_config.SINGLE_DEFAULTS)
    assert settings == {"port": 22, "keepalive_seconds": 30}
