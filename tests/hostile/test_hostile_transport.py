"""A man in the middle on the SSH transport (toolkit/relay.py in front of a real sshd).

A tampered packet must fail that one connection with a pssh exception naming the host, within
the client's timeout: never abort the process (libssh2 1.11.1 in the ssh2-python wheel has its
asserts on), never hang it. Attacks that could abort run the client in a subprocess, so that a
SIGABRT is seen as such instead of killing pytest.
"""
import json
import os
import subprocess
import sys
import struct
import textwrap
import time

import gevent
import paramiko
import pytest
from toolkit.crafted_server import CraftedServer
from toolkit.relay import (
    DROP, ETM_MAC_LEN, GCM_TAG_LEN, STALL, Action, Relay, flip_bit, with_length)

from pssh.exceptions import ConnectionError, PSSHError, Timeout
from pssh.single import SSHClient

GCM = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
CHILD_TIMEOUT = 20
CLIENT_TIMEOUT = 3
# The third encrypted server packet is the USERAUTH_PK_OK reply to the ed25519 user key: its
# padding (8) is below 10, so libssh2 accepts a rewritten length of 11 and reaches the final
# 15-byte decryption call, shorter than the tag (the assert). The first two packets
# (EXT_INFO, SERVICE_ACCEPT) carry 14 bytes of padding and would fail earlier.
PK_OK_INDEX = 2
PK_OK_LENGTH = 80

# Runs in a fresh interpreter: connects (or runs a parallel command) and prints one JSON line.
CHILD = textwrap.dedent("""
    import json, sys
    spec = json.loads(sys.argv[1])
    if spec.get("no_native"):
        sys.modules["pssh._native"] = None      # as where the compiled module cannot load
    import logging
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    from pssh.exceptions import PSSHError
    opts = dict(user=spec["user"], pkey=spec["key"], num_retries=1, timeout=spec["timeout"],
                allow_agent=False, identity_auth=False)
    if spec.get("parallel"):
        from pssh.config import HostConfig
        from pssh.parallel import ParallelSSHClient
        hosts = [host for host, _ in spec["targets"]]
        config = [HostConfig(port=port) for _, port in spec["targets"]]
        client = ParallelSSHClient(hosts, host_config=config, **opts)
        outputs = client.run_command("echo ok", stop_on_errors=False)
        client.join(outputs, timeout=spec["timeout"] * 3)
        result = []
        for out in outputs:
            if out.exception is not None:
                result.append({"exc": type(out.exception).__name__, "msg": str(out.exception)})
            else:
                result.append({"stdout": list(out.stdout), "exit_code": out.exit_code})
        print(json.dumps(result))
        sys.exit(0)
    from pssh.single import SSHClient
    host, port = spec["targets"][0]
    try:
        client = SSHClient(host, port=port, **opts)
        out = client.run_command("echo ok")
        print(json.dumps({"stdout": list(out.stdout)}))
    except PSSHError as exc:
        print(json.dumps({"exc": type(exc).__name__, "msg": str(exc), "host": exc.host,
                          "port": exc.port}))
""")


