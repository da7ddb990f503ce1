"""Selects the backend that runs the hot loops: compiled ``pssh._native`` or ``pssh._pure``.

``PSSH_PURE_PYTHON=1`` forces the pure backend; PyPy and Windows always use
it. When the native module is missing or fails its self-check at import, pssh
falls back to the pure backend and logs why on the ``pssh`` logger.
"""
import logging
import os
import platform
import sys

from gevent.monkey import get_original

logger = logging.getLogger(__name__)

__all__ = ["backend", "backend_name", "fallback_reason", "enable_gcm_batching_once",
           "offered_ciphers"]


def _select():
    if os.environ.get("PSSH_PURE_PYTHON", "") not in ("", "0"):
        return None, "PSSH_PURE_PYTHON is set"
    if platform.python_implementation() != "CPython" or sys.platform.startswith("win"):
        return None, "the native backend needs CPython on a POSIX system"
    try:
        from pssh import _native
    except ImportError as exc:
        return None, "native module unavailable: %s" % (exc,)
    return _native, None


_native_module, fallback_reason = _select()
if _native_module is None:
    from pssh import _pure as backend
    if not os.environ.get("PSSH_PURE_PYTHON"):
        logger.info("pssh uses the pure-Python backend: %s", fallback_reason)
else:
    backend = _native_module


def backend_name():
    """``"native"`` or ``"pure"``: which backend this process runs."""
    return backend.BACKEND_NAME


GCM_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
BLOCK_CIPHERS = ("aes128-ctr", "aes192-ctr", "aes256-ctr", "aes128-cbc", "aes192-cbc",
                 "aes256-cbc")

# A real lock even under gevent's monkey-patching: first connects may come from several
# threads at once, each with its own hub.
_guard_lock = get_original("_thread", "allocate_lock")()
_guard_state = []


def _install_guards():
    """The crypt guards (src/crypt_guard.c, installed by src/gcm.pxi and src/chacha_guard.pxi),
    whatever the backend: the states of AES-GCM, aes-ctr/aes-cbc and chacha20-poly1305, each
    True or why not."""
    native = _native_module
    if native is None:
        try:  # the pure backend borrows the compiled guards when the module imports
            from pssh import _native as native
        except ImportError as exc:
            reason = "native module unavailable: %s" % (exc,)
            return reason, reason, reason
    return native.install_gcm_wrapper(), native.block_cipher_guard(), native.chacha_guard()


def enable_gcm_batching_once():
    """Once per process: install pssh's crypt wrapper (src/crypt_guard.c): the packet-length
    guards that keep a tampered length from aborting the process in libssh2, and AES-GCM whole-packet
    batching unless PSSH_NO_GCM_BATCH=1. Returns True when the AES-GCM guard is in place, else
    why not."""
    if not _guard_state:
        with _guard_lock:
            if not _guard_state:
                gcm, block, chacha = _install_guards()
                for state, names in ((gcm, "AES-GCM"), (block, "aes-ctr/aes-cbc")):
                    if state is not True:
                        logger.info("%s is not offered: no packet-length guard (%s); a tampered"
                                    " length would abort the process in libssh2", names, state)
                if chacha is not True:
                    # Still offered: without it nothing would be left to negotiate.
                    logger.info("chacha20-poly1305 has no failure wrapper (%s): a packet"
                                " tampered in transit can hang the process in libssh2", chacha)
                _guard_state.append((gcm, block))
    return _guard_state[0][0]


def offered_ciphers(ciphers: str) -> str:
    """``ciphers`` (a libssh2 preference list) without those whose length guard is missing."""
    enable_gcm_batching_once()
    gcm, block = _guard_state[0]
    unguarded = (() if gcm is True else GCM_CIPHERS) + (() if block is True else BLOCK_CIPHERS)
    return ",".join(name for name in ciphers.split(",") if name not in unguarded)
