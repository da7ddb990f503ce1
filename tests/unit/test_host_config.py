"""pssh.config.HostConfig: defaults, type validation, mutability, repr."""

import pytest

from pssh.config import HostConfig
from pssh.exceptions import InvalidAPIUseError


def test_defaults_are_none_for_overridable_fields():
    hc = HostConfig()
    for name in ("user", "port", "password", "private_key", "allow_agent", "alias", "num_retries",
                 "retry_delay", "timeout", "identity_auth", "proxy_host", "proxy_port",
                 "keepalive_seconds", "ipv6_only", "cert_file"):
        assert getattr(hc, name) is None, name


def test_valid_values_kept():
    hc = HostConfig(user="u", port=2222, password="pw", private_key=b"KEY", allow_agent=False,
                    alias="a", num_retries=2, retry_delay=0.5, timeout=3, identity_auth=False,
                    proxy_host="p", proxy_port=22, keepalive_seconds=0, ipv6_only=True,
                    compress=True, keyboard_interactive=True)
    assert (hc.user, hc.port, hc.password, hc.private_key) == ("u", 2222, "pw", b"KEY")
    assert (hc.retry_delay, hc.timeout, hc.keepalive_seconds) == (0.5, 3, 0)
    assert (hc.allow_agent, hc.identity_auth, hc.ipv6_only) == (False, False, True)
    assert HostConfig(private_key="/path/key").private_key == "/path/key"


@pytest.mark.parametrize("field, value", [
    ("user", 5), ("password", b"pw"), ("alias", 1), ("proxy_host", ["p"]),
    ("port", "22"), ("port", 22.0), ("port", True), ("num_retries", "3"), ("proxy_port", 1.5),
    ("keepalive_seconds", False),
    ("timeout", "1"), ("timeout", True), ("retry_delay", [1]),
    ("private_key", 12), ("proxy_pkey", object()), ("cert_file", 1),
    ("allow_agent", 1), ("identity_auth", "yes"), ("ipv6_only", 0), ("compress", "true"),
    ("forward_ssh_agent", 1),
])
def test_wrong_types_raise_value_error(field, value):
    with pytest.raises(ValueError) as info:
        HostConfig(**{field: value})
    assert field in str(info.value)


def test_numbers_accept_int_and_float():
    assert HostConfig(timeout=1.5).timeout == 1.5
    assert HostConfig(retry_delay=2).retry_delay == 2


def test_keyboard_interactive_needs_password_checked_first():
    with pytest.raises(InvalidAPIUseError):
        HostConfig(keyboard_interactive=True)
    with pytest.raises(InvalidAPIUseError):
        HostConfig(keyboard_interactive=True, port="not checked yet")
    assert HostConfig(keyboard_interactive=True, password="pw").keyboard_interactive is True


def test_mutable_with_slots():
    hc = HostConfig(port=22)
    hc.port = 2200
    hc.user = "other"
    assert (hc.port, hc.user) == (2200, "other")
    with pytest.raises(AttributeError):
        hc.no_such_field = 1
    assert not hasattr(hc, "__dict__")


def test_private_key_path_not_validated_here():
    assert HostConfig(private_key="/does/not/exist").private_key == "/does/not/exist"


def test_repr_hides_password():
    text = repr(HostConfig(user="u", password="s3cret-pw", port=22))
    assert "s3cret-pw" not in text
    assert "user='u'" in text and "port=22" in text
