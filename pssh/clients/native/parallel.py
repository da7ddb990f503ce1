"""2.x import path ``pssh.clients.native.parallel``: re-exports only.

``SSHClient`` is here because 2.x user tests patch it; in pssh the parallel
client builds :class:`pssh.single.SSHClient` itself, so patching this name
does not change the clients it builds (see README, "Differences").
"""
from pssh.parallel import ParallelSSHClient, logger
from pssh.single import SSHClient

__all__ = ["ParallelSSHClient", "SSHClient", "logger"]
