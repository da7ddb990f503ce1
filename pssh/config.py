"""Per-host configuration for :class:`pssh.ParallelSSHClient`."""
from pssh.exceptions import InvalidAPIUseError
from pssh.hostkeys import POLICIES

__all__ = ["HostConfig", "refuse_gssapi"]

_GSSAPI_OPTIONS = ("gssapi_auth", "gssapi_server_identity", "gssapi_client_identity",
                   "gssapi_delegate_credentials")


def refuse_gssapi(**options):
    """Raise :class:`InvalidAPIUseError` if any ``gssapi_*`` option asks for GSS-API.

    They are 2.x options of its libssh client; pssh runs on libssh2, which has
    no GSS-API, so a request is an error rather than silently ignored.
    """
    asked = ["%s=%r" % (name, options[name]) for name in _GSSAPI_OPTIONS if options.get(name)]
    if asked:
        raise InvalidAPIUseError("GSS-API authentication is not available (%s): pssh runs on "
                                 "libssh2, which has no GSS-API" % ", ".join(asked))

_STR = ("user", "password", "alias", "proxy_host", "proxy_user", "proxy_password",
        "gssapi_server_identity", "gssapi_client_identity", "hostname", "proxy_jump",
        "host_key_policy", "host_key_alias")
_INT = ("port", "num_retries", "proxy_port", "keepalive_seconds")
_NUMBER = ("timeout", "retry_delay", "idle_timeout")
_STR_OR_BYTES = ("private_key", "proxy_pkey", "cert_file")
_BOOL = ("allow_agent", "identity_auth", "ipv6_only", "forward_ssh_agent", "gssapi_auth",
         "gssapi_delegate_credentials", "compress", "keyboard_interactive", "identities_only")
_STR_LIST = ("identity_files", "known_hosts")


class HostConfig:
    """Settings for one host of a parallel client.

    Any field left at None falls back to the parallel client's value. Unlike
    parallel-ssh 2.x, a false value set here (``allow_agent=False``,
    ``keepalive_seconds=0``, ...) does override a true client-level value.

    Fields beyond 2.x: ``host_key_policy`` and ``known_hosts`` (see
    :mod:`pssh.hostkeys`), and what an OpenSSH config can set for a host
    (:func:`pssh.openssh_config.host_configs`): ``hostname`` (the address to
    connect to; outputs keep the host name given), ``identity_files`` (tried
    before the default identities), ``identities_only`` (only those, no agent),
    ``proxy_jump`` (a bastion chain, OpenSSH ``ProxyJump`` syntax) and
    ``host_key_alias`` (the name to look the host key up under, ``HostKeyAlias``).

    The ``gssapi_*`` fields are accepted only when false or None: pssh has no
    GSS-API (libssh2 lacks it), so asking for it raises ``InvalidAPIUseError``.
    """

    __slots__ = ("user", "port", "password", "private_key", "allow_agent", "alias",
                 "num_retries", "retry_delay", "timeout", "identity_auth", "proxy_host",
                 "proxy_port", "proxy_user", "proxy_password", "proxy_pkey",
                 "keepalive_seconds", "ipv6_only", "cert_file", "auth_thread_pool",
                 "gssapi_auth", "gssapi_server_identity", "gssapi_client_identity",
                 "gssapi_delegate_credentials", "forward_ssh_agent", "compress",
                 "keyboard_interactive", "idle_timeout", "hostname", "identity_files",
                 "identities_only", "proxy_jump", "host_key_policy", "known_hosts",
                 "host_key_alias")

    def __init__(self, user=None, port=None, password=None, private_key=None, allow_agent=None,
                 alias=None, num_retries=None, retry_delay=None, timeout=None,
                 identity_auth=None, proxy_host=None, proxy_port=None, proxy_user=None,
                 proxy_password=None, proxy_pkey=None, keepalive_seconds=None, ipv6_only=None,
                 cert_file=None, auth_thread_pool=True, gssapi_auth=False,
                 gssapi_server_identity=None, gssapi_client_identity=None,
                 gssapi_delegate_credentials=False, forward_ssh_agent=None, compress=None,
                 keyboard_interactive=None, idle_timeout=None, hostname=None,
                 identity_files=None, identities_only=None, proxy_jump=None,
                 host_key_policy=None, known_hosts=None, host_key_alias=None):
        if keyboard_interactive and password is None:
            raise InvalidAPIUseError("keyboard_interactive=True requires a password")
        values = dict(locals())
        del values["self"]
        for name in self.__slots__:
            setattr(self, name, values[name])
        self._validate()
        refuse_gssapi(**{name: getattr(self, name) for name in _GSSAPI_OPTIONS})

    def _validate(self):
        def check(names, types, label):
            for name in names:
                value = getattr(self, name)
                if value is not None and (not isinstance(value, types)
                                          or (types is not bool and isinstance(value, bool)
                                              and bool not in _as_tuple(types))):
                    raise ValueError("HostConfig.%s must be %s, got %r" % (name, label, value))
        check(_STR, str, "a str")
        check(_INT, int, "an int")
        check(_NUMBER, (int, float), "a number")
        check(_STR_OR_BYTES, (str, bytes), "a str or bytes")
        check(_BOOL, bool, "a bool")
        for name in _STR_LIST:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (list, tuple))
                                      or not all(isinstance(item, str) for item in value)):
                raise ValueError("HostConfig.%s must be a list of str, got %r" % (name, value))
        if self.host_key_policy is not None and self.host_key_policy not in POLICIES:
            raise ValueError("HostConfig.host_key_policy must be one of %s, got %r"
                             % (", ".join(POLICIES), self.host_key_policy))

    def __repr__(self):
        fields = ", ".join("%s=%r" % (name, getattr(self, name)) for name in self.__slots__
                           if getattr(self, name) is not None and name != "password")
        return "HostConfig(%s)" % fields


def _as_tuple(types):
    return types if isinstance(types, tuple) else (types,)
