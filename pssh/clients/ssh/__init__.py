"""2.x import path ``pssh.clients.ssh`` (2.x's libssh clients), served by pssh's libssh2 clients."""
from pssh.clients.ssh.parallel import ParallelSSHClient
from pssh.clients.ssh.single import SSHClient

__all__ = ["ParallelSSHClient", "SSHClient"]
