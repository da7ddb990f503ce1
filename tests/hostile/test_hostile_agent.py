"""A hostile host with agent forwarding: it opens agent channels by the dozen and holds them,
or sends agent messages claiming gigabytes. Only its own forwarding suffers: another host still
authenticates with the local agent at once, and the process-wide caps hold across threads."""
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time

import gevent
import pytest

from pssh.connection import agent_forward as _agent_forward
from pssh.single import SSHClient

REMOTE_PYTHON = "/usr/bin/python3"
CONNECT_TIMEOUT = 6
# More agent connections than the old shared pool of 64 had slots.
FLOOD = 70
PER_CONNECTION = 8

# Opens FLOOD connections to the forwarded agent, sends nothing, holds them; then reports
# how many the client closed. Bounded: it ends by itself after HOLD seconds.
HOLD_SCRIPT = r"""
import os, socket, sys, time
held = []
for _ in range(%(flood)d):
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["SSH_AUTH_SOCK"])
    held.append(s)
print("holding", len(held), flush=True)
time.sleep(%(hold)d)
"""

# One agent message whose length field claims almost 4 GiB, then waits for the end.
HUGE_SCRIPT = r"""
import os, socket, struct, time
s = socket.socket(socket.AF_UNIX)
s.connect(os.environ["SSH_AUTH_SOCK"])
s.sendall(struct.pack(">I", 0xFFFFFFF0) + b"\x0b" * 1024)
s.settimeout(10)
started = time.monotonic()
print("eof" if s.recv(16) == b"" else "data", round(time.monotonic() - started), flush=True)
"""


@pytest.fixture
def local_agent(unauthorized_key, monkeypatch):
    """A real ssh-agent holding ``unauthorized_key`` as this process's ``$SSH_AUTH_SOCK``."""
    directory = tempfile.mkdtemp(prefix="pssh-hagent-")  # unix socket paths are short
    path = os.path.join(directory, "agent.sock")
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", path], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            assert proc.poll() is None and time.monotonic() < deadline, "no ssh-agent"
            time.sleep(0.02)
        subprocess.run(["ssh-add", unauthorized_key.private], check=True, capture_output=True,
                       timeout=10, env=dict(os.environ, SSH_AUTH_SOCK=path))
        monkeypatch.setenv("SSH_AUTH_SOCK", path)
        yield path
    finally:
        proc.kill()
        proc.wait(5)
        shutil.rmtree(directory, ignore_errors=True)


def _forwarding_client(server, key):
    return SSHClient(server.host, port=server.port, user=server.user, pkey=key.private,
                     num_retries=1, timeout=CONNECT_TIMEOUT, allow_agent=False,
                     identity_auth=False, forward_ssh_agent=True)


def _wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        gevent.sleep(0.05)
    return predicate()


def test_agent_channel_flood_neither_starves_authentication_nor_outlives_idle_deadline(
        sshd, make_sshd, user_key, unauthorized_key, local_agent, caplog):
    # Only the agent's key logs in here: authenticating needs a local agent connection.
    agent_only = make_sshd(authorized_keys=[unauthorized_key])
    hostile = _forwarding_client(sshd, user_key)
    forwarder = hostile._agent_forwarder
    forwarder.idle_timeout = 3
    try:
        with gevent.Timeout(30), caplog.at_level(logging.WARNING, logger="pssh.agent"):
            out = hostile.run_command("%s -c '%s'" % (
                REMOTE_PYTHON, HOLD_SCRIPT % {"flood": FLOOD, "hold": 15}))
            assert next(iter(out.stdout)) == "holding %d" % FLOOD
            assert _wait_for(lambda: forwarder.active >= PER_CONNECTION, 5)
            gevent.sleep(0.5)  # the rest of the flood reaches the client meanwhile

            started = time.monotonic()
            other = SSHClient(agent_only.host, port=agent_only.port, user=agent_only.user,
                              num_retries=1, timeout=CONNECT_TIMEOUT, allow_agent=True,
                              identity_auth=False)
            took = time.monotonic() - started
            try:
                probe = other.run_command("echo via-agent")
                assert list(probe.stdout) == ["via-agent"]
            finally:
                other.close()
            assert took < 3, "agent authentication waited %.1fs behind the flood" % took
            assert forwarder.active == PER_CONNECTION
            assert forwarder.refused == FLOOD - PER_CONNECTION

            # Channels that never send a request are closed at the idle deadline.
            assert _wait_for(lambda: forwarder.active == 0, forwarder.idle_timeout + 3)
            assert forwarder.served == 0
        messages = [record.getMessage() for record in caplog.records]
        assert sum("cap per connection" in m and sshd.host in m for m in messages) == 1, messages
        assert any("no complete agent request within 3s" in m for m in messages), messages
        assert _agent_forward.MAX_FORWARDED_CHANNELS == PER_CONNECTION
        assert _agent_forward.forwarding_agent_slots().in_use == 0
        assert _agent_forward.local_agent_slots().in_use == 0
    finally:
        hostile.close()


