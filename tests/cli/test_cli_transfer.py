"""``pssh copy`` / ``pssh fetch`` through the console script: SFTP and SCP, recursion,
per-host destinations, failures reported per host without a traceback."""
import os

import pytest

from pssh_cli_helpers import assert_no_traceback

RANGE = "127.0.0.[2-3]"


@pytest.mark.parametrize("scp", [False, True], ids=["sftp", "scp"])
def test_copy_then_fetch(pssh, scratch, tmp_path, scp):
    source = tmp_path / "payload.bin"
    data = os.urandom(300 * 1024)
    source.write_bytes(data)
    flags = ["--scp"] if scp else []
    remote = os.path.join(scratch, "remote.bin")
    sent = pssh("copy", *flags, "-H", RANGE, str(source), remote)
    assert sent.returncode == 0, sent.stderr
    # not a terminal: a plain line per host, then the summary
    assert "pssh: 127.0.0.2: done 307.2 kB" in sent.stderr
    assert sent.stderr.splitlines()[-1] == "pssh: copied to 2 hosts: 2 ok, 0 failed"
    with open(remote, "rb") as copied:
        assert copied.read() == data
    destdir = tmp_path / "fetched"
    got = pssh("fetch", *flags, "-H", RANGE, remote, str(destdir))
    assert got.returncode == 0, got.stderr
    for host in ("127.0.0.2", "127.0.0.3"):
        assert (destdir / host / "remote.bin").read_bytes() == data


def test_recursive_copy_and_fetch(pssh, scratch, tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("A")
    (tree / "sub" / "b.txt").write_text("B")
    remote = os.path.join(scratch, "tree")
    assert pssh("copy", "-r", "-H", "127.0.0.2", str(tree), remote).returncode == 0
    got = pssh("fetch", "-r", "-H", "127.0.0.[2,4]", remote, str(tmp_path / "back"))
    assert got.returncode == 0, got.stderr
    for host in ("127.0.0.2", "127.0.0.4"):
        assert (tmp_path / "back" / host / "tree" / "sub" / "b.txt").read_text() == "B"
        assert (tmp_path / "back" / host / "tree" / "a.txt").read_text() == "A"
    assert "pssh: 127.0.0.4: done 2 bytes" in got.stderr


def test_copy_failures_are_per_host(pssh, tmp_path):
    source = tmp_path / "f.txt"
    source.write_text("x")
    result = pssh("copy", "-H", "127.0.0.2,127.0.0.200", str(source),
                  "/nonexistent-dir/sub/f.txt")
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 3  # one unreachable host outranks the failed copy
    assert "pssh: 127.0.0.200: unreachable: ConnectionRefusedError" in result.stderr
    assert "pssh: 127.0.0.2: failed: SFTP" in result.stderr
    assert "1 failed, 1 unreachable" in result.stderr


def test_missing_local_source_is_usage_error(pssh, tmp_path):
    result = pssh("copy", "-H", "127.0.0.2", str(tmp_path / "nope"), "/tmp/x")
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_copy_and_fetch_on_shards(pssh, scratch, tmp_path):
    source = tmp_path / "sharded.bin"
    data = os.urandom(64 * 1024)
    source.write_bytes(data)
    remote = os.path.join(scratch, "sharded.bin")
    sent = pssh("copy", "--shards", "2", "-H", RANGE + ",127.0.0.200", str(source), remote)
    assert_no_traceback(sent.stdout, sent.stderr)
    assert sent.returncode == 3, sent.stderr
    assert "pssh: 127.0.0.200: unreachable" in sent.stderr
    assert "pssh: copied to 3 hosts: 2 ok, 0 failed, 1 unreachable" in sent.stderr
    with open(remote, "rb") as copied:
        assert copied.read() == data
    got = pssh("fetch", "--shards", "2", "-H", RANGE, remote, str(tmp_path / "back"))
    assert got.returncode == 0, got.stderr
    for host in ("127.0.0.2", "127.0.0.3"):
        assert (tmp_path / "back" / host / "sharded.bin").read_bytes() == data


@pytest.mark.parametrize("shards", [[], ["--shards", "2"]], ids=["one-process", "shards"])
def test_fetch_leaves_no_directory_for_a_failed_host(pssh, scratch, tmp_path, shards):
    remote = os.path.join(scratch, "only-here.txt")
    with open(remote, "w") as handle:
        handle.write("x")
    destdir = tmp_path / "got"
    result = pssh("fetch", *shards, "-H", "127.0.0.2,127.0.0.200", remote, str(destdir))
    assert result.returncode == 3, result.stderr
    assert sorted(os.listdir(destdir)) == ["127.0.0.2"]
    assert (destdir / "127.0.0.2" / "only-here.txt").read_text() == "x"
