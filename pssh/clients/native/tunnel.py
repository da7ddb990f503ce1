"""2.x import path ``pssh.clients.native.tunnel``.

The names exist for imports and ``mock.patch``; see :mod:`pssh.clients._compat`
for why they do nothing in pssh, and :mod:`pssh.tunnel` for how proxies work.
"""
from pssh.clients._compat import FORWARDER, LocalForwarder, TunnelServer, logger

__all__ = ["LocalForwarder", "TunnelServer", "FORWARDER", "logger"]
