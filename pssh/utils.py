"""Logging helpers (2.x API) and the 1.x ``load_private_key``."""
import logging

__all__ = ["enable_logger", "enable_host_logger", "enable_debug_logger", "logger", "host_logger",
           "load_private_key"]

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
    from pssh._connect import read_private_key
    return read_private_key(pkey)
