"""2.x import path ``pssh.clients.native.single``: re-exports only."""
from pssh.single import SSHClient, logger

__all__ = ["SSHClient", "logger"]
