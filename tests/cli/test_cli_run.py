"""``pssh run`` through the console script against the embedded farm: output modes, host
files and ranges, exit codes, unreachable and silent hosts, option refusals."""
import json
import os
import socket

import pytest

from pssh_cli_helpers import assert_no_traceback

# Prints the address the server saw (127.0.0.N) so each host's line is its own.
WHO = 'echo "me $(echo $SSH_CONNECTION | cut -d" " -f3)"'
RANGE = "127.0.0.[2-4]"


def test_inline_prefixes_lines_and_exit_zero(pssh):
    result = pssh("run", "-H", RANGE, WHO + "; echo oops >&2")
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        "127.0.0.%d: me 127.0.0.%d" % (n, n) for n in (2, 3, 4)]
    assert sorted(line for line in result.stderr.splitlines() if "[err]" in line) == [
        "127.0.0.%d [err]: oops" % n for n in (2, 3, 4)]
    assert result.stderr.splitlines()[-1] == "pssh: ran on 3 hosts: 3 ok, 0 failed"


def test_nonzero_exit_is_status_1_with_folded_failures(pssh):
    command = 'case $(echo $SSH_CONNECTION | cut -d" " -f3) in 127.0.0.2) exit 0;; ' \
              '127.0.0.5) kill -KILL $$;; *) exit 4;; esac'
    result = pssh("run", "-H", "127.0.0.[2-5]", command)
    assert result.returncode == 1, result.stderr
    assert "pssh: 127.0.0.3: exited with exit code 4" in result.stderr
    assert "pssh: 127.0.0.5: killed by signal KILL" in result.stderr
    assert "pssh: ran on 4 hosts: 1 ok, 3 failed" in result.stderr
    assert "pssh: failed: 127.0.0.[3-5]" in result.stderr


def test_fold_gathers_identical_outputs(pssh):
    command = 'echo same; case $(echo $SSH_CONNECTION | cut -d" " -f3) in ' \
              '127.0.0.4) echo odd;; esac'
    result = pssh("run", "--fold", "-H", "127.0.0.[2-6]", command)
    assert result.returncode == 0, result.stderr
    blocks = result.stdout.split("-" * 15)
    text = result.stdout
    assert "127.0.0.[2-3,5-6] (4)\n" in text and "127.0.0.4 (1)\n" in text
    assert text.count("same\n") == 2 and text.count("odd\n") == 1, blocks


def test_json_one_object_per_host(pssh):
    result = pssh("run", "--json", "-H", "127.0.0.[2-3],127.0.0.2", "echo a; echo b >&2; exit 3")
    assert result.returncode == 1
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(record["host"] for record in records) == ["127.0.0.2", "127.0.0.3"]
    for record in records:
        assert record["stdout"] == ["a"] and record["stderr"] == ["b"]
        assert record["exit_code"] == 3 and record["status"] == "failed"
        assert record["error"] is None


def test_outdir_and_errdir_file_per_host(pssh, tmp_path):
    out, err = tmp_path / "out", tmp_path / "err"
    result = pssh("run", "--outdir", str(out), "--errdir", str(err), "-H", RANGE,
                  WHO + "; echo e1 >&2")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert (out / "127.0.0.3").read_text() == "me 127.0.0.3\n"
    assert (err / "127.0.0.4").read_text() == "e1\n"


def test_host_file_with_user_port_and_ranges(pssh, sshd_farm, tmp_path):
    from embedded_server import login_user
    hosts = tmp_path / "hosts"
    hosts.write_text("# the farm\n%s@127.0.0.[2-3]:%d\n127.0.0.6  # last\n"
                     % (login_user(), sshd_farm.port))
    result = pssh("run", "-h", str(hosts), "--fold", "-l", "nobody-here", "echo hi")
    # the file's user@ wins over -l for its hosts; 127.0.0.6 uses -l and is refused
    assert "127.0.0.[2-3] (2)\n" in result.stdout
    assert "pssh: 127.0.0.6: unreachable: AuthenticationError" in result.stderr
    assert result.returncode == 3


def test_unreachable_and_silent_hosts_exit_3(pssh, sshd_farm):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts TCP, never speaks SSH
    try:
        hosts = "127.0.0.2,127.0.0.1:%d,127.0.0.200" % silent.getsockname()[1]
        result = pssh("run", "-t", "1", "-H", hosts, "echo up")
    finally:
        silent.close()
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 3, result.stderr
    assert result.stdout == "127.0.0.2: up\n"
    assert "pssh: 127.0.0.200: unreachable: ConnectionRefusedError" in result.stderr
    assert "pssh: ran on 3 hosts: 1 ok, 0 failed, 1 timed out, 1 unreachable" \
        in result.stderr


