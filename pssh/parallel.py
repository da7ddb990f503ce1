"""ParallelSSHClient: one SSHClient per host position, driven by a gevent pool."""
import logging
import resource
import sys
from time import monotonic

import gevent
from gevent import Timeout as GeventTimeout
from gevent.pool import Pool

from pssh.constants import DEFAULT_RETRIES, RETRY_DELAY
from pssh import hostkeys, openssh_config
from pssh.exceptions import (
    HostArgumentError, HostConfigError, InvalidAPIUseError, ResourceLimitError, ShellError,
    Timeout)
from pssh.output import DEFAULT_MAX_UNREAD_OUTPUT, HostOutput
from pssh.core.greenlets import spawn_joined
from pssh.transfer.parallel import ParallelTransferMixin
from pssh.connection.agent_forward import check_forwarding_request
from pssh.connection.connect import read_private_key
from pssh.connection.settings import NAMES, PARALLEL_DEFAULTS, ConnectSettings, validate_pkey
from pssh.single import SSHClient

__all__ = ["ParallelSSHClient", "logger"]

logger = logging.getLogger(__name__)

# Each connection holds one socket; keep headroom for files, pipes and the hub.
_FDS_PER_HOST = 1
_FD_HEADROOM = 64

class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


def _validate_hosts(hosts):
    if hosts is None:
        raise ValueError("hosts must not be None")
    if isinstance(hosts, (str, bytes)):
        raise TypeError("hosts must be a list or other iterable of host names, not a string: "
                        "use [%r]" % (hosts,))
    return list(hosts)


