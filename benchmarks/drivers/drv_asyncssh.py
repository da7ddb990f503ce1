"""Driver for asyncssh: ``conn.run(cmd)`` then ``result.stdout.splitlines()``; hosts in parallel
with ``asyncio.gather`` (one event loop for the whole driver run)."""
import asyncio
import sys

import asyncssh

from _common import main

LOOP = asyncio.new_event_loop()


def _connect(args, host, port, **extra):
    return asyncssh.connect(host, port=port, username=args["user"], client_keys=[args["key"]],
                            known_hosts=None, agent_path=None, **extra)


async def _run_one(args, host, port):
    async with _connect(args, host, port) as conn:
        result = await conn.run(args["command"])
        return result.stdout.splitlines(), result.exit_status


def single(args, host, port):
    return LOOP.run_until_complete(_run_one(args, host, port))


async def _run_all(args):
    pairs = list(zip(args["hosts"], args["ports"]))
    tasks = [_run_one(args, h, p) for h, p in pairs]
    results = await asyncio.gather(*tasks)
    order = range(len(results) - 1, -1, -1) if args.get("reverse") else range(len(results))
    out = [None] * len(results)
    for i in order:
        lines, code = results[i]
        nlines, last = 0, None
        for line in lines:
            nlines += 1
            last = line
        out[i] = (nlines, last, code)
    return out


def parallel(args):
    return LOOP.run_until_complete(_run_all(args))


class Rounds:
    """Connections opened once (gather of connects), then each round a gather of ``conn.run``."""

    def __init__(self, args):
        pairs = list(zip(args["hosts"], args["ports"]))

        async def connect_all():
            return await asyncio.gather(*[_connect(args, h, p) for h, p in pairs])
        self.conns = LOOP.run_until_complete(connect_all())

    def run(self, command):
        async def run_all():
            return await asyncio.gather(*[conn.run(command) for conn in self.conns])
        return [(r.stdout.splitlines(), r.exit_status) for r in LOOP.run_until_complete(run_all())]

    def close(self):
        async def close_all():
            for conn in self.conns:
                conn.close()
            await asyncio.gather(*[conn.wait_closed() for conn in self.conns])
        LOOP.run_until_complete(close_all())


def idle(args, started):
    """gather(connect + create_process) on every host, started(), gather(process.wait())."""
    async def start_one(host, port):
        conn = await _connect(args, host, port)
        return conn, await conn.create_process(args["command"])

    async def run_all():
        pairs = list(zip(args["hosts"], args["ports"]))
        started_procs = await asyncio.gather(*[start_one(h, p) for h, p in pairs])
        started()
        done = await asyncio.gather(*[proc.wait() for _conn, proc in started_procs])
        for conn, _proc in started_procs:
            conn.close()
        return [(r.stdout.splitlines(), r.exit_status) for r in done]

    return LOOP.run_until_complete(run_all())


# -- file transfer workloads (issue 4): start_sftp_client put/get, asyncssh.scp ---------------

async def _transfer_one(args, host, port, src, dst):
    upload = args["direction"] == "upload"
    async with _connect(args, host, port) as conn:
        if args["protocol"] == "sftp":
            async with conn.start_sftp_client() as sftp:
                await (sftp.put(src, dst) if upload else sftp.get(src, dst))
        elif upload:
            await asyncssh.scp(src, (conn, dst))
        else:
            await asyncssh.scp((conn, src), dst)


def transfer(args, jobs):
    async def run_all():
        await asyncio.gather(*[_transfer_one(args, h, p, s, d) for _i, h, p, s, d in jobs])
    LOOP.run_until_complete(run_all())


import _transfer  # noqa: E402
_transfer.register(transfer)


# -- through one bastion (issue 5): one bastion connection, tunnel=bastion for every target ----

def bastion(args, via):
    """``bastion = await asyncssh.connect(...)``, then gather(``asyncssh.connect(host,
    tunnel=bastion)`` + ``conn.run`` + close) over the targets, then the bastion is closed.
    ``via`` None: the same without a tunnel."""
    async def one(host, port, tunnel):
        extra = {} if tunnel is None else {"tunnel": tunnel}
        async with _connect(args, host, port, **extra) as conn:
            result = await conn.run(args["command"])
        lines = result.stdout.splitlines()
        return len(lines), lines[-1] if lines else None, result.exit_status

    async def run_all():
        tunnel = None
        if via is not None:
            tunnel = await asyncssh.connect(via["host"], port=via["port"], username=via["user"],
                                            client_keys=[via["key"]], known_hosts=None,
                                            agent_path=None)
        try:
            return await asyncio.gather(*[one(h, p, tunnel)
                                          for h, p in zip(args["hosts"], args["ports"])])
        finally:
            if tunnel is not None:
                tunnel.close()
                await tunnel.wait_closed()

    return LOOP.run_until_complete(run_all())


import _bastion  # noqa: E402
_bastion.register(bastion)


if __name__ == "__main__":
    sys.exit(main(single, parallel, library=asyncssh, rounds=Rounds, idle=idle))
