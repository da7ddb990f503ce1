"""Driver for paramiko: one thread per host, ``exec_command`` and line iteration over stdout."""
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import paramiko

from _common import main


def _connect(args, host, port, sock=None, user=None, key=None):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(host, port=port, username=user or args["user"], key_filename=key or args["key"],
                   look_for_keys=False, allow_agent=False, timeout=60, sock=sock,
                   banner_timeout=60, auth_timeout=60)  # defaults 15/30 s: too short at 500 hosts
    return client


def single(args, host, port):
    client = _connect(args, host, port)
    try:
        _stdin, stdout, _stderr = client.exec_command(args["command"])
        lines = [line.rstrip("\n") for line in stdout]
        return lines, stdout.channel.recv_exit_status()
    finally:
        client.close()


def _count(args, host, port, results, i):
    try:
        client = _connect(args, host, port)
        try:
            _stdin, stdout, _stderr = client.exec_command(args["command"])
            nlines, last = 0, None
            for line in stdout:
                nlines += 1
                last = line
            last = last.rstrip("\n") if last is not None else None
            results[i] = (nlines, last, stdout.channel.recv_exit_status())
        finally:
            client.close()
    except Exception as exc:  # surfaces as a failed check in the main thread
        results[i] = (0, "%s: %s" % (type(exc).__name__, exc), None)


def parallel(args):
    pairs = list(zip(args["hosts"], args["ports"]))
    results = [None] * len(pairs)
    order = range(len(pairs) - 1, -1, -1) if args.get("reverse") else range(len(pairs))
    threads = [threading.Thread(target=_count, args=(args, pairs[i][0], pairs[i][1], results, i),
                                daemon=True) for i in order]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class Rounds:
    """Connections opened once; one thread per host (a pool of len(hosts) threads kept across
    rounds), each round ``exec_command`` + ``recv_exit_status`` on every connection."""

    def __init__(self, args):
        pairs = list(zip(args["hosts"], args["ports"]))
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(pairs)))
        self.clients = list(self.pool.map(lambda hp: _connect(args, hp[0], hp[1]), pairs))

    @staticmethod
    def _one(client, command):
        _stdin, stdout, _stderr = client.exec_command(command)
        lines = [line.rstrip("\n") for line in stdout]
        return lines, stdout.channel.recv_exit_status()

    def run(self, command):
        return list(self.pool.map(lambda c: self._one(c, command), self.clients))

    def close(self):
        for client in self.clients:
            client.close()
        self.pool.shutdown()


def idle(args, started):
    """A thread per host connects and starts the command; once all have, started(); then each
    thread waits for its exit status."""
    pairs = list(zip(args["hosts"], args["ports"]))
    results = [None] * len(pairs)
    ready = threading.Semaphore(0)

    def one(i, host, port):
        client = None
        try:
            client = _connect(args, host, port)
            _stdin, stdout, _stderr = client.exec_command(args["command"])
        except Exception as exc:
            results[i] = (["%s: %s" % (type(exc).__name__, exc)], None)
            stdout = None
        finally:
            ready.release()
        try:
            if stdout is not None:
                lines = [line.rstrip("\n") for line in stdout]
                results[i] = (lines, stdout.channel.recv_exit_status())
        except Exception as exc:
            results[i] = (["%s: %s" % (type(exc).__name__, exc)], None)
        finally:
            if client is not None:
                client.close()

    threads = [threading.Thread(target=one, args=(i, h, p), daemon=True) for i, (h, p) in enumerate(pairs)]
    for t in threads:
        t.start()
    for _ in threads:
        ready.acquire()
    started()
    for t in threads:
        t.join()
    return results


# -- file transfer workloads (issue 4): open_sftp().put/get, one thread per host --------------

def transfer(args, jobs):
    import _transfer
    if args["protocol"] != "sftp":
        raise _transfer.Unsupported("paramiko has no SCP client")
    errors = []

    def one(host, port, src, dst):
        try:
            client = _connect(args, host, port)
            try:
                sftp = client.open_sftp()
                if args["direction"] == "upload":
                    sftp.put(src, dst)
                else:
                    sftp.get(src, dst)
                sftp.close()
            finally:
                client.close()
        except Exception as exc:  # reported by the main thread
            errors.append("%s: %s: %s" % (host, type(exc).__name__, exc))

    threads = [threading.Thread(target=one, args=(h, p, s, d), daemon=True)
               for _i, h, p, s, d in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError("; ".join(errors))


import _transfer  # noqa: E402
_transfer.register(transfer)


# -- through one bastion (issue 5): one bastion Transport, a direct-tcpip channel per target ---

def bastion(args, via):
    """One bastion connection; a thread per target opens ``transport.open_channel(
    "direct-tcpip", ...)`` on it and connects with ``sock=channel``; exec_command, lines,
    exit status. Then the bastion is closed, and after it the targets' clients: paramiko
    (5.1) closing a target's client while its tunnel is open races (its transport thread can
    send on the tunnel channel after close() sent CHANNEL_CLOSE; the bastion's sshd then drops
    the whole bastion connection: "data packet referred to nonexistent channel").
    ``via`` None: the same, direct (each client closed by its thread)."""
    pairs = list(zip(args["hosts"], args["ports"]))
    results = [None] * len(pairs)
    clients = []
    jump = None if via is None else _connect(args, via["host"], via["port"], user=via["user"],
                                             key=via["key"])

    def one(i, host, port):
        client = None
        try:
            sock = None
            if jump is not None:
                sock = jump.get_transport().open_channel("direct-tcpip", (host, port),
                                                         ("127.0.0.1", 0), timeout=60)
            client = _connect(args, host, port, sock=sock)
            _stdin, stdout, _stderr = client.exec_command(args["command"])
            lines = [line.rstrip("\n") for line in stdout]
            results[i] = (len(lines), lines[-1] if lines else None,
                          stdout.channel.recv_exit_status())
        except Exception as exc:  # surfaces as a failed check in the main thread
            results[i] = (0, "%s: %s" % (type(exc).__name__, exc), None)
        finally:
            if client is not None and jump is None:
                client.close()
            elif client is not None:
                clients.append(client)

    try:
        threads = [threading.Thread(target=one, args=(i, h, p), daemon=True)
                   for i, (h, p) in enumerate(pairs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        if jump is not None:
            jump.close()
        for client in clients:
            client.close()
    return results


import _bastion  # noqa: E402
_bastion.register(bastion)


if __name__ == "__main__":
    sys.exit(main(single, parallel, library=paramiko, rounds=Rounds, idle=idle))