def raise_fd_limit(wanted):
    """Raise RLIMIT_NOFILE's soft limit towards ``wanted``; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def _client_class():
    # 2.x user tests patch pssh.clients.native.parallel.SSHClient to change what the parallel
    # client builds. Patching imports that module, so it is read from sys.modules on each build
    # (an import here would close a circle: that module re-exports this one).
    module = sys.modules.get("pssh.clients.native.parallel")
    return module.SSHClient if module is not None else SSHClient


def _host_commands(command, host_args, host_count):
    """Each host's command, formatted in host order before anything starts.

    The checks come in 2.x's order: host *i*'s formatting error (``TypeError``/``KeyError``)
    is raised as it is before a missing entry for a later host is reported as
    :class:`HostArgumentError`; unlike 2.x no host's command has started when either is raised.
    """
    if not host_args:
        return [command] * host_count
    commands = []
    for index in range(host_count):
        if index >= len(host_args):
            raise HostArgumentError("Number of host arguments (%s) is less than the number of "
                                    "hosts (%s)", len(host_args), host_count)
        commands.append(command % host_args[index])
    return commands


class ParallelSSHClient(ParallelTransferMixin):
    """Runs commands on many hosts at once; see README.rst for the options."""

    def __init__(self, hosts, user=None, password=None, port=22, pkey=None,
                 num_retries=DEFAULT_RETRIES, timeout=None, pool_size=100, allow_agent=True,
                 host_config=None, retry_delay=RETRY_DELAY, proxy_host=None, proxy_port=None,
                 proxy_user=None, proxy_password=None, proxy_pkey=None,
                 forward_ssh_agent=False, keepalive_seconds=60, identity_auth=True,
                 ipv6_only=False, compress=False, keyboard_interactive=False,
                 host_key_policy=None, known_hosts=None, ssh_config=None, proxy_jump=None,
                 agent=None, cert_file=None, max_unread_output=DEFAULT_MAX_UNREAD_OUTPUT):
        if keyboard_interactive and password is None:
            raise InvalidAPIUseError("keyboard_interactive=True requires a password")
        if forward_ssh_agent:
            check_forwarding_request(agent)
        # Host keys and OpenSSH config: per-host HostConfig > explicit arguments > file.
        self.host_key_policy = None if host_key_policy is None else \
            hostkeys.validate_policy(host_key_policy)
        self.known_hosts = None if known_hosts is None else \
            list(hostkeys.known_hosts_files(known_hosts))
        self.ssh_config = ssh_config
        self._ssh_config = openssh_config.resolve(ssh_config)
        self._hosts = _validate_hosts(hosts)
        if host_config is not None:
            if not isinstance(host_config, list):
                # The type itself, as 2.x put it in args[1].
                raise HostConfigError("host_config must be a list of HostConfig, got %s",
                                      type(host_config))
            if len(host_config) != len(self._hosts):
                raise ValueError("host_config has %s entries for %s hosts"
                                 % (len(host_config), len(self._hosts)))
        self.user = user
        self.password = password
        self.port = port
        self.pkey = validate_pkey(pkey)
        self.num_retries = num_retries
        self.timeout = timeout
        self.pool_size = pool_size
        self.pool = Pool(size=pool_size)
        self.allow_agent = allow_agent
        self.host_config = host_config
        self.retry_delay = retry_delay
        self.proxy_host = proxy_host
        self.proxy_port = proxy_port
        self.proxy_user = proxy_user
        self.proxy_password = proxy_password
        self.proxy_pkey = validate_pkey(proxy_pkey)
        self.forward_ssh_agent = forward_ssh_agent
        self.keepalive_seconds = keepalive_seconds
        self.identity_auth = identity_auth
        self.ipv6_only = ipv6_only
        self.compress = compress
        self.keyboard_interactive = keyboard_interactive
        self.cert_file = cert_file
        self.max_unread_output = max_unread_output
        self.gssapi_auth = False
        self.gssapi_server_identity = None
        self.gssapi_client_identity = None
        self.gssapi_delegate_credentials = False
        self.cmds = None
        self.proxy_jump = proxy_jump
        self.agent = agent
        self._host_clients = {}
        self._check_fd_limit()

    # hosts -------------------------------------------------------------------

    @property
    def hosts(self):
        return self._hosts

    @hosts.setter
    def hosts(self, value):
        new_hosts = _validate_hosts(value)
        keep = set(enumerate(new_hosts))
        for key in list(self._host_clients):
            if key not in keep:
                del self._host_clients[key]
        self._hosts = new_hosts
        self._check_fd_limit()

    def _check_fd_limit(self):
        wanted = min(self.pool_size, max(len(self._hosts), 1)) * _FDS_PER_HOST + _FD_HEADROOM
        soft = raise_fd_limit(wanted)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            raise ResourceLimitError(
                "Open-file limit %s is too low for %s concurrent connections (pool_size %s); "
                "raise 'ulimit -n' (hard limit) to at least %s or lower pool_size",
                soft, min(self.pool_size, len(self._hosts)), self.pool_size, wanted)

    # per-host clients --------------------------------------------------------

    def _host_settings(self, index):
        given = {name: getattr(self, name) for name in NAMES if hasattr(self, name)}
        config = self.host_config[index] if self.host_config is not None else None
        settings = ConnectSettings.build(
            self._hosts[index], given, host_config=config, ssh_config=self._ssh_config,
            defaults=PARALLEL_DEFAULTS, identities=SSHClient.IDENTITIES,
            default_connect_timeout=SSHClient.DEFAULT_CONNECT_TIMEOUT)
        if isinstance(settings.pkey, str):
            # As 2.x: each host's client gets the key's bytes (its .pkey), read once per
            # file version (read_private_key caches them).
            settings.pkey = read_private_key(settings.pkey)
        return settings

    def _make_client(self, index, host):
        key = (index, host)
        client = self._host_clients.get(key)
        if client is None or client.closed:
            client = _client_class()(host, _settings=self._host_settings(index),
                                     max_unread_output=self.max_unread_output)
            self._host_clients[key] = client
        return client

    def _idle_timeout(self, index):
        config = self.host_config[index] if self.host_config is not None else None
        return getattr(config, "idle_timeout", None)

    # commands ----------------------------------------------------------------

    def run_command(self, command, sudo=False, user=None, stop_on_errors=True, use_pty=False,
                    host_args=None, shell=None, encoding="utf-8", read_timeout=None,
                    idle_timeout=None):
        """Start ``command`` on every host; returns a list of HostOutput in host order."""
        commands = _host_commands(command, host_args, len(self._hosts))
        greenlets = []
        for index, host in enumerate(self._hosts):
            greenlets.append(self.pool.spawn(
                self._run_on_host, index, host, commands[index], sudo, user, use_pty, shell,
                encoding, read_timeout, idle_timeout or self._idle_timeout(index)))
        self.cmds = greenlets
        gevent.joinall(greenlets)
        return self._collect(greenlets, stop_on_errors)

    def _run_on_host(self, index, host, command, sudo, user, use_pty, shell, encoding,
                     read_timeout, idle_timeout):
        # Failures are returned, not raised, so that gevent does not print a
        # traceback for every failed host; _collect turns them back into errors.
        try:
            client = self._make_client(index, host)
            return client.run_command(command, sudo=sudo, user=user, use_pty=use_pty,
                                      shell=shell, encoding=encoding, read_timeout=read_timeout,
                                      idle_timeout=idle_timeout)
        except Exception as exc:  # noqa: BLE001 - re-raised or recorded by _collect
            return _Failure(exc)

    def _collect(self, greenlets, stop_on_errors):
        outputs = []
        for index, greenlet in enumerate(greenlets):
            try:
                result = greenlet.get()
                if result.__class__ is _Failure:
                    raise result.exc
                outputs.append(result)
            except GeventTimeout:
                exc = Timeout("Timed out starting the command on host %s", self._hosts[index],
                              host=self._hosts[index])
                if stop_on_errors:
                    raise exc from None
                outputs.append(self._error_output(index, exc))
            except Exception as exc:  # noqa: BLE001 - recorded per host
                if stop_on_errors:
                    raise
                outputs.append(self._error_output(index, exc))
        return outputs

    def _error_output(self, index, exc):
        host = self._hosts[index] if index < len(self._hosts) else getattr(exc, "host", None)
        config = self.host_config[index] if self.host_config is not None else None
        return HostOutput(host, None, None, None, alias=getattr(config, "alias", None),
                          exception=exc)

    def get_last_output(self, cmds=None):
        """Outputs of the last run_command (failed hosts carry their exception)."""
        cmds = self.cmds if cmds is None else cmds
        if cmds is None:
            return None
        return self._collect(cmds, stop_on_errors=False)

    def connect_auth(self):
        """Connect and authenticate every host; returns the greenlets (values: SSHClient)."""
        return [spawn_joined(self.pool, self._make_client, index, host)
                for index, host in enumerate(self._hosts)]

    def finished(self, output=None):
        """True when every command in ``output`` (default: the last run) has finished."""
        output = self.get_last_output() if output is None else output
        if not output:
            return True
        return all(host_out.client is None or host_out.finished for host_out in output)

    def join(self, output=None, consume_output=False, timeout=None):
        """Wait until every command finished; exit codes are final afterwards.

        ``timeout`` bounds the whole join; on expiry :class:`Timeout` carries
        ``(message, timeout, finished_outputs, unfinished_outputs)`` and the
        commands keep running, so join can be called again.
        """
        if output is None:
            output = self.get_last_output()
            if output is None:
                logger.info("join: no command has been run")
                return None
        if not isinstance(output, list):
            raise ValueError("Unexpected output object type %s" % type(output).__name__)
        deadline = None if timeout is None else monotonic() + timeout
        first_error = None
        for host_out in output:
            if host_out is None or host_out.client is None or host_out.channel_state is None:
                continue
            remaining = None if deadline is None else max(0.0, deadline - monotonic())
            if not host_out.channel_state.wait_done(remaining, discard=consume_output):
                break
            if host_out.channel_state.error is not None and first_error is None:
                first_error = host_out.channel_state.error
        unfinished = [host_out for host_out in output
                      if host_out is not None and host_out.client is not None
                      and host_out.channel_state is not None and not host_out.channel_state.done.is_set()]
        if unfinished:
            finished = [host_out for host_out in output if host_out not in unfinished]
            raise Timeout("Timeout of %s sec(s) reached with commands still running",
                          timeout, finished, unfinished)
        if first_error is not None:
            raise first_error
        if consume_output:
            for host_out in output:
                if host_out is not None and host_out.client is not None:
                    for _ in host_out.stdout:
                        pass
                    for _ in host_out.stderr:
                        pass
        return None

    def _join(self, host_out, consume_output=False, timeout=None):
        """2.x internal: :meth:`join` of one host's output; returns ``host_out``."""
        if host_out is not None:
            self.join([host_out], consume_output=consume_output, timeout=timeout)
        return host_out

    # shells --------------------------------------------------------------------

    def open_shell(self, encoding="utf-8", read_timeout=None):
        """One InteractiveShell per host, in host order."""
        greenlets = [spawn_joined(self.pool, self._open_shell, index, host, encoding,
                                  read_timeout)
                     for index, host in enumerate(self._hosts)]
        gevent.joinall(greenlets, raise_error=True)
        return [greenlet.get() for greenlet in greenlets]

    def _open_shell(self, index, host, encoding, read_timeout):
        return self._make_client(index, host).open_shell(encoding=encoding,
                                                         read_timeout=read_timeout)

    def run_shell_commands(self, shells, commands):
        """Send ``commands`` (str or list of str) to every shell; returns the greenlets."""
        if isinstance(commands, str):
            commands = commands.splitlines() or [commands]
        greenlets = [spawn_joined(self.pool, self._run_in_shell, shell, commands)
                     for shell in shells]
        gevent.joinall(greenlets, raise_error=True, timeout=self.timeout)
        return greenlets

    @staticmethod
    def _run_in_shell(shell, commands):
        try:
            for command in commands:
                shell.run(command)
        except Exception as exc:
            raise ShellError(exc, cause=exc) from exc

    def join_shells(self, shells, timeout=None):
        """Close every shell (EOF) and wait for them; Timeout carries finished/unfinished."""
        limit = self.timeout if timeout is None else timeout
        greenlets = [spawn_joined(self.pool, shell.close) for shell in shells]
        gevent.joinall(greenlets, timeout=limit, raise_error=True)
        unfinished = [shell for shell, greenlet in zip(shells, greenlets) if not greenlet.ready()]
        if unfinished:
            finished = [shell for shell in shells if shell not in unfinished]
            raise Timeout("Timeout of %s sec(s) reached with shells still running",
                          timeout, finished, unfinished)

    # lifecycle ------------------------------------------------------------------

    def close(self):
        """Close every per-host connection."""
        clients, self._host_clients = self._host_clients, {}
        self.cmds = None
        for client in clients.values():
            client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

