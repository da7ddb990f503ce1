"""2.x import path: ``from pssh.clients import ParallelSSHClient, SSHClient``.

The 2.x submodules ``native``, ``base``, ``common`` and ``reader`` are
attributes after ``import pssh.clients``, as in 2.x; ``pssh.clients.ssh``
(2.x's libssh client, served by pssh's libssh2 client) is imported on demand.
"""
from pssh.clients import base, common, native, reader
from pssh.clients.base import parallel as _base_parallel, single as _base_single  # noqa: F401
from pssh.clients.native import ParallelSSHClient, SSHClient

__all__ = ["ParallelSSHClient", "SSHClient", "base", "common", "native", "reader"]
