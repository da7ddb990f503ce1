"""Host specs, host files, folding and option pass-through of the command line (no network)."""
import pytest

from pssh.cli.hosts import HostSpec, HostSpecError, fold, host_labels, parse_host_specs, \
    read_host_file, unique
from pssh.cli.options import OptionError, pass_through_config, ssh_extra_args
from pssh.cli.results import (
    EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_UNREACHABLE, HostResult, exit_status,
    summary_lines)
from pssh.exceptions import AuthenticationError, SessionError, Timeout


def test_ranges_expand_in_order():
    assert [spec.host for spec in parse_host_specs("web[01-03].example.com")] == [
        "web01.example.com", "web02.example.com", "web03.example.com"]
    assert [spec.host for spec in parse_host_specs("10.0.0.[1-3,7]")] == [
        "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.7"]
    assert len(parse_host_specs("rack[1-2]-node[1,3-4]")) == 6


def test_user_port_and_lists():
    assert parse_host_specs("root@db[1-2]:2222, cache") == [
        HostSpec("db1", "root", 2222), HostSpec("db2", "root", 2222), HostSpec("cache")]
    assert parse_host_specs("[::1]:2200 me@[fe80::1] ::1") == [
        HostSpec("::1", None, 2200), HostSpec("fe80::1", "me", None), HostSpec("::1")]


@pytest.mark.parametrize("bad", ["web[1-", "host:70000", "host:ssh", "@host", "a:b:"])
def test_bad_specs_are_usage_errors(bad):
    with pytest.raises(HostSpecError):
        parse_host_specs(bad)


def test_host_file(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("# web tier\nweb[1-2]  # two\n\nadmin@db:2022\nweb1\n")
    specs = read_host_file(str(path))
    assert specs == [HostSpec("web1"), HostSpec("web2"), HostSpec("db", "admin", 2022),
                     HostSpec("web1")]
    assert unique(specs) == specs[:3]
    with pytest.raises(HostSpecError, match="hosts:2"):
        path.write_text("ok\nweb[\n")
        read_host_file(str(path))


def test_fold_and_labels():
    assert fold(["127.0.0.3", "127.0.0.2", "127.0.0.4", "db"]) == "127.0.0.[2-4],db"
    assert fold(["web01", "web02", "web10"]) == "web[01-02,10]"
    specs = [HostSpec("a", None, 22), HostSpec("a", None, 2222), HostSpec("b")]
    assert host_labels(specs) == ["a:22", "a:2222", "b"]


def test_pass_through_options(tmp_path):
    config = pass_through_config(["Port=2022", "ConnectTimeout 7"], None)
    assert config.lookup("any") == {"port": 2022, "timeout": 7}
    with pytest.raises(OptionError, match="does not support"):
        pass_through_config(["ForwardX11=yes"], None)
    with pytest.raises(OptionError, match="bad port"):
        pass_through_config(["Port=http"], None)
    user_file = tmp_path / "config"
    user_file.write_text("Host *\n  Port 3000\n  User fromfile\n")
    combined = pass_through_config(["Port=2022"], str(user_file))
    # -O wins over the file (the first value obtained), the file fills the rest
    assert combined.lookup("h") == {"port": 2022, "user": "fromfile"}


def test_extra_ssh_args():
    assert ssh_extra_args("-o Port=2 -oUser=x -p 22 -C -J jump") == {
        "ssh_options": ["Port=2", "User=x"], "port": "22", "compress": True,
        "proxy_jump": "jump"}
    with pytest.raises(OptionError, match="-X"):
        ssh_extra_args("-X")


def _result(label, exit_code=None, error=None):
    result = HostResult(label, label)
    result.exit_code = exit_code
    result.finish(error)
    return result


def test_summary_and_exit_status():
    ok, bad = _result("h1", 0), _result("h2", 3)
    assert exit_status([ok]) == EXIT_OK
    assert exit_status([ok, bad]) == EXIT_FAILED
    assert exit_status([ok, _result("h3", None, SessionError("x"))]) == EXIT_FAILED
    down = _result("h4", None, AuthenticationError("no"))
    late = _result("h5", None, Timeout("slow"))
    assert exit_status([ok, bad, down]) == EXIT_UNREACHABLE
    assert exit_status([late]) == EXIT_UNREACHABLE
    stopped = _result("h6")
    stopped.interrupted = True
    assert exit_status([ok, down, stopped]) == EXIT_INTERRUPTED
    lines = summary_lines([ok, bad, down, late, _result("h7", 1)])
    assert lines[0] == "pssh: ran on 5 hosts: 1 ok, 2 failed, 1 timed out, 1 unreachable"
    assert "pssh: failed: h[2,7]" in lines
