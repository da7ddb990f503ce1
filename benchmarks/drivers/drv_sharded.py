"""Driver of the ``sharded`` workloads (issue 12): one pssh process, 2 local shards, 2 Dask
workers, chosen by ``PSSH_BENCH_SHARDING`` (``one``, ``local:N``, ``dask:N``).

Client CPU counts every process of the client: this one, its live children (shard processes,
Dask nanny and worker processes, read from /proc/<pid>/schedstat) and reaped ones
(``RUSAGE_CHILDREN``). Starting and stopping the shards (process spawn, imports, Dask
cluster) is measured apart: ``run_wall``/``run_cpu`` cover the command only, ``startup_*``
and the harness's ``wall``/``cpu`` cover everything.
"""
import os
import resource
import sys
import time

import gevent
import pssh
from pssh.parallel import ParallelSSHClient
from pssh.sharded import ShardedClient
from pssh.sharded.records import collect_output

import _common
from _common import CheckError, main

sys.path.insert(0, os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] or ".")
from embedded_server.proctree import descendants  # noqa: E402


def _variant():
    kind, _, count = os.environ.get("PSSH_BENCH_SHARDING", "one").partition(":")
    return kind, int(count or 1)


def _options(args):
    ports = args["ports"]
    if len(set(ports)) != 1:
        raise ValueError("the sharded driver expects one port for every host")
    return dict(user=args["user"], pkey=args["key"], port=ports[0], num_retries=1,
                timeout=120, allow_agent=False, identity_auth=False)


def tree_cpu():
    """CPU seconds of this process and every descendant, live or reaped."""
    total = sum(_common._proc_cpu(pid) for pid in descendants(os.getpid()))
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def tree_rss_kb():
    """Resident memory of this process and its live descendants now (kB)."""
    total = 0
    for pid in [os.getpid()] + descendants(os.getpid()):
        try:
            with open("/proc/%d/status" % pid) as status:
                total += next(int(line.split()[1]) for line in status
                              if line.startswith("VmRSS:"))
        except (OSError, StopIteration, ValueError):
            pass
    return total


class Client:
    """The variant's client over ``args["hosts"]``: ``run(command)`` returns one record per
    host (:class:`pssh.sharded.HostResult`); every line is read, ``args["output_cap"]``
    characters kept. One process builds its records with the very function the shards use
    (``collect_output``), so both do the same work per line. Connections stay open."""

    def __init__(self, args):
        self.kind, count = _variant()
        self.cluster = self.dask = None
        self.cap = args.get("output_cap")
        hosts = args["hosts"]
        if self.kind == "one":
            self.client = ParallelSSHClient(hosts, pool_size=max(10, len(hosts)),
                                            **_options(args))
            return
        if self.kind == "dask":
            import dask
            import distributed
            from pssh.sharded import LEAN_DASK_CONFIG
            # the settings README recommends for a cluster running pssh shards
            with dask.config.set(LEAN_DASK_CONFIG):
                self.cluster = distributed.LocalCluster(
                    n_workers=count, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address=None, worker_dashboard_address=None, silence_logs=40,
                    # the scheduler serves HTTP even without a dashboard (8787 by default)
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
            self.dask = distributed.Client(self.cluster)
            self.client = ShardedClient(hosts, executor=self.dask, output_cap=self.cap,
                                        **_options(args))
        else:
            self.client = ShardedClient(hosts, shards=count, output_cap=self.cap,
                                        **_options(args))
            self.client.shard_pids  # noqa: B018 - waits until every shard process runs

    def run(self, command):
        if self.kind != "one":
            return self.client.run_command(command)
        # one reader greenlet per host, as in a shard (pssh.sharded.shard)
        output = self.client.run_command(command, stop_on_errors=False)
        readers = [gevent.spawn(collect_output, index, host_out, self.cap, None,
                                lambda out=host_out: self.client.join([out]))
                   for index, host_out in enumerate(output)]
        gevent.joinall(readers)
        return [reader.get() for reader in readers]

    def close(self):
        self.client.close()
        if self.dask is not None:
            self.dask.close()
            self.cluster.close()


def _own_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def parallel(args):
    """connect_echo_N: start the shards, run the command once on every host, stop."""
    c0, t0 = tree_cpu(), time.perf_counter()
    client = Client(args)
    c1, t1 = tree_cpu(), time.perf_counter()
    own1 = _own_cpu()
    rss_started = tree_rss_kb()
    try:
        records = client.run(args["command"])
        c2, t2 = tree_cpu(), time.perf_counter()
        own2 = _own_cpu()
        rss_open = tree_rss_kb()  # every connection still open
    finally:
        client.close()
    hosts = len(args["hosts"])
    _common.EXTRA_RESULT.update(
        startup_wall=t1 - t0, startup_cpu=c1 - c0, run_wall=t2 - t1, run_cpu=c2 - c1,
        run_cpu_per_host_ms=1000.0 * (c2 - c1) / hosts, hosts_per_s=hosts / (t2 - t1),
        # this process (with Dask: the scheduler, the nannies and the Dask client too)
        run_cpu_driver=own2 - own1,
        rss_kb_connections_open=rss_open, rss_kb_after_startup=rss_started,
        sharding=os.environ.get("PSSH_BENCH_SHARDING", "one"))
    return [(len(r.stdout), r.stdout[-1] if r.stdout else repr(r.exception), r.exit_code)
            for r in records]


class Rounds:
    """Connections opened once, then rounds of the command with every line read and returned
    (in records for the sharded variants): the client is the bottleneck."""

    def __init__(self, args):
        self.truncated = args.get("output_cap") is not None
        self.client = Client(args)
        failed = [r.exception for r in self.client.run("true") if not r.ok]
        if failed:
            raise CheckError("connect: %r" % (failed[:3],))
        # live shard processes count in every round's CPU (_common.cpu_seconds)
        _common.TRACKED_CHILDREN.update(descendants(os.getpid()))

    def run(self, command):
        records = self.client.run(command)
        for r in records:
            # read to the end (exit code known), the first lines kept, the rest cut
            if not r.ok or r.stdout[:2] != ("1", "2") or r.truncated != self.truncated:
                raise CheckError("%r" % (r,))
        return [(None, r.exit_code) for r in records]

    def close(self):
        _common.TRACKED_CHILDREN.clear()
        self.client.close()


def single(args, host, port):
    raise CheckError("the sharded driver has no latency mode")


def info():
    from pssh.core.backend import backend_name
    return {"backend": backend_name(), "sharding": os.environ.get("PSSH_BENCH_SHARDING", "one")}


if __name__ == "__main__":
    sys.exit(main(single, parallel, library=pssh, info=info, rounds=Rounds))
