"""Logging helpers (2.x API) and the 1.x ``load_private_key`` and ``read_openssh_config``."""
import logging
import os

from pssh import openssh_config
from pssh.connection.connect import read_private_key
from pssh.exceptions import PKeyFileError

__all__ = ["enable_logger", "enable_host_logger", "enable_debug_logger", "logger", "host_logger",
           "load_private_key", "read_openssh_config"]

logger = logging.getLogger("pssh")
host_logger = logging.getLogger("pssh.host_logger")

_FORMAT = "%(asctime)s %(levelname)-8s %(name)-15s %(message)s"


def enable_logger(_logger, level=logging.INFO):
    """Set ``level`` on ``_logger`` and give it a stderr handler unless it has one."""
    _logger.setLevel(level)
    if any(isinstance(handler, logging.StreamHandler) for handler in _logger.handlers):
        logger.warning("Logger %s already has a StreamHandler", _logger.name)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(_FORMAT))
    _logger.addHandler(handler)


def enable_host_logger():
    """Log each remote output line as ``[host]\\tline`` when it is read."""
    enable_logger(host_logger)


def enable_debug_logger():
    """Debug logging for the whole ``pssh`` hierarchy."""
    enable_logger(logger, level=logging.DEBUG)


def load_private_key(pkey):
    """1.x helper: returns what the 2.x clients take as ``pkey`` (the key file's bytes).

    A path is read; bytes are returned as they are. Unreadable paths raise
    :class:`pssh.exceptions.PKeyFileError`.
    """
    if isinstance(pkey, bytes):
        return pkey
    if hasattr(pkey, "read"):
        data = pkey.read()
        return data.encode() if isinstance(data, str) else data
    return read_private_key(pkey)


def read_openssh_config(host, config_file=None):
    """1.x helper: ``(hostname, user, port, pkey)`` for ``host`` from an OpenSSH config file.

    ``config_file`` defaults to ``~/.ssh/config``; None when the file does not
    exist. ``hostname`` is ``HostName`` (else ``host``), ``user`` None unless
    set, ``port`` 22 unless set, ``pkey`` the bytes of the first
    ``IdentityFile`` (as :func:`load_private_key` returns them; 1.x returned a
    paramiko key), or None when there is none or it cannot be read.
    Parsing is pssh's (:mod:`pssh.openssh_config`): ``Match``, ``Include`` and
    tokens work, and a malformed supported value raises ``SSHConfigError``.
    """
    path = os.path.expanduser(config_file or openssh_config.DEFAULT_PATH)
    if not os.path.isfile(path):
        return None
    found = openssh_config.load(path).lookup(host)
    pkey = None
    identities = found.get("identity_files") or ()
    if identities:
        try:
            pkey = load_private_key(os.path.expanduser(identities[0]))
        except PKeyFileError as exc:
            logger.error("Could not load identity file of %s: %s", host, exc)
    return found.get("hostname") or host, found.get("user"), found.get("port") or 22, pkey
