"""The 1.x API of parallel-ssh's old README, as an adapter over :mod:`pssh.parallel`.

``run_command`` returns a dict keyed by host (a repeated host gets the keys
``host``, ``host_1``, ``host_2``...), whose values are dict-like outputs with
the keys and attributes ``host``, ``cmd``, ``channel``, ``stdout``, ``stderr``,
``stdin``, ``exit_code`` and ``exception``. Lines are stripped of surrounding
white space and commands run through ``$SHELL -c "..."`` with a PTY, as in 1.x.
Agent forwarding is on by default, as in 1.x, and skipped without a word where
no local agent can be forwarded. ``host_clients`` maps each host name to its
client (the first position's for a repeated host).
"""
from pssh.config import HostConfig
from pssh.exceptions import HostArgumentError
from pssh.parallel import ParallelSSHClient as _ParallelSSHClient
from pssh.ssh_client import agent_forwarding_wanted, legacy_command

__all__ = ["ParallelSSHClient", "LegacyHostOutput"]


class LegacyHostOutput(dict):
    """1.x output of one host: a dict whose ``exit_code`` is always current."""

    def __init__(self, host_output, cmd=None):
        self._output = host_output
        super().__init__(
            host=host_output.host, cmd=cmd, channel=host_output.channel,
            stdout=_stripped(host_output.stdout), stderr=_stripped(host_output.stderr),
            stdin=host_output.stdin, exit_code=host_output.exit_code,
            exception=host_output.exception)

    def __getitem__(self, key):
        if key == "exit_code":
            self.refresh()
        return dict.__getitem__(self, key)

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def refresh(self):
        dict.__setitem__(self, "exit_code", self._output.exit_code)


def _stripped(lines):
    if lines is None:
        return None
    return (line.strip() for line in lines)


class ParallelSSHClient(_ParallelSSHClient):
    """1.x constructor and dict-returning ``run_command`` on top of the 2.x client."""

    def __init__(self, hosts, user=None, password=None, port=None, pkey=None,
                 forward_ssh_agent=True, num_retries=3, timeout=120, pool_size=10,
                 proxy_host=None, proxy_port=22, proxy_user=None, proxy_password=None,
                 proxy_pkey=None, agent=None, allow_agent=True, host_config=None,
                 channel_timeout=None, **kwargs):
        hosts = list(hosts)
        if isinstance(host_config, dict):
            host_config = [_host_config_from_dict(host_config.get(host)) for host in hosts]
        self.channel_timeout = channel_timeout
        super().__init__(hosts, user=user, password=password, port=port or 22, pkey=pkey,
                         num_retries=num_retries, timeout=timeout, pool_size=pool_size,
                         allow_agent=allow_agent, host_config=host_config,
                         proxy_host=proxy_host, proxy_port=proxy_port, proxy_user=proxy_user,
                         proxy_password=proxy_password, proxy_pkey=proxy_pkey,
                         forward_ssh_agent=agent_forwarding_wanted(forward_ssh_agent, agent),
                         agent=agent, **kwargs)

    @property
    def host_clients(self):
        """1.x: the connected clients by host name (a repeated host: its first position's)."""
        clients = {}
        for (_, host), client in sorted(self._host_clients.items(), key=lambda item: item[0][0]):
            clients.setdefault(host, client)
        return clients

    def run_command(self, command, sudo=False, user=None, stop_on_errors=True, shell=None,
                    use_shell=True, use_pty=True, host_args=None, encoding="utf-8", **kwargs):
        if host_args:
            if len(host_args) < len(self.hosts):
                raise HostArgumentError("Number of host arguments (%s) is less than the "
                                        "number of hosts (%s)", len(host_args), len(self.hosts))
            # 1.x substituted the arguments first, then quoted the whole command:
            # each host's finished command becomes the argument of a "%s" template.
            host_args = [(legacy_command(command % args, sudo, user, shell, use_shell),)
                         for args in host_args[:len(self.hosts)]]
            command = "%s"
        else:
            command = legacy_command(command, sudo, user, shell, use_shell)
        outputs = super().run_command(command, stop_on_errors=stop_on_errors, use_pty=use_pty,
                                      host_args=host_args, encoding=encoding, **kwargs)
        result = {}
        for index, host_out in enumerate(outputs):
            key = host_out.host
            suffix = 0
            while key in result:
                suffix += 1
                key = "%s_%d" % (host_out.host, suffix)
            result[key] = LegacyHostOutput(host_out, cmd=self.cmds[index])
        return result

    def join(self, output=None, consume_output=False, timeout=None):
        if isinstance(output, dict):
            super().join([value._output for value in output.values()],
                         consume_output=consume_output, timeout=timeout)
            self.get_exit_codes(output)
            return None
        return super().join(output, consume_output=consume_output, timeout=timeout)

    def finished(self, output=None):
        if isinstance(output, dict):
            output = [value._output for value in output.values()]
        return super().finished(output)

    def get_exit_codes(self, output):
        """Refresh ``exit_code`` of every host in a 1.x output dict."""
        for value in output.values():
            value.refresh()

    def get_exit_code(self, host_output):
        """Exit code of one 1.x host output (None until finished)."""
        host_output.refresh()
        return host_output["exit_code"]

    def get_output(self, cmd, output, encoding="utf-8"):
        """1.x no-op: outputs are complete when returned."""


def _host_config_from_dict(values):
    if not values:
        return HostConfig()
    return HostConfig(user=values.get("user"), port=values.get("port"),
                      password=values.get("password"), private_key=values.get("private_key"))
