"""Driver for the parallel-ssh 2.x API: used for our ``pssh`` (native and pure backends) and for
the published ``parallel-ssh`` package (run with its own virtualenv's python).

Only the public API is used: ``SSHClient``/``ParallelSSHClient``, ``run_command``, iteration over
``host_out.stdout``, ``wait_finished``/``join`` and ``exit_code``.
"""
import sys

import pssh
from pssh.clients import ParallelSSHClient, SSHClient

from _common import main


def single(args, host, port):
    client = SSHClient(host, port=port, user=args["user"], pkey=args["key"], num_retries=1)
    host_out = client.run_command(args["command"])
    lines = list(host_out.stdout)
    client.wait_finished(host_out)
    code = host_out.exit_code
    disconnect = getattr(client, "disconnect", None)
    if disconnect is not None:
        disconnect()
    return lines, code


def make_parallel_client(args, **extra):
    hosts, ports = args["hosts"], args["ports"]
    kwargs = dict(user=args["user"], pkey=args["key"], num_retries=1, pool_size=max(10, len(hosts)),
                  **extra)
    if len(set(ports)) == 1:
        return ParallelSSHClient(hosts, port=ports[0], **kwargs)
    from pssh.config import HostConfig
    host_config = [HostConfig(user=args["user"], port=p, private_key=args["key"]) for p in ports]
    return ParallelSSHClient(hosts, host_config=host_config, **kwargs)


def parallel(args):
    client = make_parallel_client(args)
    output = client.run_command(args["command"])
    order = list(reversed(output)) if args.get("reverse") else list(output)
    counted = {}
    for host_out in order:
        nlines, last = 0, None
        for line in host_out.stdout:
            nlines += 1
            last = line
        counted[id(host_out)] = (nlines, last)
    client.join(output)
    return [counted[id(ho)] + (ho.exit_code,) for ho in output]


class Rounds:
    """Connections opened once (``connect_auth``), then each round ``run_command`` + ``join``
    and the exit codes."""

    def __init__(self, args):
        self.client = make_parallel_client(args)
        for greenlet in self.client.connect_auth():
            greenlet.get()  # raises the host's connect/auth error

    def run(self, command):
        output = self.client.run_command(command)
        self.client.join(output)
        return [(None, host_out.exit_code) for host_out in output]

    def close(self):
        close = getattr(self.client, "close", None)  # parallel-ssh 2.16 has none
        if close is not None:
            close()


def idle(args, started):
    """run_command returns once the command runs on every host; then only join."""
    client = make_parallel_client(args)
    output = client.run_command(args["command"])
    started()
    client.join(output)
    return [(None, host_out.exit_code) for host_out in output]


def info():
    """Which backend our pssh runs on (parallel-ssh has no such notion)."""
    try:
        from pssh.core.backend import backend_name
    except ImportError:
        return {}
    return {"backend": backend_name()}


# -- file transfer workloads (issue 4): parallel copy methods with per-host copy_args --------

def transfer(args, jobs):
    import gevent
    client = make_parallel_client(args)
    upload, sftp = args["direction"] == "upload", args["protocol"] == "sftp"
    if sftp:
        copy_args = [{"dst": dst} for _i, _h, _p, _src, dst in jobs]
        method = client.copy_file if upload else client.copy_remote_file
        greenlets = method(args["source"], "%(dst)s", copy_args=copy_args)
    elif upload:
        greenlets = client.scp_send(args["source"], "-", copy_args=[
            {"local_file": src, "remote_file": dst} for _i, _h, _p, src, dst in jobs])
    else:
        greenlets = client.scp_recv(args["source"], "-", copy_args=[
            {"local_file": dst, "remote_file": src} for _i, _h, _p, src, dst in jobs])
    gevent.joinall(greenlets, raise_error=True)


import _transfer  # noqa: E402
_transfer.register(transfer)


# -- through one bastion (issue 5): the client's proxy_host/... options ------------------------

def bastion(args, via):
    """``ParallelSSHClient(hosts, proxy_host=..., proxy_port=..., proxy_user=..., proxy_pkey=...)``
    (ours shares one bastion connection; parallel-ssh 2.16 opens one per target, served by its
    forwarding thread), ``run_command``, every line read, ``join``, ``close()`` where there is one
    (parallel-ssh 2.16 has none). ``via`` None: the same without proxy options."""
    proxy = {} if via is None else dict(proxy_host=via["host"], proxy_port=via["port"],
                                        proxy_user=via["user"], proxy_pkey=via["key"])
    client = make_parallel_client(args, **proxy)
    output = client.run_command(args["command"])
    counted = []
    for host_out in output:
        nlines, last = 0, None
        for line in host_out.stdout:
            nlines += 1
            last = line
        counted.append((nlines, last))
    client.join(output)
    results = [c + (ho.exit_code,) for c, ho in zip(counted, output)]
    close = getattr(client, "close", None)
    if close is not None:
        close()
    return results


import _bastion  # noqa: E402
_bastion.register(bastion)


if __name__ == "__main__":
    sys.exit(main(single, parallel, library=pssh, dists=("parallel-ssh",), info=info,
                  rounds=Rounds, idle=idle))
