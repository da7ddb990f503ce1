"""2.x import path: ``from pssh.clients import ParallelSSHClient, SSHClient``."""
from pssh.parallel import ParallelSSHClient
from pssh.single import SSHClient

__all__ = ["ParallelSSHClient", "SSHClient"]
