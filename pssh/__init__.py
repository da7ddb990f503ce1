"""pssh: parallel SSH client library on libssh2 (ssh2-python) and gevent.

Public names are re-exported here explicitly; see README.rst for usage.
"""
import logging

from pssh._version import __version__

logger = logging.getLogger("pssh")
host_logger = logging.getLogger("pssh.host_logger")
logger.addHandler(logging.NullHandler())
host_logger.addHandler(logging.NullHandler())

from pssh import exceptions, utils  # noqa: E402
from pssh.core.backend import backend_name  # noqa: E402
from pssh.config import HostConfig  # noqa: E402
from pssh.exceptions import (  # noqa: E402
    AuthenticationException, ConnectionErrorException, SSHException, UnknownHostException)
from pssh.output import HostOutput  # noqa: E402
from pssh.parallel import ParallelSSHClient  # noqa: E402
from pssh.single import SSHClient  # noqa: E402
from pssh.utils import enable_host_logger  # noqa: E402

__all__ = [
    "__version__", "logger", "host_logger", "backend_name", "ParallelSSHClient", "SSHClient", "HostConfig",
    "HostOutput", "exceptions", "utils", "enable_host_logger", "UnknownHostException",
    "AuthenticationException", "ConnectionErrorException", "SSHException",
]
