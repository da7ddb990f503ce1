"""The one list of connection options, :data:`OPTIONS`: each option's keyword, default, the
:class:`~pssh.config.HostConfig` field that sets it per host, whether ssh_config and jump hosts
may set it, and what a bastion's connection inherits. Nothing here imports pssh's layers.

:class:`~pssh.connection.settings.ConnectSettings` resolves a connection from it;
:class:`~pssh.config.HostConfig` takes its fields, order, defaults and types from it; a jump
host (:class:`~pssh.connection.tunnel.Hop`) its own fields.
"""
from typing import Any, NamedTuple, Optional, Tuple

from pssh.constants import DEFAULT_RETRIES, RETRY_DELAY

__all__ = ["Option", "OPTIONS", "CONNECTION_OPTIONS", "HOST_OPTIONS", "HOP_OPTIONS", "NAMES",
           "DEFAULTS", "PARALLEL_DEFAULTS", "INHERITED", "STR_LIST"]

# The ``kind`` of a HostConfig field that takes a list of str.
STR_LIST = "list of str"
_NUMBER = (int, float)
_STR_OR_BYTES = (str, bytes)


class Option(NamedTuple):
    """One option. ``name``: the clients' keyword and the ConnectSettings attribute;
    ``default``: the clients' default; ``host_field``: the HostConfig field that overrides it
    per host (None: not per host); ``from_file``: ssh_config may set it; ``kind``: the type a
    HostConfig value must have; ``per_hop``: a jump host has its own value (a
    :class:`~pssh.connection.tunnel.Hop` field); ``inherited``: a bastion's connection takes
    this connection's value unless its hop has one; ``host_default``: HostConfig's default
    (None: not set, the client's value applies); ``connection``: False for a HostConfig field
    that is no connection option."""
    name: str
    default: Any
    host_field: Optional[str]
    from_file: bool = False
    kind: Any = None
    per_hop: bool = False
    inherited: bool = False
    host_default: Any = None
    connection: bool = True


# HostConfig's fields follow this order: 2.x's signature first, then pssh's own fields.
OPTIONS: Tuple[Option, ...] = (
    Option("user", None, "user", True, str, per_hop=True),
    Option("port", None, "port", True, int, per_hop=True),
    Option("password", None, "password", kind=str, per_hop=True),
    Option("pkey", None, "private_key", kind=_STR_OR_BYTES, per_hop=True),
    Option("allow_agent", True, "allow_agent", kind=bool, inherited=True),
    Option("alias", None, "alias", kind=str),
    Option("num_retries", DEFAULT_RETRIES, "num_retries", kind=int, inherited=True),
    Option("retry_delay", RETRY_DELAY, "retry_delay", kind=_NUMBER, inherited=True),
    Option("timeout", None, "timeout", True, _NUMBER, per_hop=True, inherited=True),
    Option("identity_auth", True, "identity_auth", kind=bool, inherited=True),
    Option("proxy_host", None, "proxy_host", kind=str),
    Option("proxy_port", None, "proxy_port", kind=int),
    Option("proxy_user", None, "proxy_user", kind=str),
    Option("proxy_password", None, "proxy_password", kind=str),
    Option("proxy_pkey", None, "proxy_pkey", kind=_STR_OR_BYTES),
    Option("keepalive_seconds", 60, "keepalive_seconds", True, int, per_hop=True,
           inherited=True),
    Option("ipv6_only", False, "ipv6_only", kind=bool),
    Option("cert_file", None, "cert_file", kind=_STR_OR_BYTES),
    # 2.x fields of its libssh client: accepted, never a connection option (GSS-API is
    # refused by pssh.config.refuse_gssapi; the auth thread pool does not exist).
    Option("auth_thread_pool", None, "auth_thread_pool", host_default=True, connection=False),
    Option("gssapi_auth", None, "gssapi_auth", kind=bool, host_default=False,
           connection=False),
    Option("gssapi_server_identity", None, "gssapi_server_identity", kind=str,
           connection=False),
    Option("gssapi_client_identity", None, "gssapi_client_identity", kind=str,
           connection=False),
    Option("gssapi_delegate_credentials", None, "gssapi_delegate_credentials", kind=bool,
           host_default=False, connection=False),
    Option("forward_ssh_agent", False, "forward_ssh_agent", kind=bool),
    Option("compress", False, "compress", kind=bool),
    Option("keyboard_interactive", False, "keyboard_interactive", kind=bool),
    # Per host only: the idle timeout of that host's commands (run_command has its own).
    Option("idle_timeout", None, "idle_timeout", kind=_NUMBER, connection=False),
    # Only HostConfig and the ssh_config file set these (no client keyword).
    Option("hostname", None, "hostname", True, str, per_hop=True),
    Option("identity_files", (), "identity_files", True, STR_LIST, per_hop=True),
    Option("identities_only", False, "identities_only", True, bool, per_hop=True),
    Option("proxy_jump", None, "proxy_jump", True, str),
    Option("host_key_policy", None, "host_key_policy", True, str, per_hop=True,
           inherited=True),
    Option("known_hosts", None, "known_hosts", True, STR_LIST, per_hop=True, inherited=True),
    Option("host_key_alias", None, "host_key_alias", True, str),
    # A client keyword only.
    Option("agent", None, None, inherited=True),
)

CONNECTION_OPTIONS = tuple(option for option in OPTIONS if option.connection)
HOST_OPTIONS = tuple(option for option in OPTIONS if option.host_field)
HOP_OPTIONS = tuple(option for option in OPTIONS if option.per_hop)
NAMES = tuple(option.name for option in CONNECTION_OPTIONS)
DEFAULTS = {option.name: option.default for option in CONNECTION_OPTIONS}
# A parallel client's ``port`` defaults to 22 (2.x); 22 there counts as "not given".
PARALLEL_DEFAULTS = dict(DEFAULTS, port=22)
# The options a bastion's client inherits from the client behind it.
INHERITED = tuple(option.name for option in CONNECTION_OPTIONS if option.inherited)
