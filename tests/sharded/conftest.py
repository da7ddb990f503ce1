"""Helpers of the sharded-execution tests: client options for the embedded servers."""
import pytest

from embedded_server import free_port


@pytest.fixture
def client_options(user_key):
    """Keyword arguments every shard's ParallelSSHClient gets (port set per test)."""
    return dict(pkey=user_key.private, num_retries=1, timeout=20, allow_agent=False,
                identity_auth=False)


@pytest.fixture
def refused_port():
    """A loopback port nothing listens on: connecting there is refused at once."""
    return free_port("127.0.0.1")
