"""Shared pytest set-up: repo root on sys.path, markers, keys and real sshd servers.

Servers come from ``embedded_server`` (real OpenSSH sshd on loopback). Every server started in
the session is stopped at its end, also on Ctrl-C or SIGTERM.
"""

import collections
import os
import shutil
import signal
import sys
import tempfile

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from embedded_server import (  # noqa: E402
    OpenSSHServer, ServerFarm, ensure_password_user, login_user, make_user_key, stop_all_servers,
)

# The Ctrl-C tests send SIGINT to the programs they start. A suite started with SIGINT ignored
# (under nohup, or as a background job of a non-interactive shell) would hand that on: exec
# keeps an ignored signal ignored, and Python then installs no KeyboardInterrupt. A handler,
# unlike SIG_IGN, is reset to the default by exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _default_login_user(tmp_path_factory):
    """Clients default to getpass.getuser(), which reads $USER/$LOGNAME first: point it at the
    account the embedded servers log in (the unprivileged test user when run as root).
    pytest's temporary root is created first, since its name depends on the same lookup."""
    tmp_path_factory.getbasetemp()
    os.environ["USER"] = os.environ["LOGNAME"] = login_user()

ENCRYPTED_KEY_PASSPHRASE = "secret-pass"
DEFAULT_TEST_TIMEOUT = 120
FARM_SIZE = 5

PasswordUser = collections.namedtuple("PasswordUser", ["name", "password"])


# -- options, markers, collection --------------------------------------------------------------

def pytest_addoption(parser):
    parser.addoption("--scale", action="store_true", default=False,
                     help="run the opt-in tests marked 'scale' (also PSSH_SCALE=1)")


def _scale_enabled(config):
    return config.getoption("--scale") or os.environ.get("PSSH_SCALE") == "1"


def pytest_configure(config):
    config.addinivalue_line("markers", "scale: many connections; opt-in with --scale or PSSH_SCALE=1")
    config.addinivalue_line("markers", "benchmark: measures speed; informative, not a correctness check")
    _install_sigterm_handler()


def _timeout_configured(config):
    """True if the user chose a pytest-timeout value themselves (option, ini or env)."""
    try:
        if config.getoption("timeout") is not None:
            return True
    except ValueError:
        pass
    try:
        if config.getini("timeout"):
            return True
    except ValueError:
        pass
    return bool(os.environ.get("PYTEST_TIMEOUT"))


def pytest_collection_modifyitems(config, items):
    scale_dir = os.path.join(REPO_ROOT, "tests", "scale") + os.sep
    run_scale = _scale_enabled(config)
    skip_scale = pytest.mark.skip(reason="scale test: opt in with --scale or PSSH_SCALE=1")
    add_timeout = config.pluginmanager.hasplugin("timeout") and not _timeout_configured(config)
    for item in items:
        if str(item.fspath).startswith(scale_dir) and item.get_closest_marker("scale") is None:
            item.add_marker(pytest.mark.scale)
        if item.get_closest_marker("scale") is not None and not run_scale:
            item.add_marker(skip_scale)
        if add_timeout and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT))


def pytest_sessionfinish(session, exitstatus):
    stop_all_servers()


def _install_sigterm_handler():
    """On SIGTERM stop our sshd servers, then die of SIGTERM as before (atexit does not run then)."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def on_sigterm(signum, frame):
        try:
            stop_all_servers()
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    try:
        signal.signal(signal.SIGTERM, on_sigterm)
    except ValueError:  # not the main thread
        pass


# -- keys --------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def user_key(keys_dir):
    """ed25519 KeyPair(private, public), authorized on every server fixture."""
    return make_user_key(keys_dir, kind="ed25519")


@pytest.fixture(scope="session")
def rsa_key(keys_dir):
    """RSA 3072 KeyPair, authorized on every server fixture."""
    return make_user_key(keys_dir, kind="rsa")


@pytest.fixture(scope="session")
def encrypted_key(keys_dir):
    """ed25519 KeyPair encrypted with ``encrypted_key_passphrase`` ("secret-pass"), authorized."""
    return make_user_key(keys_dir, kind="ed25519", passphrase=ENCRYPTED_KEY_PASSPHRASE)


@pytest.fixture(scope="session")
def encrypted_key_passphrase():
    return ENCRYPTED_KEY_PASSPHRASE


@pytest.fixture(scope="session")
def unauthorized_key(keys_dir):
    """A key no server fixture accepts."""
    return make_user_key(keys_dir, kind="ed25519", name="id_unauthorized")


@pytest.fixture(scope="session")
def authorized_keys(user_key, rsa_key, encrypted_key):
    """Public key paths every server fixture authorizes."""
    return [user_key.public, rsa_key.public, encrypted_key.public]


# -- servers -----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def sshd(authorized_keys):
    """One OpenSSHServer on 127.0.0.1 for the whole session. Do not kill it: use fresh_sshd."""
    srv = OpenSSHServer(listen_ip="127.0.0.1", authorized_keys=authorized_keys)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def sshd_farm(authorized_keys):
    """ServerFarm of 5 servers on 127.0.0.2 ... 127.0.0.6, one port."""
    farm = ServerFarm(FARM_SIZE, first_ip="127.0.0.2", authorized_keys=authorized_keys)
    try:
        farm.start()
        yield farm
    finally:
        farm.stop_all()


@pytest.fixture
def fresh_sshd(authorized_keys):
    """A server of this test's own on 127.0.0.1: the test may kill, restart or stop it."""
    srv = OpenSSHServer(listen_ip="127.0.0.1", authorized_keys=authorized_keys)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def make_sshd(authorized_keys):
    """Factory for servers with custom settings: ``make_sshd(extra_config={...}, ...)``.

    Keyword arguments go to OpenSSHServer (the fixture keys are authorized unless
    ``authorized_keys`` is given); ``start=False`` returns it unstarted. All are stopped after
    the test.
    """
    servers = []

    def factory(start=True, **kwargs):
        kwargs.setdefault("authorized_keys", authorized_keys)
        srv = OpenSSHServer(**kwargs)
        servers.append(srv)
        if start:
            srv.start()
        return srv

    try:
        yield factory
    finally:
        for srv in servers:
            srv.stop()


@pytest.fixture(scope="session")
def password_user():
    """PasswordUser(name, password) of a local account made for the tests; root only."""
    if os.geteuid() != 0:
        pytest.skip("the password test user can only be created as root")
    # as root a failure here is an error, not a skip: CI runs as root and must test this
    return PasswordUser(*ensure_password_user())


@pytest.fixture(scope="session")
def backend_name():
    """'pure' when PSSH_PURE_PYTHON=1, else 'native' (informational: what was asked for)."""
    return os.environ.get("PSSH_PURE_PYTHON") == "1" and "pure" or "native"


@pytest.fixture
def scratch():
    """A directory both the test (root) and the server's login user can write."""
    path = tempfile.mkdtemp(prefix="pssh-xfer-")
    os.chmod(path, 0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
