"""The demo: run a command on many hosts (embedded OpenSSH servers on loopback) with pssh,
first through the library, then with the ``pssh`` command line.

    python ci/demo.py --hosts 100 --command 'uname -n; echo "load: $(cut -d" " -f1 /proc/loadavg)"'
"""
import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from embedded_server import ServerFarm, make_user_key  # noqa: E402

import pssh  # noqa: E402
from pssh.cli.hosts import fold  # noqa: E402
from pssh.clients import ParallelSSHClient  # noqa: E402

CLI_COMMAND = "uname -s"


def pssh_script():
    """The installed console script, else ``python -m pssh``."""
    script = os.path.join(os.path.dirname(sys.executable), "pssh")
    return [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "pssh"]


def cli_demo(farm, key):
    """The same servers through the command line: identical outputs folded (as clush -b)."""
    command = pssh_script() + ["run", "--fold", "-H", fold(farm.hosts), "-l", farm[0].user,
                               "-p", str(farm.port), "-i", key.private, "--no-agent",
                               CLI_COMMAND]
    print("\n$ pssh %s" % " ".join(shlex.quote(word) for word in command[-12:]))
    sys.stdout.flush()
    return subprocess.run(command, stdin=subprocess.DEVNULL, timeout=120).returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100, help="number of hosts (default 100)")
    parser.add_argument("--servers", type=int, default=None,
                        help="sshd servers to start (default: one per host, at most 100)")
    parser.add_argument("--command", default='echo "hello from $(echo $SSH_CONNECTION | '
                        'cut -d" " -f3)"; exit $((RANDOM % 2))')
    args = parser.parse_args()
    servers = args.servers or min(args.hosts, 100)
    workdir = tempfile.mkdtemp(prefix="pssh-demo-")
    key = make_user_key(workdir)
    started = time.monotonic()
    with ServerFarm(servers, authorized_keys=[key.public], shared_host_key=True) as farm:
        farm_ready = time.monotonic()
        hosts = [farm.hosts[i % servers] for i in range(args.hosts)]
        print("%d sshd servers on %s..%s port %d ready in %.2f s (pssh %s, %s backend)" % (
            servers, farm.hosts[0], farm.hosts[-1], farm.port, farm_ready - started,
            pssh.__version__, pssh.backend_name()))
        client = ParallelSSHClient(hosts, user=farm[0].user, port=farm.port, pkey=key.private,
                                   num_retries=1,
                                   timeout=30, pool_size=max(100, args.hosts))
        begin = time.monotonic()
        output = client.run_command(args.command, stop_on_errors=False)
        client.join()
        elapsed = time.monotonic() - begin
        failures = 0
        for host_out in output:
            if host_out.exception is not None:
                failures += 1
                print("%-12s FAILED: %s" % (host_out.host, host_out.exception))
                continue
            lines = list(host_out.stdout) + ["[err] " + line for line in host_out.stderr]
            print("%-12s exit=%s  %s" % (host_out.host, host_out.exit_code, " | ".join(lines)))
        client.close()
        print("ran on %d hosts in %.2f s (%d failed)" % (len(hosts), elapsed, failures))
        cli_status = cli_demo(farm, key)
        print("pssh exit status: %d" % cli_status)
    return 1 if failures or cli_status else 0


if __name__ == "__main__":
    sys.exit(main())
