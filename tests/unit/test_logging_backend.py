"""pssh.utils logging helpers, loggers at import, load_private_key, and backend selection."""

import io
import json
import logging
import os
import subprocess
import sys

import pytest

import pssh
from pssh import utils
from pssh.exceptions import PKeyFileError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(code, **env_changes):
    env = dict(os.environ)
    env.pop("PSSH_PURE_PYTHON", None)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return proc.stdout.decode().strip()


@pytest.fixture
def restore_logger():
    """Give back loggers' handlers and levels after a test changed them."""
    saved = []

    def keep(logger):
        saved.append((logger, list(logger.handlers), logger.level))
        return logger

    yield keep
    for logger, handlers, level in saved:
        logger.handlers[:] = handlers
        logger.setLevel(level)


def stream_handlers(logger):
    return [h for h in logger.handlers if isinstance(h, logging.StreamHandler)
            and not isinstance(h, logging.NullHandler)]


# -- logging -------------------------------------------------------------------------------------

def test_loggers_have_one_null_handler_after_import():
    code = ("import logging, json, pssh, pssh.utils\n"
            "names = lambda l: [type(h).__name__ for h in l.handlers]\n"
            "print(json.dumps([names(logging.getLogger('pssh')),"
            " names(logging.getLogger('pssh.host_logger')),"
            " pssh.utils.logger is logging.getLogger('pssh'),"
            " pssh.utils.host_logger is pssh.host_logger]))")
    assert json.loads(run_python(code)) == [["NullHandler"], ["NullHandler"], True, True]


def test_import_prints_nothing():
    code = "import sys, io; sys.stderr = io.StringIO(); import pssh; print(repr(sys.stderr.getvalue()))"
    assert run_python(code) == "''"


def test_same_logger_objects():
    assert utils.logger is pssh.logger is logging.getLogger("pssh")
    assert utils.host_logger is pssh.host_logger is logging.getLogger("pssh.host_logger")


def test_enable_logger_adds_one_handler_only(restore_logger, caplog):
    logger = restore_logger(logging.getLogger("pssh.unit-test-logger"))
    utils.enable_logger(logger)
    assert logger.level == logging.INFO
    assert len(stream_handlers(logger)) == 1
    utils.enable_logger(logger, level=logging.DEBUG)
    assert logger.level == logging.DEBUG
    assert len(stream_handlers(logger)) == 1
    assert any("already has a StreamHandler" in r.getMessage() for r in caplog.records
               if r.name == "pssh")


def test_enable_logger_format(restore_logger):
    logger = restore_logger(logging.getLogger("pssh.unit-test-format"))
    utils.enable_logger(logger)
    handler = stream_handlers(logger)[0]
    handler.stream = io.StringIO()
    logger.info("hello %s", "there")
    text = handler.stream.getvalue()
    assert "INFO" in text and "pssh.unit-test-format" in text and text.endswith("hello there\n")


def test_enable_host_logger(restore_logger):
    restore_logger(pssh.host_logger)
    utils.enable_host_logger()
    utils.enable_host_logger()
    assert len(stream_handlers(pssh.host_logger)) == 1
    assert pssh.host_logger.level == logging.INFO
    assert pssh.enable_host_logger is utils.enable_host_logger


def test_enable_debug_logger(restore_logger):
    restore_logger(pssh.logger)
    utils.enable_debug_logger()
    assert pssh.logger.level == logging.DEBUG
    assert len(stream_handlers(pssh.logger)) == 1


# -- load_private_key ----------------------------------------------------------------------------

def test_load_private_key(tmp_path):
    path = tmp_path / "key"
    path.write_bytes(b"KEY DATA")
    assert utils.load_private_key(str(path)) == b"KEY DATA"
    assert utils.load_private_key(b"RAW") == b"RAW"
    with open(path) as fh:
        assert utils.load_private_key(fh) == b"KEY DATA"
    with pytest.raises(PKeyFileError) as info:
        utils.load_private_key(str(tmp_path / "missing"))
    assert "missing" in str(info.value)


# -- backend selection ---------------------------------------------------------------------------

CODE_BACKEND = "import pssh; print(pssh.backend_name())"


def native_importable():
    code = "import importlib.util; print(importlib.util.find_spec('pssh._native') is not None)"
    return run_python(code) == "True"


def test_pure_python_env_forces_pure():
    assert run_python(CODE_BACKEND, PSSH_PURE_PYTHON="1") == "pure"
    assert run_python(CODE_BACKEND, PSSH_PURE_PYTHON="yes") == "pure"


def test_native_by_default_when_built():
    if not native_importable():
        pytest.skip("pssh._native is not built")
    assert run_python(CODE_BACKEND) == "native"
    assert run_python(CODE_BACKEND, PSSH_PURE_PYTHON="0") == "native"
    assert run_python(CODE_BACKEND, PSSH_PURE_PYTHON="") == "native"


def test_backend_modules_agree_on_names():
    code = ("import pssh.core.backend as b; print(b.backend_name(), b.backend.BACKEND_NAME, "
            "b.fallback_reason is None)")
    assert run_python(code, PSSH_PURE_PYTHON="1") == "pure pure False"


def test_backends_give_the_pump_answers_the_same_values():
    if not native_importable():
        pytest.skip("pssh._native is not built")
    import pssh._native as native
    import pssh._pure as pure
    answers = (native.BUFFER_FULL, native.PASS_DONE)
    assert answers == (pure.BUFFER_FULL, pure.PASS_DONE)
    # never one of libssh2's codes (<= 0), never each other
    assert min(answers) > 0 and len(set(answers)) == 2


def test_this_process_backend_matches_env():
    expected = "pure" if os.environ.get("PSSH_PURE_PYTHON", "") not in ("", "0") else None
    name = pssh.backend_name()
    assert name in ("native", "pure")
    if expected:
        assert name == expected
