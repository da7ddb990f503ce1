"""Every public module path and name of parallel-ssh 2.16 and 1.x imports from pssh.

The module map follows parallel-ssh 2.16's public source (pssh/clients/...,
pssh/config.py, pssh/output.py, pssh/exceptions.py, pssh/utils.py,
pssh/constants.py) and, for 1.x, the names its README and modules offered.
Also: the names 2.x user tests patch, GSS-API options refused rather than
dropped, and the 2.x ``ConcurrentRWBuffer``.
"""
import importlib
import os
import subprocess
import sys
from unittest import mock

import gevent
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

MODULES_2X = {
    "pssh": ["__version__", "logger", "host_logger"],
    "pssh.clients": ["ParallelSSHClient", "SSHClient"],
    "pssh.clients.native": ["ParallelSSHClient", "SSHClient", "logger"],
    "pssh.clients.native.parallel": ["ParallelSSHClient", "SSHClient", "logger"],
    "pssh.clients.native.single": ["SSHClient", "KeepAlive", "THREAD_POOL", "FORWARDER",
                                   "Session", "logger"],
    "pssh.clients.native.tunnel": ["LocalForwarder", "TunnelServer", "FORWARDER", "logger"],
    "pssh.clients.ssh": ["ParallelSSHClient", "SSHClient"],
    "pssh.clients.ssh.parallel": ["ParallelSSHClient", "logger"],
    "pssh.clients.ssh.single": ["SSHClient", "logger"],
    "pssh.clients.base": [],
    "pssh.clients.base.parallel": ["BaseParallelSSHClient", "logger"],
    "pssh.clients.base.single": ["BaseSSHClient", "InteractiveShell", "Stdin", "PollMixIn",
                                 "THREAD_POOL", "logger", "host_logger"],
    "pssh.clients.common": ["_validate_pkey_path", "_validate_pkey", "_validate_api"],
    "pssh.clients.reader": ["ConcurrentRWBuffer"],
    "pssh.config": ["HostConfig"],
    "pssh.output": ["HostOutput", "HostOutputBuffers", "BufferData"],
    "pssh.exceptions": [
        "NoIPv6AddressFoundError", "UnknownHostError", "UnknownHostException",
        "ConnectionError", "ConnectionErrorException", "AuthenticationError",
        "AuthenticationException", "SSHError", "SSHException", "HostArgumentError",
        "HostArgumentException", "SessionError", "SFTPError", "SFTPIOError", "ProxyError",
        "Timeout", "SCPError", "PKeyFileError", "ShellError", "HostConfigError",
        "InvalidAPIUseError"],
    "pssh.utils": ["enable_logger", "enable_host_logger", "enable_debug_logger", "logger",
                   "host_logger"],
    "pssh.constants": ["DEFAULT_RETRIES", "RETRY_DELAY"],
}

MODULES_1X = {
    "pssh": ["ParallelSSHClient", "SSHClient", "utils", "enable_host_logger",
             "UnknownHostException", "AuthenticationException", "ConnectionErrorException",
             "SSHException"],
    "pssh.pssh_client": ["ParallelSSHClient"],
    "pssh.ssh_client": ["SSHClient"],
    "pssh.agent": ["SSHAgent"],
    "pssh.utils": ["enable_logger", "enable_host_logger", "load_private_key",
                   "read_openssh_config"],
    "pssh.constants": ["DEFAULT_RETRIES"],
}


def _name_cases():
    for label, table in (("2.x", MODULES_2X), ("1.x", MODULES_1X)):
        for module, names in table.items():
            yield pytest.param(module, names, id="%s:%s" % (label, module))


@pytest.mark.parametrize("module,names", list(_name_cases()))
def test_module_and_names_import(module, names):
    mod = importlib.import_module(module)
    missing = [name for name in names if not hasattr(mod, name)]
    assert not missing, "%s lacks %s" % (module, missing)


def test_submodules_are_attributes_after_import_pssh_clients():
    # Run in a fresh interpreter: in this one other tests import the submodules anyway.
    code = ("import pssh.clients as c; "
            "print(c.native.SSHClient is c.SSHClient, c.native.parallel.ParallelSSHClient is "
            "c.ParallelSSHClient, c.base.single.BaseSSHClient is c.SSHClient, "
            "c.reader.ConcurrentRWBuffer.__name__, callable(c.common._validate_pkey))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True", "ConcurrentRWBuffer", "True"]


def test_importing_2x_modules_changes_no_gevent_setting():
    code = ("import gevent.hub; before = gevent.hub.Hub.NOT_ERROR; "
            "import pssh.clients.base.single, pssh.clients.base.parallel, pssh.clients.ssh; "
            "print(gevent.hub.Hub.NOT_ERROR == before)")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_2x_entry_points_are_pssh_classes():
    from pssh.clients import ParallelSSHClient, SSHClient
    from pssh.clients.base.parallel import BaseParallelSSHClient
    from pssh.clients.base.single import BaseSSHClient, InteractiveShell, PollMixIn, Stdin
    from pssh.output import Stdin as PsshStdin
    from pssh.shell import InteractiveShell as PsshShell
    import pssh.parallel
    import pssh.single
    assert ParallelSSHClient is pssh.parallel.ParallelSSHClient is BaseParallelSSHClient
    assert SSHClient is pssh.single.SSHClient is BaseSSHClient
    assert InteractiveShell is PsshShell and Stdin is PsshStdin
    assert issubclass(SSHClient, PollMixIn)