def test_idle_timeout_marks_host_timed_out(pssh):
    command = 'case $(echo $SSH_CONNECTION | cut -d" " -f3) in 127.0.0.2) sleep 5;; esac; ' \
              'echo done'
    result = pssh("run", "--idle-timeout", "0.5", "-H", RANGE, command)
    assert result.returncode == 3, result.stderr
    assert "pssh: 127.0.0.2: timed out: Timeout" in result.stderr
    assert "pssh: timed out: 127.0.0.2" in result.stderr
    assert sorted(result.stdout.splitlines()) == ["127.0.0.3: done", "127.0.0.4: done"]


@pytest.mark.parametrize("args, message", [
    (["-H", "web[1-"], "bad host range"),
    (["-O", "ForwardX11=yes", "-H", "127.0.0.2"], "does not support"),
    (["-x", "-X", "-H", "127.0.0.2"], "not supported by pssh"),
    ([], "no hosts"),
])
def test_usage_errors_exit_2(pssh, args, message):
    result = pssh("run", *args, "true")
    assert result.returncode == 2
    assert message in result.stderr
    assert_no_traceback(result.stdout, result.stderr)


def test_pass_through_option_is_used(pssh, sshd_farm, user_key):
    from embedded_server import login_user
    result = pssh("run", "-H", "127.0.0.2", "-O", "Port=%d" % sshd_farm.port,
                  "-x", "-l %s -i %s" % (login_user(), user_key.private), "--no-agent",
                  "echo via-options", connect=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "127.0.0.2: via-options\n"


def test_sharded_run(pssh):
    result = pssh("run", "--shards", "2", "--json", "-H", RANGE + ",127.0.0.200", WHO)
    assert result.returncode == 3, result.stderr
    records = {record["host"]: record for record in map(json.loads,
                                                        result.stdout.splitlines())}
    assert records["127.0.0.3"]["stdout"] == ["me 127.0.0.3"]
    assert records["127.0.0.200"]["status"] == "unreachable"


def test_sharded_truncation_is_shown_inline(pssh):
    result = pssh("run", "--shards", "1", "-H", "127.0.0.2", "seq 1 300000")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("127.0.0.2: 1\n127.0.0.2: 2\n")
    assert "127.0.0.2 [err]: [pssh: output truncated at 1048576 characters]" in result.stderr


def test_dask_run(pssh):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  worker_dashboard_address=None,
                                  scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}
                                  ) as cluster:
        result = pssh("run", "--dask", cluster.scheduler_address, "--json", "-H", RANGE, WHO)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert sorted(record["host"] for record in records) == ["127.0.0.2", "127.0.0.3",
                                                            "127.0.0.4"]
    assert all(record["stdout"] == ["me " + record["host"]] for record in records)


def test_jump_host_and_ssh_config(pssh, sshd_farm, tmp_path):
    from embedded_server import login_user
    jump = "%s@127.0.0.2:%d" % (login_user(), sshd_farm.port)
    via_jump = pssh("run", "-J", jump, "-H", "127.0.0.3", "echo behind")
    assert via_jump.returncode == 0, via_jump.stderr
    assert via_jump.stdout == "127.0.0.3: behind\n"
    down = pssh("run", "-t", "2", "-J", "127.0.0.200:%d" % sshd_farm.port, "-H", "127.0.0.3",
                "true")
    assert down.returncode == 3 and "pssh: 127.0.0.3: unreachable:" in down.stderr
    config = tmp_path / "ssh_config"
    config.write_text("Host web-*\n  HostName 127.0.0.5\n")
    named = pssh("run", "-F", str(config), "-H", "web-[1-2]", WHO)
    assert named.returncode == 0, named.stderr
    assert sorted(named.stdout.splitlines()) == ["web-1: me 127.0.0.5", "web-2: me 127.0.0.5"]


def test_strict_host_key_policy_refuses_unknown_hosts(pssh, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    result = pssh("run", "--host-key-policy", "strict", "--known-hosts", str(known),
                  "-H", "127.0.0.[2-3]", "true")
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 3
    assert "pssh: 127.0.0.2: unreachable: HostKeyError" in result.stderr
    assert "pssh: unreachable: 127.0.0.[2-3]" in result.stderr
