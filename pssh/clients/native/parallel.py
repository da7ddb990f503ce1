"""2.x import path ``pssh.clients.native.parallel``: re-exports only."""
from pssh.parallel import ParallelSSHClient, logger

__all__ = ["ParallelSSHClient", "logger"]
