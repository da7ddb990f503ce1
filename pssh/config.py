"""Per-host configuration for :class:`pssh.ParallelSSHClient`: :class:`HostConfig`, whose fields,
their order, defaults and types come from the option list of :mod:`pssh.connection.options`."""
import inspect

from pssh.connection.options import HOST_OPTIONS, STR_LIST
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


_LABELS = {str: "a str", int: "an int", (int, float): "a number",
           (str, bytes): "a str or bytes", bool: "a bool", STR_LIST: "a list of str"}


def _valid(value, kind):
    if kind == STR_LIST:
        return isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # True is an int to Python, not to a field that wants a number.
    return isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))


def _signature():
    parameter = inspect.Parameter
    return inspect.Signature(
        [parameter("self", parameter.POSITIONAL_OR_KEYWORD)]
        + [parameter(option.host_field, parameter.POSITIONAL_OR_KEYWORD,
                     default=option.host_default) for option in HOST_OPTIONS])


# HostConfig(...)'s parameters: every per-host option, in the list's order (2.x's first).
_SIGNATURE = _signature()


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

    __slots__ = tuple(option.host_field for option in HOST_OPTIONS)

    def __init__(self, *args, **kwargs):
        try:
            bound = _SIGNATURE.bind(self, *args, **kwargs)
        except TypeError as exc:
            raise TypeError("HostConfig(): %s" % (exc,)) from None
        bound.apply_defaults()
        values = bound.arguments
        if values["keyboard_interactive"] and values["password"] is None:
            raise InvalidAPIUseError("keyboard_interactive=True requires a password")
        for name in self.__slots__:
            setattr(self, name, values[name])
        self._validate()
        refuse_gssapi(**{name: getattr(self, name) for name in _GSSAPI_OPTIONS})

    __init__.__signature__ = _SIGNATURE

    def _validate(self):
        for option in HOST_OPTIONS:
            value = getattr(self, option.host_field)
            if value is not None and option.kind is not None and not _valid(value, option.kind):
                raise ValueError("HostConfig.%s must be %s, got %r"
                                 % (option.host_field, _LABELS[option.kind], value))
        if self.host_key_policy is not None and self.host_key_policy not in POLICIES:
            raise ValueError("HostConfig.host_key_policy must be one of %s, got %r"
                             % (", ".join(POLICIES), self.host_key_policy))

    def __repr__(self):
        fields = ", ".join("%s=%r" % (name, getattr(self, name)) for name in self.__slots__
                           if getattr(self, name) is not None and name != "password")
        return "HostConfig(%s)" % fields

