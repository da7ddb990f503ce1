"""Driver for paramiko: one thread per host, ``exec_command`` and line iteration over stdout."""
import sys
import threading

import paramiko

from _common import main


def _connect(args, host, port):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect(host, port=port, username=args["user"], key_filename=args["key"],
                   look_for_keys=False, allow_agent=False, timeout=60)
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


if __name__ == "__main__":
    sys.exit(main(single, parallel, library=paramiko))