def test_agent_message_claiming_gigabytes_is_refused_unread(sshd, user_key, local_agent,
                                                            caplog):
    client = _forwarding_client(sshd, user_key)
    try:
        with gevent.Timeout(20), caplog.at_level(logging.WARNING, logger="pssh.agent"):
            out = client.run_command("%s -c '%s'" % (REMOTE_PYTHON, HUGE_SCRIPT))
            lines = list(out.stdout)
            client.wait_finished(out)
        assert lines == ["eof 0"], lines  # closed at once, not after reading the "body"
        assert any("over the limit" in record.getMessage() for record in caplog.records)
        # the session and forwarding still work for honest requests
        out = client.run_command("ssh-add -l")
        assert len(list(out.stdout)) == 1
        client.wait_finished(out)
        assert out.exit_code == 0
    finally:
        client.close()


def _in_thread(function):
    """Run ``function`` in a new thread (its own gevent hub); return its result."""
    result = {}

    def body():
        try:
            result["value"] = function()
        except BaseException as exc:  # reported in the test thread
            result["error"] = exc
        finally:
            gevent.get_hub().destroy(destroy_loop=True)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(15)
    assert not thread.is_alive()
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_local_agent_cap_is_per_process_not_per_thread():
    slots = _agent_forward.local_agent_slots()
    size = _agent_forward.MAX_AGENT_CONNECTIONS
    for _ in range(size):
        assert slots.acquire(timeout=1)
    try:
        # Another thread, another hub: the same slots, all taken.
        assert _in_thread(lambda: _agent_forward.local_agent_slots().acquire(timeout=0.2)) \
            is False

        # A waiter in another thread is woken on its own hub when a slot comes back here.
        def wait_for_slot():
            started = time.monotonic()
            got = _agent_forward.local_agent_slots().acquire(timeout=10)
            return got, time.monotonic() - started

        releaser = threading.Timer(0.3, slots.release)
        releaser.start()
        got, waited = _in_thread(wait_for_slot)
        releaser.join()
        assert got and waited < 5
        size -= 1  # the waiter's thread took the released slot and keeps it
        slots.release()
    finally:
        for _ in range(size):
            slots.release()
    assert slots.in_use == 0


def test_remote_cannot_remove_or_add_keys_in_the_local_agent(sshd, user_key, unauthorized_key,
                                                             local_agent, caplog):
    def local_keys():
        listing = subprocess.run(["ssh-add", "-l"], capture_output=True, text=True, timeout=10,
                                 env=dict(os.environ, SSH_AUTH_SOCK=local_agent))
        return listing.returncode, listing.stdout

    before = local_keys()
    assert before[0] == 0 and before[1].count("\n") == 1
    client = _forwarding_client(sshd, user_key)
    try:
        with gevent.Timeout(20), caplog.at_level(logging.WARNING, logger="pssh.agent"):
            # removing every key would break agent authentication for every other host
            out = client.run_command("ssh-add -D; echo removed=$?")
            assert list(out.stdout)[-1] == "removed=1"
            # adding the remote's key would make the local agent offer it to other hosts
            out = client.run_command(
                "ssh-keygen -q -t ed25519 -N '' -f /tmp/pssh-hostile-$$ && "
                "ssh-add /tmp/pssh-hostile-$$; echo added=$?; rm -f /tmp/pssh-hostile-$$*")
            assert list(out.stdout)[-1] == "added=1"
            # listing and signing still work
            out = client.run_command("ssh-add -l")
            assert len(list(out.stdout)) == 1
            client.wait_finished(out)
            assert out.exit_code == 0
        assert local_keys() == before
        assert client._agent_forwarder.rejected >= 2
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("remove all identities refused" in m for m in warnings), warnings
        assert not any("add identity refused" in m for m in warnings)  # once per connection
    finally:
        client.close()


def test_agent_authentication_cap_holds_across_threads(make_sshd, unauthorized_key,
                                                       local_agent, monkeypatch):
    from pssh.parallel import ParallelSSHClient

    class Recording(_agent_forward.ProcessSlots):
        def __init__(self, size):
            super().__init__(size)
            self.peak = 0
            self.granted = 0

        def acquire(self, *args, **kwargs):
            got = super().acquire(*args, **kwargs)
            with self._lock:
                self.peak = max(self.peak, self.in_use)
                self.granted += got
            return got

    slots = Recording(2)
    monkeypatch.setattr(_agent_forward, "_AUTH_SLOTS", slots)
    server = make_sshd(authorized_keys=[unauthorized_key])  # only the agent's key logs in

    def run_hosts():
        client = ParallelSSHClient([server.host] * 4, port=server.port, user=server.user,
                                   num_retries=1, timeout=20, allow_agent=True,
                                   identity_auth=False, pool_size=4)
        try:
            output = client.run_command("echo via-agent")
            client.join(output, timeout=20)
            return [list(host_out.stdout) for host_out in output]
        finally:
            client.close()

    results = []
    threads = [threading.Thread(target=lambda: results.append(_in_thread(run_hosts)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [[["via-agent"]] * 4] * 2
    assert slots.granted == 8 and slots.peak == 2 and slots.in_use == 0
