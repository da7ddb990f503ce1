"""2.x import path ``pssh.clients.native.parallel``: re-exports only.

``SSHClient`` is here because 2.x user tests patch it: the parallel client
looks the class up through this module each time it builds a host's client,
so patching this name changes the clients it builds, as in 2.x.
"""
from pssh.parallel import ParallelSSHClient, logger
from pssh.single import SSHClient

__all__ = ["ParallelSSHClient", "SSHClient", "logger"]
