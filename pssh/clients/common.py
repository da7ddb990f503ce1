"""2.x import path ``pssh.clients.common``: its private key and API checks, on pssh's."""
import logging

from pssh.exceptions import InvalidAPIUseError
from pssh.connection.settings import validate_pkey as _validate_pkey

__all__ = ["_validate_pkey_path", "_validate_pkey", "_validate_api"]

logger = logging.getLogger("pssh")


def _validate_pkey_path(pkey):
    """The normalised path of an existing key file, or None; ``PKeyFileError`` if missing."""
    if pkey is None:
        return None
    return _validate_pkey(str(pkey))


def _validate_api(keyboard_interactive, password):
    if keyboard_interactive and password is None:
        raise InvalidAPIUseError("keyboard_interactive=True requires a password")
