"""Leaving a sharded run early stops it in the shards, and a sharded run waits without
freezing the calling thread's gevent hub (both backends: the shards inherit
PSSH_PURE_PYTHON)."""
import os
import time

import gevent
import pytest

from pssh.sharded import ShardedClient
from test_sharded_interrupt import _named, _wait_for

# Appends a line to its file every 0.1 s (for 15 s at most) while its output channel is open:
# once the channel is closed, its next echo fails (SIGPIPE) and the loop ends.
TICKER = ("i=0; while [ $i -lt 150 ] && echo tick; do echo . >> %s; sleep 0.1; "
          "i=$((i+1)); done")


def _sizes(paths):
    return [os.path.getsize(path) if os.path.exists(path) else 0 for path in paths]


def _stopped_growing(paths, within):
    """True once none of ``paths`` grows for 1 s, within ``within`` seconds."""
    deadline = time.monotonic() + within
    before = _sizes(paths)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        after = _sizes(paths)
        if after == before:
            return True
        before = after
    return False


@pytest.mark.timeout(60)
def test_break_stops_the_other_hosts_commands(fresh_sshd, client_options, scratch):
    hosts = [fresh_sshd.host] * 4
    tick_files = [os.path.join(scratch, "ticks-%d" % index) for index in range(1, 4)]
    commands = [("echo first",)] + [(TICKER % path,) for path in tick_files]
    with ShardedClient(hosts, shards=2, batch_size=1, port=fresh_sshd.port,
                       **client_options) as client:
        assert all(r.ok for r in client.run_command("echo $PPID"))
        sessions = sorted(_named(fresh_sshd.connections(), "sshd"))
        results = client.iter_run_command("%s", host_args=commands)
        first = next(results)
        assert first.index == 0 and first.stdout == ("first",)
        assert _wait_for(lambda: all(_sizes(tick_files)), 10), "the tickers never started"
        started = time.monotonic()
        results.close()
        assert time.monotonic() - started < 10
        # the tickers' channels were closed: every one of them ends
        assert _stopped_growing(tick_files, 5), _sizes(tick_files)
        # the connections stayed for reuse, and the next command runs on every host
        again = client.run_command("echo again")
        assert [r.stdout for r in again] == [("again",)] * len(hosts)
        assert sorted(_named(fresh_sshd.connections(), "sshd")) == sessions


@pytest.mark.timeout(60)
def test_leaving_early_ends_remote_commands_without_a_pty_by_sigterm(fresh_sshd,
                                                                      client_options):
    # "sleep 30" never writes: only the SIGTERM sent before its channel closes ends it soon
    hosts = [fresh_sshd.host] * 4
    sleeps = [(0,), (30,), (30,), (30,)]
    with ShardedClient(hosts, shards=2, batch_size=1, port=fresh_sshd.port,
                       **client_options) as client:
        assert all(r.ok for r in client.run_command("true"))
        results = client.iter_run_command("sleep %s", host_args=sleeps)
        assert next(results).index == 0
        assert _wait_for(lambda: len(_named(fresh_sshd.connections(), "sleep")) == 3, 10)
        results.close()
        assert _wait_for(lambda: not _named(fresh_sshd.connections(), "sleep"), 5), \
            fresh_sshd.connections()
        assert all(r.ok and r.stdout == ("again",)
                   for r in client.run_command("echo again"))


@pytest.mark.timeout(60)
def test_exception_in_the_loop_ends_remote_commands_with_a_pty(fresh_sshd, client_options):
    hosts = [fresh_sshd.host] * 4
    sleeps = [(0,), (30,), (30,), (30,)]
    with ShardedClient(hosts, shards=2, batch_size=1, port=fresh_sshd.port,
                       **client_options) as client:
        assert all(r.ok for r in client.run_command("true"))
        with pytest.raises(LookupError):
            for record in client.iter_run_command("sleep %s", host_args=sleeps,
                                                  use_pty=True):
                assert record.index == 0
                assert _wait_for(
                    lambda: len(_named(fresh_sshd.connections(), "sleep")) == 3, 10)
                raise LookupError("the consumer fails")
        # a PTY's closed channel ends its command: the remote sleeps go within seconds
        assert _wait_for(lambda: not _named(fresh_sshd.connections(), "sleep"), 5), \
            fresh_sshd.connections()
        assert all(r.ok and r.stdout == ("again",)
                   for r in client.run_command("echo again"))


@pytest.mark.timeout(60)
def test_gevent_hub_keeps_running_during_a_sharded_run(sshd_farm, client_options):
    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.05)

    with ShardedClient(sshd_farm.hosts[:2], shards=2, port=sshd_farm.port,
                       **client_options) as client:
        assert all(r.ok for r in client.run_command("true"))
        beat = gevent.spawn(ticker)
        try:
            gevent.sleep(0)
            started, cpu_before = time.monotonic(), time.process_time()
            results = client.run_command("sleep 1; echo done")
            elapsed = time.monotonic() - started
            cpu = time.process_time() - cpu_before
        finally:
            beat.kill()
    assert [r.stdout for r in results] == [("done",)] * 2
    during = [tick for tick in ticks if started <= tick <= started + elapsed]
    gaps = [later - earlier for earlier, later in zip(during, during[1:])]
    assert len(during) >= 0.6 * elapsed / 0.05, (len(during), elapsed)
    assert max(gaps) < 0.3, max(gaps)
    # waiting costs the caller next to no CPU (the ticks included)
    assert cpu < 0.25 * elapsed, (cpu, elapsed)


@pytest.mark.timeout(60)
def test_gevent_timeout_around_a_sharded_run_stops_it(fresh_sshd, client_options, scratch):
    tick_files = [os.path.join(scratch, "timed-ticks-%d" % index) for index in range(2)]
    with ShardedClient([fresh_sshd.host] * 2, shards=2, batch_size=1, port=fresh_sshd.port,
                       **client_options) as client:
        assert all(r.ok for r in client.run_command("true"))
        started = time.monotonic()
        with pytest.raises(gevent.Timeout):
            with gevent.Timeout(1):
                client.run_command("%s", host_args=[(TICKER % path,) for path in tick_files])
        # the timeout fired while the run waited, not after the 15 s commands
        assert time.monotonic() - started < 5
        assert all(_sizes(tick_files))
        assert _stopped_growing(tick_files, 5), _sizes(tick_files)
        assert all(r.stdout == ("again",) for r in client.run_command("echo again"))
