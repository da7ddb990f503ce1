"""The one binding to the libssh2 copy that ssh2-python loaded, made from the declarations of
:mod:`pssh.core.libssh2_declarations`, and the self-check every table of it must pass.

ssh2-python's wheel loads a private libssh2; pssh must call that copy, on the handles its
objects hold. The functions are looked up once here, through the already loaded
``ssh2.session`` module (never loading anything new), after checking the layout of the
ssh2-python objects the handles are read from, and proven by a round trip (a session value
set through the table is seen by ssh2-python and back). Python callers (agent forwarding, exit
signals, ``posix-rename``, the pure backend) call :data:`LIB`; ``pssh._native`` takes the same
function addresses (:func:`addresses`) into its C table, and runs :func:`layout_problems` and
:func:`round_trip_problem` on its compiled structs and table. When this binding fails,
:data:`LIB` is None with :data:`unavailable_reason`, the native backend does not load, and
the pure backend degrades (in-place uploads, exit signals unknown, agent forwarding refused).
"""
import ctypes
import importlib
import logging
import os
from typing import Callable, Dict, List, Mapping, Optional

import ssh2.session
import ssh2.sftp_handle

from pssh.core.libssh2_declarations import FUNCTIONS, OBJECTS

__all__ = ["LIB", "unavailable_reason", "pointer", "mark_sftp_handle_closed", "addresses",
           "declared_sizes", "layout_problems", "round_trip_problem", "AUTHAGENT_CALLBACK",
           "CALLBACK_AUTHAGENT"]

logger = logging.getLogger(__name__)

CALLBACK_AUTHAGENT = 7      # LIBSSH2_CALLBACK_AUTHAGENT

# void (LIBSSH2_SESSION *, LIBSSH2_CHANNEL *, void **abstract)
AUTHAGENT_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)

_CTYPES = {"void": None, "int": ctypes.c_int, "long": ctypes.c_long,
           "size_t": ctypes.c_size_t, "ssize_t": ctypes.c_ssize_t, "void *": ctypes.c_void_p,
           "char *": ctypes.c_char_p, "const char *": ctypes.c_char_p,
           "object": ctypes.c_void_p}


def _structure(class_name, fields):
    # PyObject_HEAD as this interpreter has it (object.__basicsize__), pointer-aligned.
    head = ctypes.c_void_p * (object.__basicsize__ // ctypes.sizeof(ctypes.c_void_p))
    return type(class_name, (ctypes.Structure,),
                {"_fields_": [("ob_base", head)]
                 + [(name, _CTYPES[ctype]) for name, ctype in fields]})


def _declared_structures():
    structures = {}
    for module, class_name, fields in OBJECTS:
        cls = getattr(importlib.import_module(module), class_name)
        structures[cls] = _structure(class_name, fields)
    return structures


_STRUCTURES = _declared_structures()
_HANDLE_OFFSETS = {cls: getattr(struct, struct._fields_[1][0]).offset
                   for cls, struct in _STRUCTURES.items()}
_SFTP_HANDLE_CLOSED = _STRUCTURES[ssh2.sftp_handle.SFTPHandle]._closed.offset


def declared_sizes() -> Dict[str, int]:
    """The size of each declared ssh2-python object, by ``module.class`` name."""
    return {_qualified(cls): ctypes.sizeof(struct) for cls, struct in _STRUCTURES.items()}


def _qualified(cls):
    return "%s.%s" % (cls.__module__, cls.__qualname__)


def layout_problems(sizes: Mapping[str, int]) -> List[str]:
    """What is wrong with a table's object layouts: ``sizes`` (``module.class`` -> the size
    that table reads the object with) must cover every declared object and equal both the
    declared size and the type's ``tp_basicsize``. Empty when all agree."""
    problems = []
    declared = declared_sizes()
    for cls in _STRUCTURES:
        name = _qualified(cls)
        size = sizes.get(name)
        if size != declared[name] or size != cls.__basicsize__:
            problems.append("%s: %s bytes, declared %s, tp_basicsize %s"
                            % (name, size, declared[name], cls.__basicsize__))
    return problems


def round_trip_problem(set_timeout: Callable[[object, int], None],
                       get_timeout: Callable[[object], int]) -> Optional[str]:
    """Prove that a table reaches the libssh2 state ssh2-python uses: a session timeout set
    through it (``set_timeout(session, ms)``) must be what ssh2-python reads, and one set
    by ssh2-python what it reads (``get_timeout(session)``). None when both hold."""
    session = ssh2.session.Session()
    set_timeout(session, 4321)
    seen = session.get_timeout()
    if seen != 4321:
        return "a timeout set through the table reads %r in ssh2-python, not 4321" % (seen,)
    session.set_timeout(1234)
    seen = get_timeout(session)
    if seen != 1234:
        return "a timeout set in ssh2-python reads %r through the table, not 1234" % (seen,)
    return None


class _Functions:
    """The bound libssh2 functions, as attributes named without the ``libssh2_`` prefix."""


def _load():
    problems = layout_problems(declared_sizes())
    if problems:
        return None, "ssh2-python object layout changed (%s)" % "; ".join(problems)
    try:
        # RTLD_NOLOAD: a handle on the module already loaded, never a second libssh2.
        library = ctypes.CDLL(ssh2.session.__file__,
                              mode=getattr(os, "RTLD_NOLOAD", 0) | ctypes.RTLD_LOCAL)
    except OSError as exc:
        return None, "no handle on the loaded ssh2.session module: %s" % (exc,)
    functions, missing = _Functions(), []
    for name, restype, argtypes in FUNCTIONS:
        try:
            function = getattr(library, "libssh2_" + name)
        except AttributeError:
            missing.append("libssh2_" + name)
            continue
        function.restype = _CTYPES[restype]
        function.argtypes = [_CTYPES[ctype] for ctype in argtypes]
        setattr(functions, name, function)
    if missing:
        return None, "libssh2 symbols not found via ssh2-python: %s" % ", ".join(missing)
    problem = round_trip_problem(
        lambda session, value: functions.session_set_timeout(pointer(session), value),
        lambda session: functions.session_get_timeout(pointer(session)))
    if problem:
        return None, "libssh2 self-check failed: %s" % problem
    return functions, None


def pointer(obj) -> int:
    """The libssh2 handle inside an ssh2-python Session, Channel, SFTP or SFTPHandle."""
    offset = _HANDLE_OFFSETS.get(type(obj))
    if offset is None:
        raise TypeError("no declared layout for %s" % type(obj).__name__)
    return ctypes.c_void_p.from_address(id(obj) + offset).value


def addresses() -> Dict[str, int]:
    """Each bound function's address, by its name in the declarations (for ``pssh._native``)."""
    if LIB is None:
        raise ImportError("the libssh2 binding is unavailable: %s" % unavailable_reason)
    return {name: ctypes.cast(getattr(LIB, name), ctypes.c_void_p).value
            for name, _restype, _argtypes in FUNCTIONS}


def mark_sftp_handle_closed(handle) -> bool:
    """Set the ``_closed`` flag of an ssh2-python SFTPHandle, so that its deallocator never
    calls libssh2 on it (the native backend's ``forget_sftp_handle`` does the same through
    its compiled struct); False when the checked layout is unavailable."""
    if LIB is None or type(handle) is not ssh2.sftp_handle.SFTPHandle:
        return False
    ctypes.c_int.from_address(id(handle) + _SFTP_HANDLE_CLOSED).value = 1
    return True


LIB, unavailable_reason = _load()
if LIB is None:
    logger.debug("direct libssh2 calls disabled: %s", unavailable_reason)
