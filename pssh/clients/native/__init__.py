"""2.x import path ``pssh.clients.native``: re-exports only."""
from pssh.clients.native import tunnel
from pssh.clients.native.parallel import ParallelSSHClient
from pssh.clients.native.single import SSHClient, logger

__all__ = ["ParallelSSHClient", "SSHClient", "logger", "tunnel"]
