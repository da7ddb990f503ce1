"""2.x import path ``pssh.clients.base.parallel``.

``BaseParallelSSHClient`` is :class:`pssh.parallel.ParallelSSHClient` (pssh
has one parallel client). Unlike 2.x, importing this module changes no
gevent setting (``Hub.NOT_ERROR``).
"""
import logging

from pssh.parallel import ParallelSSHClient as BaseParallelSSHClient

__all__ = ["BaseParallelSSHClient", "logger"]

logger = logging.getLogger("pssh.clients.base.parallel")
