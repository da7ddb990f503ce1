"""Which ciphers pssh offers depends on the packet-length guards of src/gcm.pxi (no network)."""
import pytest

from pssh.core import backend as _backend
from pssh.connection.connect import CIPHERS


@pytest.fixture
def guard_state(monkeypatch):
    def set_state(gcm, block):
        monkeypatch.setattr(_backend, "_guard_state", [(gcm, block)])
    return set_state


def test_all_ciphers_offered_when_both_guards_are_installed(guard_state):
    guard_state(True, True)
    assert _backend.offered_ciphers(CIPHERS) == CIPHERS


@pytest.mark.parametrize("gcm,block,left_out", [
    ("no module", True, _backend.GCM_CIPHERS),
    (True, "libssh2 1.11.0, not 1.11.1", _backend.BLOCK_CIPHERS),
    ("no module", "no module", _backend.GCM_CIPHERS + _backend.BLOCK_CIPHERS)])
def test_unguarded_ciphers_are_left_out(guard_state, gcm, block, left_out):
    guard_state(gcm, block)
    offered = _backend.offered_ciphers(CIPHERS).split(",")
    assert not set(offered) & set(left_out)
    assert offered == [name for name in CIPHERS.split(",") if name not in left_out]
    assert "chacha20-poly1305@openssh.com" in offered


def test_every_offered_aes_cipher_has_a_guard():
    """A new AES cipher in CIPHERS must be given a guard (or it could abort the process)."""
    aes = {name for name in CIPHERS.split(",") if name.startswith("aes")}
    assert aes == set(_backend.GCM_CIPHERS) | set(_backend.BLOCK_CIPHERS)


def test_guards_are_installed_where_the_compiled_module_loads():
    native = pytest.importorskip("pssh._native")
    assert _backend.enable_gcm_batching_once() is True
    assert native.block_cipher_guard() is True
    assert native.chacha_guard() is True
    assert native.gcm_wrapper_state()["guard"] is True
