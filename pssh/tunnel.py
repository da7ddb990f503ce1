"""Public path of the jump-host (bastion) connections; the code is in :mod:`pssh.connection.tunnel`.

Only re-exports, so ``from pssh.tunnel import Hop`` keeps working.
"""
from pssh.connection.tunnel import Bastion, Hop, open_tunnel, parse_proxy_jump, split_proxy_jump

__all__ = ["open_tunnel", "Bastion", "Hop", "parse_proxy_jump", "split_proxy_jump"]
