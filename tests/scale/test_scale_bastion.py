"""Rounds of 200 connections through one bastion (opt-in: --scale or PSSH_SCALE=1).

A lost wake-up in the bastion's shared reader once hung about 1 run in 30 at this size.
Ten rounds, each bounded in time, give such a stall a chance to show; this is a load
check, not a deterministic reproduction (with that bug put back it passed once).
"""
import time

import gevent
import pytest

from embedded_server import OpenSSHServer, ServerFarm
from pssh.parallel import ParallelSSHClient

pytestmark = pytest.mark.scale

N_SERVERS = 10
PER_SERVER = 20
ROUNDS = 10
ROUND_BOUND = 60


def test_rounds_of_two_hundred_hosts_through_one_bastion(authorized_keys, user_key):
    farm = ServerFarm(N_SERVERS, first_ip="127.0.6.2", shared_host_key=True,
                      authorized_keys=authorized_keys)
    bastion = OpenSSHServer(listen_ip="127.0.0.1", authorized_keys=authorized_keys)
    try:
        farm.start()
        bastion.start()
        hosts = [host for host in farm.hosts for _ in range(PER_SERVER)]
        for round_no in range(ROUNDS):
            started = time.monotonic()
            client = ParallelSSHClient(hosts, port=farm.port, pkey=user_key.private,
                                       pool_size=len(hosts), num_retries=1, timeout=30,
                                       allow_agent=False, identity_auth=False,
                                       proxy_host=bastion.host, proxy_port=bastion.port)
            with gevent.Timeout(ROUND_BOUND, AssertionError("round %d stalled" % round_no)):
                output = client.run_command("echo hi")
                client.join(output)
                lines = [list(host_out.stdout) for host_out in output]
            client.close()
            assert lines == [["hi"]] * len(hosts), "round %d" % round_no
            assert [o.exit_code for o in output] == [0] * len(hosts)
            assert time.monotonic() - started < ROUND_BOUND
    finally:
        bastion.stop()
        farm.stop_all()
