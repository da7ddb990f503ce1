"""The 1.x single-host client ``pssh.ssh_client.SSHClient``, an adapter over :mod:`pssh.single`.

As in 1.x: the connection is made by the constructor, ``~/.ssh/config`` (or
``_openssh_config_file``) supplies ``HostName``, ``User``, ``Port`` and
``IdentityFile``, agent forwarding is on by default, and ``exec_command``
runs a command through ``$SHELL -c "..."`` with 1.x escaping and a PTY,
returning ``(channel, host, stdout, stderr, stdin)``.

Agent forwarding is skipped without a word where there is nothing to
forward (no ``$SSH_AUTH_SOCK``, a programmatic ``agent=``, or no forwarding
support in the loaded libssh2), as OpenSSH's ``ForwardAgent`` does.
"""
from typing import Any, Iterator, Optional, Tuple

from pssh.constants import DEFAULT_RETRIES
from pssh.connection.agent_forward import forwarding_unavailable, local_agent_socket
from pssh.single import SSHClient as _SSHClient

__all__ = ["SSHClient", "legacy_command", "agent_forwarding_wanted"]


def _quote_1x(command: str) -> str:
    for char in ("\\", '"', "$", "`"):
        command = command.replace(char, "\\" + char)
    return '"%s"' % (command,)


def legacy_command(command: str, sudo: bool = False, user: Optional[str] = None,
                   shell: Optional[str] = None, use_shell: bool = True) -> str:
    """The command line 1.x sent: ``[sudo [-u user] -S ]<shell> "<escaped command>"``."""
    if use_shell:
        command = "%s %s" % (shell or "$SHELL -c", _quote_1x(command))
    if user:
        return "sudo -u %s -S %s" % (user, command)
    if sudo:
        return "sudo -S %s" % (command,)
    return command


def agent_forwarding_wanted(forward_ssh_agent: bool, agent: Any = None) -> bool:
    """1.x's default-on forwarding, kept only where a local agent can be forwarded.

    pssh warns when forwarding is asked for without an agent (and refuses it
    with a programmatic ``agent=``); 1.x code asks for it by default, so the
    1.x clients ask only when it can work.
    """
    if not forward_ssh_agent or agent is not None:
        return False
    return local_agent_socket() is not None and forwarding_unavailable() is None


class SSHClient(_SSHClient):
    """pssh's SSH client with the 1.x constructor and ``exec_command``.

    ``timeout`` bounds connecting and each operation as in pssh;
    ``channel_timeout`` is accepted and ignored (use ``read_timeout`` of
    ``run_command``). ``pkey`` is a key path or key bytes (1.x: a paramiko
    key; :func:`pssh.utils.load_private_key` gives the bytes).
    """

    def __init__(self, host: str, user: Optional[str] = None, password: Optional[str] = None,
                 port: Optional[int] = None, pkey: Any = None, forward_ssh_agent: bool = True,
                 num_retries: int = DEFAULT_RETRIES, agent: Any = None, allow_agent: bool = True,
                 timeout: Optional[float] = 10, proxy_host: Optional[str] = None,
                 proxy_port: Optional[int] = 22, proxy_user: Optional[str] = None,
                 proxy_password: Optional[str] = None, proxy_pkey: Any = None,
                 channel_timeout: Optional[float] = None,
                 _openssh_config_file: Optional[str] = None, **kwargs: Any):
        kwargs.setdefault("ssh_config", _openssh_config_file or True)
        super().__init__(host, user=user, password=password, port=port, pkey=pkey,
                         forward_ssh_agent=agent_forwarding_wanted(forward_ssh_agent, agent),
                         num_retries=num_retries, agent=agent, allow_agent=allow_agent,
                         timeout=timeout, proxy_host=proxy_host, proxy_port=proxy_port,
                         proxy_user=proxy_user, proxy_password=proxy_password,
                         proxy_pkey=proxy_pkey, **kwargs)
        self.channel_timeout = channel_timeout

    def exec_command(self, command: str, sudo: bool = False, user: Optional[str] = None,
                     shell: Optional[str] = None, use_shell: bool = True,
                     use_pty: bool = True) -> Tuple[Any, str, Iterator[str], Iterator[str], Any]:
        """Start ``command``; returns ``(channel, host, stdout, stderr, stdin)``.

        ``stdout``/``stderr`` yield decoded lines without their line end;
        ``get_exit_status(channel)`` is the exit code once they are exhausted.
        """
        output = self.run_command(legacy_command(command, sudo, user, shell, use_shell),
                                  use_pty=use_pty)
        return output.channel, self.host, output.stdout, output.stderr, output.stdin
