"""A hostile remote ``scp`` (toolkit/fake_scp.py, run by a real sshd through ForceCommand):
endless or huge output after the transfer, lying sizes and modes, oversized header lines, more
data than announced. Each ends in an SCPError naming host and path, bounded in time and
memory, and a failed download leaves nothing behind locally. Both backends."""
import os
import stat as stat_mod
import time

import gevent
import pytest

from pssh.transfer.scp import TRAILING_LIMIT
from pssh.exceptions import SCPError
from pssh.single import SSHClient
from toolkit import fake_scp, transfer_child

REMOTE_PYTHON = "/usr/bin/python3"
GUARD = 30
TIMEOUT = 3


@pytest.fixture
def fake(make_sshd):
    def start(behaviour):
        return make_sshd(extra_config={
            "ForceCommand": fake_scp.command(behaviour, python=REMOTE_PYTHON)})
    return start


def connect(srv, key, timeout=TIMEOUT):
    return SSHClient(srv.host, port=srv.port, pkey=key.private, num_retries=1,
                     timeout=timeout, allow_agent=False, identity_auth=False)


def small_file(scratch):
    path = os.path.join(scratch, "small.txt")
    with open(path, "wb") as fh:
        fh.write(b"payload")
    return path


def expect_scp_error(call, host, path, within):
    started = time.monotonic()
    with gevent.Timeout(GUARD, AssertionError("the transfer hung")):
        with pytest.raises(SCPError) as info:
            call()
    elapsed = time.monotonic() - started
    assert elapsed < within, "took %.1f s" % elapsed
    assert info.value.host == host and info.value.path == path
    return info.value


def nothing_left(directory):
    return not os.path.exists(directory) or os.listdir(directory) == []


# -- output after the transfer ----------------------------------------------------------------

@pytest.mark.parametrize("behaviour", ["trailing-endless", "trailing-drip", "error-drip"])
@pytest.mark.parametrize("direction", ["upload", "download"])
def test_endless_output_after_the_transfer_ends_in_error(fake, user_key, scratch, behaviour,
                                                         direction):
    """Was: read until the remote stopped (never), or for ever as a drip is never idle (an
    error line: up to 4096 bytes, each within ``timeout``)."""
    srv = fake(behaviour)
    client = connect(srv, user_key)
    remote = "/fake/target.bin"
    local_dir = os.path.join(scratch, "down")
    if direction == "upload":
        call = lambda: client.scp_send(small_file(scratch), remote)  # noqa: E731
    else:
        call = lambda: client.scp_recv(remote, os.path.join(local_dir, "got"))  # noqa: E731
    err = expect_scp_error(call, srv.host, remote, within=TIMEOUT + 5)
    expected = {"trailing-endless": "printed more than", "trailing-drip": "was still running",
                "error-drip": "fake scp: zz"}[behaviour]
    assert expected in str(err)
    assert nothing_left(local_dir)
    client.close()


@pytest.mark.parametrize("method", ["scp_send", "scp_recv"])
def test_huge_output_after_the_transfer_costs_no_memory(fake, user_key, scratch, method):
    """Was: 64 MiB of trailing output kept whole (and copied), the transfer reported a
    success."""
    srv = fake("trailing-big")
    remote = "/fake/target.bin"
    local = os.path.join(scratch, "down", "got")
    args = [small_file(scratch), remote] if method == "scp_send" else [remote, local]
    spec = {"host": srv.host, "port": srv.port, "key": user_key.private, "timeout": 10,
            "jobs": [{"method": method, "args": args}]}
    code, report, stderr = transfer_child.run(spec, timeout=GUARD)
    assert code == 0, stderr[-2000:]
    result = report["results"][0]
    assert not result["ok"] and "SCPError" in result["mro"], result
    assert result["host"] == srv.host and result["path"] == remote
    assert "printed more than %d bytes" % TRAILING_LIMIT in result["message"]
    assert report["rss_growth_kib"] < 16 * 1024, report
    assert nothing_left(os.path.dirname(local))


def test_a_message_after_the_transfer_is_not_an_error(fake, user_key, scratch):
    """As with OpenSSH's scp: what the remote prints after confirming the file is logged."""
    srv = fake("trailing-small")
    client = connect(srv, user_key)
    with gevent.Timeout(GUARD):
        client.scp_send(small_file(scratch), "/fake/target.bin")
    client.close()


# -- the C header and the data of a download ----------------------------------------------------

@pytest.mark.parametrize("behaviour", ["size-negative", "size-huge", "size-beyond-data",
                                       "mode-bad", "header-long", "more-data"])
def test_lying_download_header_or_data(fake, user_key, scratch, behaviour):
    """Was (native): OverflowError for a negative size."""
    srv = fake(behaviour)
    client = connect(srv, user_key)
    local_dir = os.path.join(scratch, "down")
    remote = "/fake/source.bin"
    expect_scp_error(lambda: client.scp_recv(remote, os.path.join(local_dir, "got")),
                     srv.host, remote, within=TIMEOUT + 5)
    assert nothing_left(local_dir)
    client.close()


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("behaviour, mode", [("mode-0777", 0o755), ("mode-4755", 0o755)])
def test_download_mode_from_the_header_is_masked(fake, user_key, scratch, umask_022, behaviour,
                                                 mode):
    srv = fake(behaviour)
    client = connect(srv, user_key)
    local = os.path.join(scratch, "down", "got")
    with gevent.Timeout(GUARD):
        client.scp_recv("/fake/source.bin", local)
    with open(local, "rb") as fh:
        assert fh.read() == fake_scp.PAYLOAD
    assert stat_mod.S_IMODE(os.stat(local).st_mode) == mode
    client.close()


def test_absurd_times_in_the_header_do_not_break_the_download(fake, user_key, scratch):
    """libssh2 saturates times beyond 2**63 to 2**63 - 1; setting them must not raise."""
    srv = fake("times-bad")
    client = connect(srv, user_key)
    local = os.path.join(scratch, "down", "got")
    with gevent.Timeout(GUARD):
        client.scp_recv("/fake/source.bin", local)
    with open(local, "rb") as fh:
        assert fh.read() == fake_scp.PAYLOAD
    client.close()


# "C0644 7 NAME\n" for the 7-byte file: 255 bytes with a 246-byte name.
@pytest.mark.parametrize("length, fits", [(246, True), (247, False), (255, False)])
def test_upload_name_too_long_for_the_scp_header(sshd, user_key, scratch, length, fits):
    """Was: libssh2 sent the whole untruncated C line from its 256-byte buffer, i.e. the
    session memory after it (seen as a Timeout: the line then lacks its newline)."""
    client = connect(sshd, user_key)
    src = small_file(scratch)
    remote = os.path.join(scratch, "n" * length)
    with gevent.Timeout(GUARD):
        if fits:
            client.scp_send(src, remote)
            assert os.path.exists(remote)
        else:
            expect_scp_error(lambda: client.scp_send(src, remote), sshd.host, remote,
                             within=1)
            assert not os.path.exists(remote)
    client.close()
