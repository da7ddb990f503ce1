"""A programmatic SSH agent (the 1.x ``pssh.agent.SSHAgent``).

Keys are added in memory and passed to a client as ``agent=``; the client then
tries them, in the order added, instead of asking the system agent. No agent
protocol or socket is involved: the keys never leave this process.
"""
from pssh.connection.connect import read_private_key

__all__ = ["SSHAgent"]


class SSHAgent:
    """Holds private keys for authentication; ``add_key`` takes a path, key bytes or a
    file object, with an optional passphrase."""

    def __init__(self):
        self.keys = []

    def add_key(self, pkey, passphrase=None):
        if isinstance(pkey, bytes):
            data = pkey
        elif hasattr(pkey, "read"):
            data = pkey.read()
            data = data.encode() if isinstance(data, str) else data
        else:
            data = read_private_key(pkey)
        self.keys.append((data, passphrase or ""))

    def get_keys(self):
        """The keys held, as a tuple of key bytes."""
        return tuple(data for data, _ in self.keys)
