"""Shared by the single-client integration tests: how they connect, and their timeouts."""
from pssh.single import SSHClient

CONNECT_TIMEOUT = 20  # generous: a loaded CI host can take seconds to handshake
READ_TIMEOUT = 30


def connect(server, key, **kwargs):
    """An SSHClient to ``server`` with ``key`` only (no agent, no default identities)."""
    opts = dict(port=server.port, user=server.user, pkey=key.private, num_retries=1,
                retry_delay=0.1, timeout=CONNECT_TIMEOUT, allow_agent=False, identity_auth=False)
    opts.update(kwargs)
    return SSHClient(server.host, **opts)