def run_child(spec, env=None):
    """The child's JSON result; fails the test when it died of a signal or printed nothing."""
    child_env = dict(os.environ, **(env or {}))
    try:
        proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], env=child_env,
                              capture_output=True, text=True, timeout=CHILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("client process hung (client timeout %ss)" % (spec["timeout"],))
    assert proc.returncode == 0, "client process died (rc %s): %s" % (
        proc.returncode, proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def spec_for(server, key, targets, **extra):
    spec = dict(user=server.user, key=key.private, timeout=CLIENT_TIMEOUT, targets=targets)
    spec.update(extra)
    return spec


def rewrite_pk_ok_length(fired):
    def hook(packet):
        if packet.encrypted and packet.index == PK_OK_INDEX:
            fired.append(packet.length)
            return with_length(packet, 11)
        return None
    return hook


@pytest.fixture(params=GCM)
def gcm_sshd(request, make_sshd):
    return make_sshd(extra_config={"Ciphers": request.param})


@pytest.mark.parametrize("batching", [{}, {"PSSH_NO_GCM_BATCH": "1"},
                                      {"PSSH_NO_GCM_DECRYPT_BATCH": "1"}],
                         ids=["batching", "no-batching", "no-decrypt-batching"])
def test_gcm_crafted_length_fails_the_connection_not_the_process(gcm_sshd, user_key, batching):
    """A clear GCM length of 11 (a 15-byte final block) used to reach libssh2's
    assert(cryptlen >= 0) and SIGABRT the client; now that host fails with a pssh error."""
    fired = []
    with Relay(gcm_sshd.address, rewrite_pk_ok_length(fired), trailer_len=GCM_TAG_LEN) as relay:
        result, _ = run_child(spec_for(gcm_sshd, user_key, [[relay.host, relay.port]]),
                              env=batching)
    assert fired == [PK_OK_LENGTH], "the relay did not rewrite the USERAUTH_PK_OK packet"
    # libssh2 reports the failed read inside public key authentication as an auth failure.
    assert result.get("exc") in ("AuthenticationError", "HandshakeError",
                                 "ConnectionLostError"), result
    assert result["host"] == relay.host and result["port"] == relay.port
    assert "%s:%s" % (relay.host, relay.port) in result["msg"]


@pytest.mark.parametrize("length", [20, 1 << 20])
def test_gcm_invalid_first_block_length_is_a_handshake_error(gcm_sshd, user_key, length):
    """Any clear length no honest peer sends (not a multiple of 16, below the minimum packet,
    beyond libssh2's bound) fails the handshake at once with the host and the cause."""
    def hook(packet):
        return with_length(packet, length) if packet.encrypted and packet.index == 0 else None

    with Relay(gcm_sshd.address, hook, trailer_len=GCM_TAG_LEN) as relay:
        result, _ = run_child(spec_for(gcm_sshd, user_key, [[relay.host, relay.port]]))
    assert result.get("exc") == "HandshakeError", result
    assert "%s:%s" % (relay.host, relay.port) in result["msg"]
    assert "DecryptError" in result["msg"]


def test_gcm_attack_leaves_other_hosts_alone(make_sshd, user_key):
    """In one parallel run, the tampered host fails and the direct hosts return their output."""
    server = make_sshd(extra_config={"Ciphers": "aes128-gcm@openssh.com"})
    fired = []
    with Relay(server.address, rewrite_pk_ok_length(fired), trailer_len=GCM_TAG_LEN) as relay:
        targets = [[server.host, server.port], [relay.host, relay.port],
                   [server.host, server.port]]
        result, _ = run_child(spec_for(server, user_key, targets, parallel=True))
    assert fired == [PK_OK_LENGTH]
    assert result[0] == result[2] == {"stdout": ["ok"], "exit_code": 0}
    assert result[1].get("exc") in ("AuthenticationError", "HandshakeError",
                                    "ConnectionLostError"), result
    assert "%s:%s" % (relay.host, relay.port) in result[1]["msg"]


@pytest.mark.parametrize("chunk", [0, 2], ids=["handshake", "authentication"])
def test_ctr_flipped_length_bit_fails_the_connection_not_the_process(make_sshd, user_key, chunk):
    """aes-ctr with a MAC over the plaintext: the length is encrypted, but ctr is malleable.
    Flipping its lowest bit in transit used to make a packet that is not a whole number of
    blocks and SIGABRT the client in libssh2's decrypt(); now that host fails cleanly.

    Without clear lengths the relay cannot count packets; it flips the fourth byte of an
    encrypted chunk, which starts with a packet as the server answers one request at a time
    (chunk 0: the first packet after NEWKEYS, chunk 2: a reply during authentication)."""
    server = make_sshd(extra_config={"Ciphers": "aes128-ctr", "MACs": "hmac-sha2-256"})
    fired = []

    def hook(packet):
        if packet.encrypted and packet.index == chunk:
            fired.append(True)
            return flip_bit(packet, 3)
        return None

    with Relay(server.address, hook) as relay:
        result, _ = run_child(spec_for(server, user_key, [[relay.host, relay.port]]))
    assert fired
    assert result.get("exc") in ("HandshakeError", "AuthenticationError",
                                 "ConnectionLostError"), result
    assert "%s:%s" % (relay.host, relay.port) in result["msg"]


@pytest.mark.parametrize("cipher,mac,tamper", [
    ("chacha20-poly1305@openssh.com", None, "flip"),
    ("aes128-ctr", "hmac-sha2-256-etm@openssh.com", "length"),
    ("aes256-ctr", "hmac-sha1-etm@openssh.com", "length"),
    ("aes128-cbc", "hmac-sha2-256", "flip")])
def test_other_ciphers_tampered_in_transit_fail_the_connection_only(make_sshd, user_key, cipher,
                                                                    mac, tamper):
    """The other negotiated modes, tampered by the relay: chacha20-poly1305 (Poly1305 checked
    before decryption; libssh2 used to return its failure as a packet type and read the same
    packet again forever, GIL held: the process hung), etm MACs (clear length, MAC checked
    first: a rewritten one fails the MAC), cbc (a flipped bit garbles the whole first block).
    None may abort or hang; each ends for that host within its timeout."""
    config = {"Ciphers": cipher}
    if mac:
        config["MACs"] = mac
    server = make_sshd(extra_config=config)
    trailer = ETM_MAC_LEN.get(mac)
    fired = []

    def hook(packet):
        if packet.encrypted and packet.index == 0:
            fired.append(True)
            return with_length(packet, 17) if tamper == "length" else flip_bit(packet, 3)
        return None

    with Relay(server.address, hook, trailer_len=trailer) as relay:
        result, _ = run_child(spec_for(server, user_key, [[relay.host, relay.port]]))
    assert fired
    assert result.get("exc") in ("HandshakeError", "AuthenticationError", "Timeout",
                                 "ConnectionLostError"), result
    assert "%s:%s" % (relay.host, relay.port) in result["msg"]


@pytest.mark.parametrize("cipher,mac", [("chacha20-poly1305@openssh.com", "hmac-sha2-256"),
                                        ("aes128-ctr", "hmac-sha2-256"),
                                        ("aes256-ctr", "hmac-sha2-512-etm@openssh.com"),
                                        ("aes128-cbc", "hmac-sha1"),
                                        ("aes256-cbc", "hmac-sha2-256-etm@openssh.com")])
def test_guarded_block_ciphers_still_carry_honest_traffic(make_sshd, user_key, cipher, mac):
    """The aes-ctr/aes-cbc guard and the chacha20-poly1305 wrapper reject nothing an honest
    server sends: full-size packets arriving in pieces, with a MAC over the plaintext and with
    an etm MAC."""
    server = make_sshd(extra_config={"Ciphers": cipher, "MACs": mac})
    client = SSHClient(server.host, port=server.port, user=server.user, pkey=user_key.private,
                       num_retries=1, timeout=20, allow_agent=False, identity_auth=False)
    with gevent.Timeout(30, AssertionError("command hung")):
        out = client.run_command("head -c 3000000 /dev/zero | tr '\\0' a | fold -w 1000")
        lines = list(out.stdout)
        client.wait_finished(out)
    assert out.exit_code == 0
    assert lines == ["a" * 1000] * 3000


def test_without_guards_unguarded_ciphers_are_not_offered(make_sshd, user_key):
    """Pure backend where the compiled module cannot load: no guard can be installed, so AES-GCM,
    aes-ctr and aes-cbc are left out of the cipher preference (logged once each): a server with
    only those is refused in the handshake, a default server connects (chacha20-poly1305)."""
    gcm_only = make_sshd(extra_config={"Ciphers": ",".join(GCM)})
    ctr_only = make_sshd(extra_config={"Ciphers": "aes128-ctr,aes256-cbc"})
    default = make_sshd()
    env = {"PSSH_PURE_PYTHON": "1"}
    for server in (gcm_only, ctr_only):
        result, log = run_child(spec_for(server, user_key, [[server.host, server.port]],
                                         no_native=True), env=env)
        assert result.get("exc") == "HandshakeError", result
        assert log.count("AES-GCM is not offered") == 1, log
        assert log.count("aes-ctr/aes-cbc is not offered") == 1, log
        assert log.count("chacha20-poly1305 has no failure wrapper") == 1, log
    result, _ = run_child(spec_for(default, user_key, [[default.host, default.port]],
                                   no_native=True), env=env)
    assert result == {"stdout": ["ok"]}


THREADS_CHILD = textwrap.dedent("""
    import json, sys, threading
    spec = json.loads(sys.argv[1])
    from pssh.single import SSHClient
    barrier = threading.Barrier(spec["threads"])
    results = []

    def connect():
        barrier.wait()
        client = SSHClient(spec["host"], port=spec["port"], user=spec["user"],
                           pkey=spec["key"], num_retries=1, timeout=20, allow_agent=False,
                           identity_auth=False)
        results.append(list(client.run_command("echo ok").stdout))

    threads = [threading.Thread(target=connect) for _ in range(spec["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    from pssh.core.backend import enable_gcm_batching_once
    print(json.dumps({"results": results, "guard": enable_gcm_batching_once() is True}))
""")


@pytest.mark.parametrize("batching", [{}, {"PSSH_NO_GCM_BATCH": "1"}],
                         ids=["batching", "no-batching"])
def test_first_connects_from_several_threads(make_sshd, user_key, batching):
    """Threads connecting for the first time at once (each with its own hub) all finish: the
    wrapper is installed once, under a lock, and never records itself as libssh2's function.
    The race is timing-dependent, so three fresh processes try it at once."""
    server = make_sshd(extra_config={"Ciphers": "aes128-gcm@openssh.com",
                                     "MaxStartups": "100"})
    spec = dict(host=server.host, port=server.port, user=server.user, key=user_key.private,
                threads=8)
    procs = [subprocess.Popen([sys.executable, "-c", THREADS_CHILD, json.dumps(spec)],
                              env=dict(os.environ, **batching), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    deadline = time.monotonic() + 40
    try:
        for proc in procs:
            try:
                stdout, stderr = proc.communicate(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pytest.fail("first connects from several threads hung the process")
            assert proc.returncode == 0, stderr[-2000:]
            result = json.loads(stdout.strip().splitlines()[-1])
            assert result["results"] == [["ok"]] * 8
            assert result["guard"] is True
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# -- stalls and drops: in process (they cannot abort), bounded by the client's timeout ---------

def connect(relay, server, key, timeout=CLIENT_TIMEOUT):
    return SSHClient(relay.host, port=relay.port, user=server.user, pkey=key.private,
                     num_retries=1, timeout=timeout, allow_agent=False, identity_auth=False)


def cut_half(then):
    return lambda packet: Action(packet.data[:len(packet.data) // 2], then)


def test_stall_mid_packet_during_the_handshake(make_sshd, user_key):
    """The server's KEXINIT stops half way and the connection stays open: Timeout in time."""
    server = make_sshd(extra_config={"Ciphers": "aes128-gcm@openssh.com"})

    def hook(packet):
        return cut_half(STALL)(packet) if packet.index == 0 and not packet.encrypted else None

    with Relay(server.address, hook, trailer_len=GCM_TAG_LEN) as relay:
        started = time.monotonic()
        with gevent.Timeout(CLIENT_TIMEOUT * 5, AssertionError("handshake stall hung")):
            with pytest.raises(Timeout) as info:
                connect(relay, server, user_key)
        assert time.monotonic() - started < CLIENT_TIMEOUT + 2
    assert info.value.host == relay.host and "timed out" in str(info.value)


@pytest.mark.parametrize("then", [STALL, DROP])
def test_stall_or_drop_mid_packet_after_authentication(make_sshd, user_key, then):
    """After authentication the next server packet stops half way, then the relay stalls (the
    command must time out) or drops the connection (the command fails as connection lost)."""
    server = make_sshd(extra_config={"Ciphers": "aes128-gcm@openssh.com"})
    armed = []

    def hook(packet):
        return cut_half(then)(packet) if armed and packet.encrypted else None

    with Relay(server.address, hook, trailer_len=GCM_TAG_LEN) as relay:
        client = connect(relay, server, user_key)
        armed.append(True)
        started = time.monotonic()
        with gevent.Timeout(CLIENT_TIMEOUT * 5, AssertionError("stall after auth hung")):
            with pytest.raises(PSSHError) as info:
                out = client.run_command("echo ok")
                client.wait_finished(out, timeout=CLIENT_TIMEOUT)
        assert time.monotonic() - started < CLIENT_TIMEOUT + 2
    expected = Timeout if then == STALL else ConnectionError
    assert isinstance(info.value, expected), repr(info.value)
    assert info.value.host == relay.host


# -- a hostile server: it holds the keys, so it can send any length with a valid MAC or tag ----

def short_by_one_padding_byte(build_packet):
    """A packet builder whose packet is one byte short: not a whole number of cipher blocks."""
    def build(payload):
        packet = build_packet(payload)
        length = struct.unpack(">I", packet[:4])[0]
        return struct.pack(">I", length - 1) + packet[4:-1]
    return build


def eleven_byte_packet(build_packet):
    """A packet of length 11 (padding-length byte, SSH_MSG_IGNORE, 9 padding bytes): with AES-GCM
    its final decryption call is 15 bytes, shorter than the tag."""
    return lambda payload: struct.pack(">IB", 11, 9) + b"\x02" + bytes(9)


@pytest.mark.parametrize("cipher,mac,builder", [
    ("aes128-gcm@openssh.com", "hmac-sha2-256", eleven_byte_packet),
    ("aes128-ctr", "hmac-sha2-256", short_by_one_padding_byte),
    ("aes256-ctr", "hmac-sha2-256-etm@openssh.com", short_by_one_padding_byte),
    ("aes128-ctr", "hmac-sha2-512-etm@openssh.com", short_by_one_padding_byte)])
def test_server_sending_a_bad_length_with_a_valid_mac(monkeypatch, user_key, cipher, mac,
                                                      builder):
    """The server itself (keys, MAC and all) sends one packet whose length libssh2 would assert
    on: the command fails for that host with a pssh error, the process lives. (aes-cbc is left
    out: paramiko cannot send a packet that is not a whole number of cbc blocks; the guard
    checks it as it checks ctr.)"""
    monkeypatch.setattr(paramiko.Transport, "_preferred_ciphers", (cipher,))
    monkeypatch.setattr(paramiko.Transport, "_preferred_macs", (mac,))
    sent = []

    def script(channel, command):
        packetizer = channel.transport.packetizer
        honest = packetizer._build_packet

        def once(payload):
            del packetizer._build_packet        # the next packets are honest again
            sent.append(True)
            return builder(honest)(payload)

        packetizer._build_packet = once
        channel.sendall(b"x" * 40)          # a packet of several cipher blocks

    with CraftedServer(script) as server:
        spec = dict(user="hostile", key=user_key.private, timeout=CLIENT_TIMEOUT,
                    targets=[[server.host, server.port]])
        result, _ = run_child(spec)
        assert not server.errors
    assert sent
    assert result.get("exc") in ("SessionError", "ConnectionLostError", "Timeout"), result
    assert "%s:%s" % (server.host, server.port) in result["msg"]
    assert result["host"] == server.host and result["port"] == server.port
