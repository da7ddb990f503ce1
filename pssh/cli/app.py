"""The ``pssh`` command (click): ``pssh run``, ``pssh copy``, ``pssh fetch``.

Every subcommand takes the host and connection options; ``--help`` shows them (``-h`` is the
host file, as in the classic pssh).
"""
from typing import Callable, List, Optional

import click

from pssh.exceptions import PSSHError
from pssh.hostkeys import POLICIES

from pssh.cli import results as outcome
from pssh.cli.hosts import HostSpec, HostSpecError, host_labels, parse_host_specs, \
    read_host_file, unique
from pssh.cli.options import OptionError, client_kwargs, ssh_extra_args
from pssh.cli.output import FileOutput, FoldOutput, InlineOutput, JsonOutput, \
    report_failure, unsafe_file_name
from pssh.cli.progress import make_progress
from pssh.cli.results import HostResult, exit_status, summary_lines
from pssh.cli.run import quiet_expected_errors, run_on_hosts
from pssh.cli.sharded import copy_sharded, fetch_sharded, make_sharded_client, run_sharded
from pssh.cli.transfer import copy_to_hosts, fetch_from_hosts

__all__ = ["cli"]

CONTEXT = {"help_option_names": ["--help"], "max_content_width": 100}


def _connection_options(command: Callable) -> Callable:
    """The host and connection options shared by every subcommand."""
    options = [
        click.option("-H", "--host", "host_args", multiple=True, metavar="HOSTS",
                     help="Target hosts: [user@]host[:port], folded ranges "
                          "(web[01-20].example.com, 10.0.0.[1-254]), comma or space "
                          "separated. Repeatable."),
        click.option("-h", "--hosts", "host_files", multiple=True, metavar="FILE",
                     help="Host file: host specs as for -H, one or more a line, # comments; "
                          "'-' reads standard input. Repeatable."),
        click.option("-l", "--user", help="Login user (default: the local user)."),
        click.option("-p", "--port", type=click.IntRange(1, 65535), help="Port (default 22)."),
        click.option("-i", "--identity", "pkey", metavar="KEYFILE",
                     help="Private key file (then the only method tried)."),
        click.option("-A", "--ask-pass", is_flag=True,
                     help="Prompt for a password (also the key's passphrase)."),
        click.option("-J", "--jump", "proxy_jump", metavar="[user@]host[:port][,...]",
                     help="Jump host chain (OpenSSH ProxyJump)."),
        click.option("-F", "--ssh-config", metavar="FILE",
                     help="Read this OpenSSH client config file (~/.ssh/config is not read "
                          "otherwise)."),
        click.option("-O", "--option", "ssh_options", multiple=True, metavar="KEY=VALUE",
                     help="OpenSSH option the library reads (Port, User, ConnectTimeout, "
                          "StrictHostKeyChecking, ProxyJump, ...); others are refused."),
        click.option("-x", "--extra-args", "extra_args", multiple=True, metavar="ARGS",
                     help="ssh command line arguments: -o, -p, -l, -i, -J, -F, -C, -A."),
        click.option("-t", "--timeout", type=click.FloatRange(min=0, min_open=True),
                     help="Seconds for each connect attempt and each later operation "
                          "(default: 60 s to connect, no limit after)."),
        click.option("--retries", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Connection attempts per host."),
        click.option("-P", "--parallel", "pool_size", type=click.IntRange(min=1),
                     default=100, show_default=True, help="Hosts handled at once."),
        click.option("--host-key-policy", type=click.Choice(POLICIES),
                     help="Host key check (default accept-unknown)."),
        click.option("--known-hosts", multiple=True, metavar="FILE",
                     help="known_hosts file (repeatable; default ~/.ssh/known_hosts)."),
        click.option("--no-agent", is_flag=True, help="Do not use the SSH agent."),
        click.option("--shards", type=click.IntRange(min=1), metavar="N",
                     help="Spread the hosts over N local processes (pssh.sharded)."),
        click.option("--dask", "dask_address", metavar="ADDRESS",
                     help="Spread the hosts over the workers of this Dask scheduler."),
        click.option("--progress/--no-progress", default=None,
                     help="Live progress display (default: on when output is a terminal)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _targets(host_args, host_files) -> List[HostSpec]:
    specs = []
    try:
        for path in host_files:
            specs.extend(read_host_file(path))
        for text in host_args:
            specs.extend(parse_host_specs(text))
    except HostSpecError as exc:
        raise click.UsageError(str(exc)) from None
    if not specs:
        raise click.UsageError("no hosts: give -H HOSTS or -h FILE")
    return unique(specs)


def _ask_password() -> str:
    try:
        return click.prompt("Password", hide_input=True, err=True)
    except click.Abort as exc:
        # click turns both Ctrl-C and end of input into Abort; nothing ran either way
        if isinstance(exc.__context__, EOFError):
            raise click.UsageError("-A: no password given (end of input)") from None
        click.echo("pssh: interrupted", err=True)
        raise SystemExit(outcome.EXIT_INTERRUPTED) from None


def _make_client(specs, params):
    """The ParallelSSHClient, or with --shards/--dask the ShardedClient, for these options
    (imported late: ``--help`` stays fast)."""
    from pssh.parallel import ParallelSSHClient
    shards, dask_address = params.pop("shards"), params.pop("dask_address")
    extra = {"ssh_options": []}
    try:
        for text in params["extra_args"]:
            found = ssh_extra_args(text)
            extra["ssh_options"].extend(found.pop("ssh_options"))
            extra.update(found)
        password = None
        if params["ask_pass"]:
            password = _ask_password()

        def pick(name):
            value = params.get(name)
            return value if value is not None else extra.get(name)

        port = pick("port")
        kwargs = client_kwargs(
            specs, user=pick("user"), port=None if port is None else int(port),
            pkey=pick("pkey"), password=password, proxy_jump=pick("proxy_jump"),
            timeout=params["timeout"], num_retries=params["retries"],
            pool_size=params["pool_size"], host_key_policy=params["host_key_policy"],
            known_hosts=params["known_hosts"], ssh_config=pick("ssh_config"),
            ssh_options=list(params["ssh_options"]) + extra["ssh_options"],
            allow_agent=not params["no_agent"],
            identity_auth=True, compress=bool(extra.get("compress")),
            forward_agent=bool(extra.get("forward_agent")))
        hosts = [spec.host for spec in specs]
        if shards or dask_address:
            return make_sharded_client(hosts, shards, dask_address, kwargs)
        return ParallelSSHClient(hosts, **kwargs)
    except (OptionError, ValueError, TypeError) as exc:
        raise click.UsageError(str(exc)) from None
    except PSSHError as exc:
        raise click.UsageError(outcome.describe_error(exc)) from None


def _setup(params):
    """Targets, their results (in host order), the client and whether it is sharded."""
    specs = _targets(params.pop("host_args"), params.pop("host_files"))
    labels = host_labels(specs)
    results = [HostResult(label, spec.host) for label, spec in zip(labels, specs)]
    sharded = bool(params["shards"] or params["dask_address"])
    quiet_expected_errors()
    return results, _make_client(specs, params), sharded


def _finish(client, results, completed: bool, verb: str) -> None:
    client.close()
    for line in summary_lines(results, verb):
        click.echo(line, err=True)
    status = exit_status(results)
    if not completed:
        status = outcome.EXIT_INTERRUPTED
    raise SystemExit(status)


def _check_file_names(results, what):
    for result in results:
        if unsafe_file_name(result.label):
            raise click.UsageError("host %r cannot name a file in %s" % (result.label, what))


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="pssh", message="pssh %(version)s")
def cli():
    """Run commands on many hosts over SSH, and copy files to and from them.

    \b
    Exit status: 0 all hosts ok; 1 some host's command exited non-zero or a host's
    transfer failed; 2 usage error; 3 some host unreachable (connection, name,
    authentication or host key refused) or timed out; 130 interrupted (Ctrl-C).
    """


@cli.command(context_settings=CONTEXT)
@click.argument("command", nargs=-1, required=True)
@click.option("--inline", "mode", flag_value="inline", default=True,
              help="Print 'host: line' as lines arrive (default).")
@click.option("--fold", "mode", flag_value="fold",
              help="Print identical outputs once under the folded set of hosts (clush -b).")
@click.option("--json", "mode", flag_value="json",
              help="Print one JSON object per host per line when it finishes.")
@click.option("--outdir", metavar="DIR", help="Also write each host's stdout to DIR/<host>.")
@click.option("--errdir", metavar="DIR", help="Also write each host's stderr to DIR/<host>.")
@click.option("--idle-timeout", type=click.FloatRange(min=0, min_open=True),
              help="Seconds without output after which a host counts as timed out.")
@click.option("--command-timeout", type=click.FloatRange(min=0, min_open=True),
              help="Seconds each host's output may take in all (then timed out).")
@click.option("--pty", is_flag=True, help="Request a pseudo-terminal (the remote command "
                                          "then ends when pssh disconnects).")
@_connection_options
def run(command, mode, outdir, errdir, idle_timeout, command_timeout, pty, **params):
    """Run COMMAND on every host."""
    progress_mode = params.pop("progress")
    results, client, sharded = _setup(params)
    modes = [{"inline": InlineOutput, "fold": FoldOutput, "json": JsonOutput}[mode]()]
    if outdir or errdir:
        _check_file_names(results, "--outdir/--errdir")
        modes.append(FileOutput(outdir, errdir))
    progress = make_progress(progress_mode, "run", results)
    run = run_sharded if sharded else run_on_hosts
    completed = run(client, results, " ".join(command), modes, progress, use_pty=pty,
                    idle_timeout=idle_timeout, read_timeout=command_timeout)
    _finish(client, results, completed, "ran on")


@cli.command(context_settings=CONTEXT)
@click.argument("source", type=click.Path(exists=True))
@click.argument("destination")
@click.option("-r", "--recursive", is_flag=True, help="Copy a directory tree.")
@click.option("--scp", is_flag=True, help="Use SCP instead of SFTP.")
@_connection_options
def copy(source, destination, recursive, scp, **params):
    """Copy local SOURCE to DESTINATION on every host."""
    _transfer(params, "copy", copy_sharded, copy_to_hosts, "copied to", source, destination,
              recursive, scp)


@cli.command(context_settings=CONTEXT)
@click.argument("source")
@click.argument("destdir", type=click.Path(file_okay=False))
@click.option("-r", "--recursive", is_flag=True, help="Fetch a directory tree.")
@click.option("--scp", is_flag=True, help="Use SCP instead of SFTP.")
@_connection_options
def fetch(source, destdir, recursive, scp, **params):
    """Fetch SOURCE from every host into DESTDIR/<host>/."""
    _transfer(params, "fetch", fetch_sharded, fetch_from_hosts, "fetched from", source,
              destdir, recursive, scp, check_names="DESTDIR")


def _transfer(params, kind, on_shards, on_hosts, done, source, target, recursive, scp,
              check_names=None):
    progress_mode = params.pop("progress")
    results, client, sharded = _setup(params)
    if check_names:
        _check_file_names(results, check_names)
    progress = make_progress(progress_mode, kind, results, count_bytes=not sharded,
                             plain_lines=True)
    transfer = on_shards if sharded else on_hosts
    completed = transfer(client, results, source, target, progress, recursive, scp)
    for result in results:
        report_failure(result)
    _finish(client, results, completed, done)


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of the ``pssh`` console script and ``python -m pssh``."""
    cli.main(args=argv, prog_name="pssh")
