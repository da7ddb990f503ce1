"""The one option list (pssh.connection.options): HostConfig, jump hosts and bastion
settings are made from it, so each keeps what the list says."""
import inspect

import pytest

from pssh.config import HostConfig
from pssh.connection.options import HOP_OPTIONS, HOST_OPTIONS, OPTIONS
from pssh.connection.settings import ConnectSettings
from pssh.connection.tunnel import Hop


def test_host_config_has_exactly_the_per_host_options_in_order():
    params = list(inspect.signature(HostConfig).parameters.values())
    assert [p.name for p in params] == [o.host_field for o in HOST_OPTIONS]
    assert [p.default for p in params] == [o.host_default for o in HOST_OPTIONS]
    assert HostConfig.__slots__ == tuple(o.host_field for o in HOST_OPTIONS)


def test_host_config_takes_positional_arguments_in_2x_order():
    config = HostConfig("u", 2222, "pw", b"KEY")
    assert (config.user, config.port, config.password, config.private_key) == (
        "u", 2222, "pw", b"KEY")
    with pytest.raises(TypeError, match="HostConfig.*no_such_option"):
        HostConfig(no_such_option=1)


@pytest.mark.parametrize("option", [o for o in HOST_OPTIONS if o.kind is not None],
                         ids=lambda o: o.host_field)
def test_every_typed_host_field_is_checked(option):
    values = {"password": "pw"}  # keyboard_interactive needs one
    values[option.host_field] = object()
    with pytest.raises(ValueError, match="HostConfig.%s must be" % option.host_field):
        HostConfig(**values)


def test_hop_fields_come_from_the_list():
    hop = Hop("bastion", port=2200, user="b")
    assert set(Hop.__slots__) == {"host", "via"} | {o.name for o in HOP_OPTIONS}
    # Inherited options left unset stay None (the target's apply); the others get defaults.
    assert hop.timeout is None and hop.host_key_policy is None and hop.known_hosts is None
    assert hop.identity_files == () and hop.identities_only is False
    with pytest.raises(TypeError, match="allow_agent"):
        Hop("bastion", allow_agent=False)  # not a jump-host option


def settings(**values):
    base = dict(user="tuser", port=22, timeout=7, keepalive_seconds=30,
                host_key_policy="strict", known_hosts=["/t/known"], num_retries=2,
                allow_agent=False)
    base.update(values)
    return ConnectSettings("target", base)


def test_a_bastion_inherits_only_what_its_hop_leaves_unset():
    hop = Hop("bastion", port=2200, user="buser", password=None, pkey=None)
    bastion = settings().for_bastion(hop)
    assert (bastion.host, bastion.port, bastion.user) == ("bastion", 2200, "buser")
    assert (bastion.timeout, bastion.keepalive_seconds) == (7, 30)
    assert bastion.host_key_policy == "strict" and bastion.known_hosts == ["/t/known"]
    assert (bastion.num_retries, bastion.allow_agent) == (2, False)
    own = Hop("bastion", port=2200, user="buser", timeout=3, keepalive_seconds=5,
              host_key_policy="accept-new", known_hosts=("/b/known",))
    bastion = settings().for_bastion(own)
    assert (bastion.timeout, bastion.keepalive_seconds) == (3, 5)
    assert bastion.host_key_policy == "accept-new" and bastion.known_hosts == ["/b/known"]


def test_a_bastion_never_inherits_the_targets_login():
    # A hop's user, password, key and identity files are its own, even when empty.
    hop = Hop("bastion", port=22, user="buser", password=None, pkey=None)
    bastion = settings(password="target-pw", identity_files=("/t/id",)).for_bastion(hop)
    assert bastion.password is None and bastion.pkey is None
    assert bastion.identity_files == ()


def test_no_option_is_listed_twice():
    names = [o.name for o in OPTIONS]
    fields = [o.host_field for o in OPTIONS if o.host_field]
    assert len(names) == len(set(names)) and len(fields) == len(set(fields))


def test_hop_takes_its_bastion_by_keyword_only():
    # 2.x-era positional calls (host, port, ...) must fail at the call, not set via=2222
    with pytest.raises(TypeError):
        Hop("bastion", 2222)
    inner = Hop("inner", port=22)
    assert Hop("outer", via=inner, port=22).via is inner