def test_libssh_clients_are_pssh_clients():
    from pssh.clients.ssh import ParallelSSHClient, SSHClient
    import pssh.parallel
    import pssh.single
    assert issubclass(ParallelSSHClient, pssh.parallel.ParallelSSHClient)
    assert issubclass(SSHClient, pssh.single.SSHClient)
    client = ParallelSSHClient(["127.0.0.1"], gssapi_auth=False, gssapi_server_identity=None)
    assert client.gssapi_auth is False


GSSAPI_REQUESTS = [
    {"gssapi_auth": True},
    {"gssapi_server_identity": "host/server@REALM"},
    {"gssapi_client_identity": "user@REALM"},
    {"gssapi_delegate_credentials": True},
]


@pytest.mark.parametrize("options", GSSAPI_REQUESTS, ids=lambda options: next(iter(options)))
def test_gssapi_requests_raise_instead_of_being_dropped(options):
    from pssh.clients.ssh import ParallelSSHClient, SSHClient
    from pssh.config import HostConfig
    from pssh.exceptions import InvalidAPIUseError
    name = next(iter(options))
    with pytest.raises(InvalidAPIUseError, match="libssh2.*no GSS-API") as info:
        HostConfig(**options)
    assert name in str(info.value)
    with pytest.raises(InvalidAPIUseError, match="GSS-API"):
        ParallelSSHClient(["127.0.0.1"], **options)
    # The single client refuses before any connection attempt (port 9 would be refused).
    with pytest.raises(InvalidAPIUseError, match="GSS-API"):
        SSHClient("127.0.0.1", port=9, num_retries=1, timeout=5, **options)


def test_gssapi_fields_off_are_accepted():
    from pssh.config import HostConfig
    config = HostConfig(gssapi_auth=False, gssapi_server_identity=None,
                        gssapi_client_identity=None, gssapi_delegate_credentials=False)
    assert config.gssapi_auth is False and config.gssapi_delegate_credentials is False


# -- names 2.x user tests patch ------------------------------------------------------------------

PATCHED_NAMES = [
    "pssh.clients.native.single.Session",
    "pssh.clients.native.single.KeepAlive",
    "pssh.clients.native.single.THREAD_POOL",
    "pssh.clients.native.single.FORWARDER",
    "pssh.clients.native.tunnel.FORWARDER",
    "pssh.clients.native.parallel.SSHClient",
    "pssh.clients.base.single.THREAD_POOL",
]


@pytest.mark.parametrize("target", PATCHED_NAMES)
def test_2x_patch_targets_exist_and_restore(target):
    module_name, name = target.rsplit(".", 1)
    module = importlib.import_module(module_name)
    before = getattr(module, name)
    with mock.patch(target) as patched:
        assert getattr(module, name) is patched
    assert getattr(module, name) is before or name == "THREAD_POOL"


def test_thread_pool_is_gevents():
    from pssh.clients.native.single import THREAD_POOL
    assert THREAD_POOL is gevent.get_hub().threadpool


def test_placeholders_say_what_to_use_instead():
    from pssh.clients.native.single import KeepAlive
    from pssh.clients.native.tunnel import FORWARDER, LocalForwarder, TunnelServer
    from pssh.exceptions import InvalidAPIUseError
    assert isinstance(FORWARDER, LocalForwarder)
    FORWARDER.shutdown()  # 2.x registers this at exit; it must stay harmless
    with pytest.raises(InvalidAPIUseError, match="gevent hub"):
        FORWARDER.enqueue(None, "host", 22)
    with pytest.raises(InvalidAPIUseError, match="gevent hub"):
        TunnelServer(None, "host", 22)
    with pytest.raises(InvalidAPIUseError, match="keepalive_seconds"):
        KeepAlive(None, None)


def test_patching_native_parallel_sshclient_changes_what_parallel_builds():
    from pssh.clients.native.parallel import ParallelSSHClient
    with mock.patch("pssh.clients.native.parallel.SSHClient") as fake:
        client = ParallelSSHClient(["127.0.0.1"], port=9, num_retries=1, timeout=2)
        greenlets = client.connect_auth()
        gevent.joinall(greenlets, timeout=10)
        assert fake.called
        assert greenlets[0].value is fake.return_value


# -- pssh.clients.reader.ConcurrentRWBuffer ------------------------------------------------------

def test_rw_buffer_read_returns_all_unread_bytes_or_none():
    from pssh.clients.reader import ConcurrentRWBuffer
    buffer = ConcurrentRWBuffer()
    assert buffer.read() is None
    buffer.write(b"ab")
    buffer.write(b"c\n")
    assert buffer.read() == b"abc\n"
    assert buffer.read() is None
    assert not buffer.eof.is_set()
    buffer.eof.set()
    assert buffer.eof.is_set()


def test_rw_buffer_iterates_chunks_until_eof_across_greenlets():
    from pssh.clients.reader import ConcurrentRWBuffer
    buffer = ConcurrentRWBuffer()

    def writer():
        for chunk in (b"one\n", b"two", b"\nthree"):
            gevent.sleep(0.01)
            buffer.write(chunk)
        buffer.eof.set()

    with gevent.Timeout(5, AssertionError("iteration did not end at eof")):
        gevent.spawn(writer)
        assert b"".join(buffer) == b"one\ntwo\nthree"
    assert list(buffer) == []
    assert buffer.eof.wait(0) is True
