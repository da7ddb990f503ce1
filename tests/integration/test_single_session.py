"""SSHClient session options against a real sshd: keepalive and compression.

Traffic is measured on the client's socket with Linux TCP_INFO (bytes acked by the peer and
bytes received), so the tests see what went over the wire.
"""

import socket
import struct
import sys

import gevent
import pytest


from single_client import connect  # noqa: E402
READ_TIMEOUT = 60

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="uses Linux TCP_INFO counters")



def tcp_counters(sock):
    """(bytes sent and acked, bytes received) of ``sock`` so far."""
    info = sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, "TCP_INFO", 11), 192)
    if len(info) < 136:
        pytest.skip("kernel TCP_INFO has no byte counters")
    return struct.unpack_from("=QQ", info, 120)


def run_lines(client, command):
    out = client.run_command(command, read_timeout=READ_TIMEOUT)
    lines = list(out.stdout)
    client.wait_finished(out, timeout=READ_TIMEOUT)
    return lines, out.exit_code


def test_keepalive_sent_while_idle_and_off_when_zero(sshd, user_key):
    with connect(sshd, user_key, keepalive_seconds=1) as alive, \
            connect(sshd, user_key, keepalive_seconds=0) as quiet:
        assert quiet._keepalive is None
        sent_alive, _ = tcp_counters(alive.sock)
        sent_quiet, _ = tcp_counters(quiet.sock)
        gevent.sleep(2.5)  # the idle period under test (the hub runs the keepalive timer)
        assert tcp_counters(alive.sock)[0] > sent_alive
        assert tcp_counters(quiet.sock)[0] == sent_quiet
        # both connections are still usable after the idle period
        assert run_lines(alive, "echo alive") == (["alive"], 0)
        assert run_lines(quiet, "echo quiet") == (["quiet"], 0)
    assert alive._keepalive is None  # close() stops the timer


def test_keepalive_during_a_running_command(sshd, user_key):
    # keepalives must not disturb a channel that is being read
    with connect(sshd, user_key, keepalive_seconds=1) as c:
        lines, code = run_lines(c, "for i in 1 2 3 4 5; do echo $i; sleep 0.5; done")
        assert (lines, code) == (["1", "2", "3", "4", "5"], 0)


COMPRESSIBLE = r"head -c 5000000 /dev/zero | tr '\0' 'z' | fold -w 100"


@pytest.mark.parametrize("compress", [True, False])
def test_compression(sshd, user_key, compress):
    with connect(sshd, user_key, compress=compress) as c:
        assert c.compress is compress
        _, received_before = tcp_counters(c.sock)
        lines, code = run_lines(c, COMPRESSIBLE)
        _, received_after = tcp_counters(c.sock)
    assert code == 0
    assert len(lines) == 50000 and set(lines) == {"z" * 100}
    on_wire = received_after - received_before
    if compress:
        assert on_wire < 1000000
    else:
        assert on_wire > 5000000
