"""The one libssh2 binding (pssh.core.libssh2, made from pssh.core.libssh2_declarations) and
its self-check, which both the ctypes table and pssh._native's C table must pass."""
import os
import subprocess
import sys

import ssh2.session

from pssh.core import libssh2
from pssh.core.libssh2_declarations import FUNCTIONS, OBJECTS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(code, **env):
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env=dict(os.environ, **env))
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_declared_layouts_match_ssh2_python():
    assert libssh2.LIB is not None, libssh2.unavailable_reason
    assert libssh2.layout_problems(libssh2.declared_sizes()) == []
    assert sorted(libssh2.declared_sizes()) == sorted(
        "%s.%s" % (module, name) for module, name, _fields in OBJECTS)


def test_a_wrong_or_missing_size_is_refused():
    sizes = libssh2.declared_sizes()
    wrong = dict(sizes, **{"ssh2.session.Session": sizes["ssh2.session.Session"] + 8})
    problems = libssh2.layout_problems(wrong)
    assert len(problems) == 1 and problems[0].startswith("ssh2.session.Session:")
    missing = dict(sizes)
    del missing["ssh2.channel.Channel"]
    assert [p.split(":")[0] for p in libssh2.layout_problems(missing)] == [
        "ssh2.channel.Channel"]


def test_a_table_that_misses_ssh2_pythons_state_fails_the_round_trip():
    assert libssh2.round_trip_problem(lambda session, ms: None, lambda session: 0)
    stored = {}
    problem = libssh2.round_trip_problem(lambda session, ms: stored.update(ms=ms),
                                         lambda session: stored["ms"])
    assert "set through the table" in problem
    assert libssh2.round_trip_problem(
        lambda session, ms: libssh2.LIB.session_set_timeout(libssh2.pointer(session), ms),
        lambda session: libssh2.LIB.session_get_timeout(libssh2.pointer(session))) is None


def test_every_declared_function_is_bound_once_for_both_tables():
    assert sorted(libssh2.addresses()) == sorted(name for name, _r, _a in FUNCTIONS)
    info = run_python("import importlib.util, sys\n"
                      "if importlib.util.find_spec('pssh._native') is None: sys.exit(0)\n"
                      "from pssh import _native\n"
                      "print(','.join(_native.self_check_info()['symbols']))")
    if info:  # the native module, when built, fills its C table from this binding
        assert info.split(",") == ["libssh2_" + name for name, _r, _a in FUNCTIONS]


def test_pointer_reads_the_declared_handle_field_only():
    session = ssh2.session.Session()
    assert libssh2.pointer(session)
    try:
        libssh2.pointer(object())
    except TypeError as exc:
        assert "object" in str(exc)
    else:
        raise AssertionError("pointer() read a handle out of an undeclared type")


# Declares one more field in ssh2-python's Session than it has, as an ssh2-python release
# that changed the object would look to pssh.
WRONG_LAYOUT = """
import importlib.util, sys
# Registered before pssh is imported: importing the package binds libssh2.
spec = importlib.util.spec_from_file_location("pssh.core.libssh2_declarations",
                                              "pssh/core/libssh2_declarations.py")
d = importlib.util.module_from_spec(spec)
spec.loader.exec_module(d)
sys.modules[spec.name] = d
d.OBJECTS = tuple((m, c, f + (("extra", "void *"),)) if c == "Session" else (m, c, f)
                  for m, c, f in d.OBJECTS)
from pssh.core import libssh2
print(libssh2.LIB is None)
print(libssh2.unavailable_reason)
import pssh.core.backend as b
print(b.backend_name())
print(b.fallback_reason)
"""


def test_a_changed_layout_disables_the_binding_and_the_native_backend():
    # Whatever backend this run forces: the native module must refuse by itself.
    lib_none, reason, backend, fallback = run_python(WRONG_LAYOUT,
                                                     PSSH_PURE_PYTHON="").splitlines()
    assert lib_none == "True"
    assert "layout changed" in reason and "ssh2.session.Session" in reason
    assert backend == "pure"
    if run_python("import importlib.util; print(importlib.util.find_spec('pssh._native') "
                  "is not None)") == "True":
        assert "layout changed" in fallback and "native module unavailable" in fallback
