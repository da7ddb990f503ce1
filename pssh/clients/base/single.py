"""2.x import path ``pssh.clients.base.single``.

``BaseSSHClient`` is :class:`pssh.single.SSHClient`: pssh has one client
class, so ``isinstance`` checks and subclasses that override public methods
work; subclasses that implemented 2.x's private hooks (``_init_session``,
``_pkey_from_memory``...) have nothing to hook into. ``InteractiveShell`` and
``Stdin`` are pssh's classes. ``PollMixIn`` is an abstract class that pssh's
client is registered with, so ``isinstance(client, PollMixIn)`` holds.
Unlike 2.x, importing this module changes no gevent setting
(``Hub.NOT_ERROR``).
"""
import abc
import logging

from pssh.clients._compat import thread_pool
from pssh.output import Stdin
from pssh.shell import InteractiveShell
from pssh.single import SSHClient as BaseSSHClient

__all__ = ["BaseSSHClient", "InteractiveShell", "Stdin", "PollMixIn", "THREAD_POOL", "logger",
           "host_logger"]

logger = logging.getLogger("pssh.clients.base.single")
host_logger = logging.getLogger("pssh.host_logger")


class PollMixIn(abc.ABC):
    """The 2.x interface of a client that waits on its socket cooperatively."""

    def __init__(self, sock=None):
        self.sock = sock

    def poll(self, timeout=None):
        raise NotImplementedError

    def eagain(self, func, *args, **kwargs):
        raise NotImplementedError

    def eagain_write(self, write_func, data):
        raise NotImplementedError


PollMixIn.register(BaseSSHClient)


def __getattr__(name):
    if name == "THREAD_POOL":
        return thread_pool()
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
