"""Selects the backend that runs the hot loops: compiled ``pssh._native`` or ``pssh._pure``.

``PSSH_PURE_PYTHON=1`` forces the pure backend; PyPy and Windows always use
it. When the native module is missing or fails its self-check at import, pssh
falls back to the pure backend and logs why on the ``pssh`` logger.
"""
import logging
import os
import platform
import sys

logger = logging.getLogger("pssh")

__all__ = ["backend", "backend_name", "fallback_reason"]


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


_GCM_STATE = []


def enable_gcm_batching_once():
    """Once per process: let the native backend encrypt and decrypt AES-GCM packets whole
    (src/gcm.pxi; opt out with PSSH_NO_GCM_BATCH=1). Returns True or why not."""
    if not _GCM_STATE:
        state = backend.enable_gcm_batching()
        _GCM_STATE.append(state)
        if state is not True:
            logger.debug("AES-GCM packet batching: %s", state)
    return _GCM_STATE[0]
