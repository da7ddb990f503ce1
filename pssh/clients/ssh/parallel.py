"""2.x import path ``pssh.clients.ssh.parallel``: 2.x's libssh parallel client, served by pssh's.

Arguments in the libssh client's order; ``gssapi_*`` asking for GSS-API
raise :class:`pssh.exceptions.InvalidAPIUseError` (libssh2 has none), as do
``HostConfig`` entries that ask for it. Further keyword arguments are pssh's
own options (proxies, host keys...).
"""
import logging

from pssh.config import refuse_gssapi
from pssh.constants import DEFAULT_RETRIES, RETRY_DELAY
from pssh.parallel import ParallelSSHClient as _ParallelSSHClient

__all__ = ["ParallelSSHClient", "logger"]

logger = logging.getLogger("pssh.clients.ssh.parallel")


class ParallelSSHClient(_ParallelSSHClient):
    """pssh's parallel client with the argument order of 2.x's libssh parallel client."""

    def __init__(self, hosts, user=None, password=None, port=22, pkey=None, cert_file=None,
                 num_retries=DEFAULT_RETRIES, timeout=None, pool_size=100, allow_agent=True,
                 host_config=None, retry_delay=RETRY_DELAY, forward_ssh_agent=False,
                 gssapi_auth=False, gssapi_server_identity=None, gssapi_client_identity=None,
                 gssapi_delegate_credentials=False, identity_auth=True, ipv6_only=False,
                 compress=False, **kwargs):
        refuse_gssapi(gssapi_auth=gssapi_auth, gssapi_server_identity=gssapi_server_identity,
                      gssapi_client_identity=gssapi_client_identity,
                      gssapi_delegate_credentials=gssapi_delegate_credentials)
        super().__init__(hosts, user=user, password=password, port=port, pkey=pkey,
                         num_retries=num_retries, timeout=timeout, pool_size=pool_size,
                         allow_agent=allow_agent, host_config=host_config,
                         retry_delay=retry_delay, forward_ssh_agent=forward_ssh_agent,
                         identity_auth=identity_auth, ipv6_only=ipv6_only, compress=compress,
                         cert_file=cert_file, **kwargs)
