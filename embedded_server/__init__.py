"""Real OpenSSH servers on loopback for pssh's tests, demos and benchmarks.

Not installed with pssh: import it with the repository root on ``sys.path``::

    from embedded_server import OpenSSHServer, make_user_key, free_port

    key = make_user_key(tmpdir)
    with OpenSSHServer(authorized_keys=[key.public]) as srv:
        ...  # connect to srv.host:srv.port as srv.user with key.private
"""

from .farm import ServerFarm, loopback_addresses
from .keys import KeyPair, fingerprint, make_host_key, make_user_key
from .net import free_port, ipv6_available, port_is_free, read_banner
from .server import (OpenSSHServer, SSHServerError, live_servers, login_user, sshd_path, sshd_version,
                     stop_all_servers)
from .users import PasswordUserError, ensure_password_user

__all__ = [
    "login_user",
    "OpenSSHServer", "ServerFarm", "SSHServerError", "KeyPair", "make_user_key", "make_host_key",
    "fingerprint", "free_port", "port_is_free", "ipv6_available", "read_banner", "loopback_addresses",
    "ensure_password_user", "PasswordUserError", "sshd_path", "sshd_version", "stop_all_servers",
    "live_servers",
]
