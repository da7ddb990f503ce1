"""Driver for paramiko: one thread per host, ``exec_command`` and line iteration over stdout."""
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import paramiko

from _common import main


def _connect(args, host, port):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(host, port=port, username=args["user"], key_filename=args["key"],
                   look_for_keys=False, allow_agent=False, timeout=60,
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


if __name__ == "__main__":
    sys.exit(main(single, parallel, library=paramiko, rounds=Rounds, idle=idle))
