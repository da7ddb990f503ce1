"""How much of an SFTP upload is in flight, measured at the server: a client that pipelines
too little is slow on any link with a round trip, one that queues megabytes makes OpenSSH's
sshd and sftp-server stall the first time their queue gets that deep (the native loop at
2 MiB was 1.4x slower than the pure one on loopback). Real OpenSSH sshd whose SFTP subsystem
is ``toolkit/sftp_write_meter.py``, which answers every WRITE 20 ms after it arrived.
Both backends."""
import filecmp
import os

import gevent
import pytest

from pssh.single import SSHClient
from toolkit import sftp_filter, sftp_write_meter

GUARD = 30
SIZE = 6 * 1024 * 1024
# Both backends offer libssh2 at most this much from the first unacknowledged byte on.
MOST_IN_FLIGHT = 1024 * 1024


@pytest.fixture
def metered(make_sshd, scratch):
    if sftp_filter.find_sftp_server() is None:
        pytest.skip("OpenSSH sftp-server binary not found")
    results = os.path.join(scratch, "meter.json")
    srv = make_sshd(listen_ip="127.0.0.1",
                    extra_config=sftp_write_meter.subsystem_config(results, delay=0.02))
    return srv, results


def test_upload_keeps_a_bounded_pipeline_full(metered, user_key, scratch):
    srv, results = metered
    source = os.path.join(scratch, "source.bin")
    with open(source, "wb") as fh:
        fh.write(os.urandom(SIZE))
    target = os.path.join(scratch, "target.bin")
    client = SSHClient(srv.host, port=srv.port, pkey=user_key.private, num_retries=1,
                       timeout=20, allow_agent=False, identity_auth=False)
    try:
        with gevent.Timeout(GUARD):
            client.copy_file(source, target)
    finally:
        client.close()
    stats = sftp_write_meter.read_results(results, timeout=10)
    assert filecmp.cmp(source, target, shallow=False)
    assert stats["bytes"] == SIZE
    # Pipelined: with 20 ms per reply, stop-and-wait (or a few requests) would take seconds.
    assert stats["max_outstanding_bytes"] >= MOST_IN_FLIGHT // 2, stats
    # Bounded: never more than the offer in flight, whatever the server's window allows.
    assert stats["max_outstanding_bytes"] <= MOST_IN_FLIGHT, stats
