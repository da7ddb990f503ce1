"""Public path of the ssh_config jump-host lookup; the code is in :mod:`pssh.connection.jump`.

Only re-exports, so ``from pssh.openssh_jump import proxy_hops`` keeps working.
"""
from pssh.connection.jump import describe, proxy_hops

__all__ = ["proxy_hops", "describe"]
