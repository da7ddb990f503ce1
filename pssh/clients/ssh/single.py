"""2.x import path ``pssh.clients.ssh.single``: 2.x's libssh client, served by pssh's client.

The constructor takes the libssh client's arguments in its order. Its
``gssapi_*`` options raise :class:`pssh.exceptions.InvalidAPIUseError` when
they ask for GSS-API (libssh2 has none); ``cert_file`` works as in pssh's
client. Unlike 2.x's libssh client, SFTP, SCP, proxies and keepalives work.
Further keyword arguments are pssh's own options.
"""
import logging

from pssh.config import refuse_gssapi
from pssh.constants import DEFAULT_RETRIES, RETRY_DELAY
from pssh.single import SSHClient as _SSHClient

__all__ = ["SSHClient", "logger"]

logger = logging.getLogger("pssh.clients.ssh.single")


class SSHClient(_SSHClient):
    """pssh's SSH client with the argument order of 2.x's ``pssh.clients.ssh.SSHClient``."""

    def __init__(self, host, user=None, password=None, port=None, pkey=None, alias=None,
                 cert_file=None, num_retries=DEFAULT_RETRIES, retry_delay=RETRY_DELAY,
                 allow_agent=True, timeout=None, identity_auth=True, gssapi_auth=False,
                 gssapi_server_identity=None, gssapi_client_identity=None,
                 gssapi_delegate_credentials=False, ipv6_only=False, compress=False,
                 _auth_thread_pool=True, **kwargs):
        refuse_gssapi(gssapi_auth=gssapi_auth, gssapi_server_identity=gssapi_server_identity,
                      gssapi_client_identity=gssapi_client_identity,
                      gssapi_delegate_credentials=gssapi_delegate_credentials)
        super().__init__(host, user=user, password=password, port=port, pkey=pkey, alias=alias,
                         num_retries=num_retries, retry_delay=retry_delay,
                         allow_agent=allow_agent, timeout=timeout, identity_auth=identity_auth,
                         ipv6_only=ipv6_only, compress=compress, cert_file=cert_file,
                         _auth_thread_pool=_auth_thread_pool, **kwargs)
        self.cert_file = cert_file
        self.gssapi_auth = gssapi_auth
        self.gssapi_server_identity = gssapi_server_identity
        self.gssapi_client_identity = gssapi_client_identity
        self.gssapi_delegate_credentials = gssapi_delegate_credentials
