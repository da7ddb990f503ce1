"""An SFTP subsystem that measures how much upload data a client keeps in flight.

sshd runs it as the SFTP subsystem (see :func:`subsystem_config`). It relays packets between
the client and the real OpenSSH ``sftp-server`` and holds each reply to a WRITE request until
``delay`` seconds after that request arrived, as a link with that round trip would: a
pipelining client then fills whatever it allows itself in flight, a stop-and-wait one stays at
one request. When the client goes away it writes, as JSON to the results file,
``max_outstanding_bytes`` (WRITE payload bytes received and not yet answered, at most) and
``max_outstanding_requests``, ``writes`` and ``bytes`` (totals).

Usage::

    extra = sftp_write_meter.subsystem_config(results_path, delay=0.01)
    server = make_sshd(extra_config=extra)
    ... upload ...; client.close()
    stats = sftp_write_meter.read_results(results_path, timeout=5)
"""
import json
import os
import struct
import sys
import threading
import time

try:
    from .sftp_filter import find_sftp_server, packet, relay, server_python
except ImportError:  # run by sshd as a script: its own directory is on sys.path
    from sftp_filter import find_sftp_server, packet, relay, server_python

WRITE, STATUS = 6, 101


def subsystem_config(results_file, delay=0.01):
    """The ``extra_config`` for ``make_sshd`` that runs the meter as the SFTP subsystem; the
    results go to ``results_file`` (its directory must be writable by the login user)."""
    server = find_sftp_server()
    if server is None:
        raise RuntimeError("OpenSSH sftp-server not found (set PSSH_SFTP_SERVER)")
    return {"Subsystem": "sftp %s %s %s %s %r" % (
        server_python(), os.path.abspath(__file__), server, os.path.abspath(results_file),
        float(delay))}


def read_results(results_file, timeout):
    """The meter's results, waiting up to ``timeout`` seconds for the session to end."""
    deadline = time.monotonic() + timeout
    while not os.path.exists(results_file):
        if time.monotonic() > deadline:
            raise TimeoutError("the SFTP meter wrote no results to %s" % results_file)
        time.sleep(0.05)
    with open(results_file) as fh:
        return json.load(fh)


class Meter:
    def __init__(self, delay):
        self.delay = delay
        self.lock = threading.Lock()
        self.pending = {}  # request id -> (payload bytes, arrival time)
        self.outstanding = 0
        self.stats = {"max_outstanding_bytes": 0, "max_outstanding_requests": 0,
                      "writes": 0, "bytes": 0}

    def from_client(self, kind, payload):
        if kind == WRITE and len(payload) >= 4:
            request_id = struct.unpack_from(">I", payload)[0]
            handle_len = struct.unpack_from(">I", payload, 4)[0]
            # id, handle, offset (8), data length (4), data
            size = struct.unpack_from(">I", payload, 8 + handle_len + 8)[0]
            with self.lock:
                self.pending[request_id] = (size, time.monotonic())
                self.outstanding += size
                stats = self.stats
                stats["writes"] += 1
                stats["bytes"] += size
                stats["max_outstanding_bytes"] = max(stats["max_outstanding_bytes"],
                                                     self.outstanding)
                stats["max_outstanding_requests"] = max(stats["max_outstanding_requests"],
                                                        len(self.pending))
        return packet(kind, payload)

    def from_server(self, kind, payload):
        if kind == STATUS and len(payload) >= 4:
            request_id = struct.unpack_from(">I", payload)[0]
            with self.lock:
                size, arrived = self.pending.get(request_id, (None, None))
            if size is not None:
                # Replies come in request order, so sleeping here delays each by `delay`
                # from its own request without serialising the delays.
                wait = arrived + self.delay - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                with self.lock:
                    del self.pending[request_id]
                    self.outstanding -= size
        return packet(kind, payload)


def main(sftp_server, results_file, delay):
    meter = Meter(float(delay))
    relay(sftp_server, meter.from_client, meter.from_server)
    with meter.lock:
        data = json.dumps(meter.stats)
    with open(results_file + ".tmp", "w") as fh:
        fh.write(data)
    os.replace(results_file + ".tmp", results_file)
    os._exit(0)


if __name__ == "__main__":
    main(*sys.argv[1:4])
