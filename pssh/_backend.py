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

logger = logging.getLogger("pssh")

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

# A real lock even under gevent's monkey-patching: first connects may come from several
# threads at once, each with its own hub.
_gcm_lock = get_original("_thread", "allocate_lock")()
_gcm_state = []


def _install_gcm_guard():
    """The AES-GCM length guard of src/gcm.pxi, whatever the backend: True or why not."""
    if _native_module is not None:
        return _native_module.install_gcm_wrapper()
    try:  # the pure backend borrows the compiled guard when the module imports
        from pssh import _native
    except ImportError as exc:
        return "native module unavailable: %s" % (exc,)
    return _native.install_gcm_wrapper()


def enable_gcm_batching_once():
    """Once per process: install pssh's AES-GCM crypt wrapper (src/gcm.pxi): the length guard
    that keeps a tampered packet length from aborting the process, and whole-packet batching
    unless PSSH_NO_GCM_BATCH=1. Returns True when the guard is in place, else why not."""
    if not _gcm_state:
        with _gcm_lock:
            if not _gcm_state:
                state = _install_gcm_guard()
                if state is not True:
                    logger.info("AES-GCM is not offered: no packet-length guard (%s); a tampered"
                                " length would abort the process in libssh2", state)
                _gcm_state.append(state)
    return _gcm_state[0]


def offered_ciphers(ciphers: str) -> str:
    """``ciphers`` (a libssh2 preference list) without AES-GCM when its guard is missing."""
    if enable_gcm_batching_once() is True:
        return ciphers
    return ",".join(name for name in ciphers.split(",") if name not in GCM_CIPHERS)
