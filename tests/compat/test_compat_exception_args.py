"""The positional ``args`` of the exceptions parallel-ssh 2.16 raised, as user code indexes them.

Layouts from parallel-ssh 2.16's public source (pssh/clients/base/single.py,
pssh/clients/base/parallel.py, pssh/clients/native/single.py), written down
as facts:

==================================  ==============================================
failure (2.x class)                 ``args``
==================================  ==============================================
unresolvable host (UnknownHost)     (fmt, host, reason, attempt, num_retries)
refused (builtin Refused)           (errno, strerror, host, port)
authentication (Authentication)     (fmt, host, port, cause, attempt, num_retries)
missing key file (PKeyFileError)    (fmt, path)
host_config not a list              (fmt, type of host_config)
SSH handshake timeout (Timeout)     (fmt, host, port, cause)
join timeout (Timeout)              (fmt, timeout, finished outputs, unfinished)
SFTP download, no remote file       (fmt, remote path, host)  (SFTPIOError)
SCP download, no remote file        (fmt, remote path, host, cause)  (SCPError)
proxy connect failure (ProxyError)  (fmt, cause)
==================================  ==============================================

pssh keeps ``host``/``port``/``cause`` attributes and a readable ``str()`` on
top. Cases where pssh differs today are strict xfails naming the file to change.
"""
import builtins
import os
import uuid

import gevent
import gevent.server
import pytest

from embedded_server import free_port

GUARD = 30


def _connect(server, key, **kwargs):
    from pssh.clients import SSHClient
    opts = dict(port=server.port, user=server.user, pkey=key.private, num_retries=1,
                retry_delay=0.01, timeout=10, allow_agent=False, identity_auth=False)
    opts.update(kwargs)
    with gevent.Timeout(GUARD, AssertionError("connect hung")):
        return SSHClient(server.host, **opts)


def test_unknown_host_args():
    from pssh.clients import SSHClient
    from pssh.exceptions import UnknownHostError, UnknownHostException
    host = "pssh-compat-%s.invalid" % uuid.uuid4().hex[:8]
    with gevent.Timeout(GUARD, AssertionError("DNS failure hung")):
        with pytest.raises(UnknownHostException) as info:
            SSHClient(host, num_retries=2, retry_delay=0.01, allow_agent=False,
                      identity_auth=False)
    ex = info.value
    assert isinstance(ex, UnknownHostError)
    assert ex.args[1] == host
    assert isinstance(ex.args[2], str) and ex.args[2]
    assert ex.args[-2:] == (2, 2)
    assert host in str(ex)


def test_refused_args_host_and_port_after_errno_and_text():
    from pssh.clients import SSHClient
    from pssh.exceptions import ConnectionError, ConnectionErrorException
    port = free_port("127.0.0.1")
    with gevent.Timeout(GUARD, AssertionError("refused connect hung")):
        with pytest.raises(ConnectionErrorException) as info:
            SSHClient("127.0.0.1", port=port, num_retries=3, retry_delay=5, allow_agent=False,
                      identity_auth=False)
    ex = info.value
    assert isinstance(ex, ConnectionError) and isinstance(ex, builtins.ConnectionRefusedError)
    assert isinstance(ex.args[0], int) and isinstance(ex.args[1], str)
    assert ex.args[2:4] == ("127.0.0.1", port)
    assert ex.host == "127.0.0.1" and ex.port == port


def test_authentication_args_report_attempted_and_allowed(sshd, unauthorized_key):
    from pssh.exceptions import AuthenticationError, AuthenticationException
    with pytest.raises(AuthenticationException) as info:
        _connect(sshd, unauthorized_key, num_retries=2)
    ex = info.value
    assert isinstance(ex, AuthenticationError)
    assert ex.args[1:3] == (sshd.host, sshd.port)
    assert ex.args[3] is not None
    attempted, allowed = ex.args[-2:]
    # pssh reports at once (an identical retry cannot succeed); the pair stays consistent.
    assert allowed == 2 and 1 <= attempted <= allowed


def test_missing_key_file_args(tmp_path):
    from pssh.clients import ParallelSSHClient
    from pssh.exceptions import PKeyFileError
    path = str(tmp_path / "no-such-key")
    with pytest.raises(PKeyFileError) as info:
        ParallelSSHClient(["127.0.0.1"], pkey=path)
    assert info.value.args[1] == os.path.normpath(path)


def test_host_config_error_args_hold_the_type():
    from pssh.clients import ParallelSSHClient
    from pssh.exceptions import HostConfigError
    with pytest.raises(HostConfigError) as info:
        ParallelSSHClient(["127.0.0.1"], host_config={"127.0.0.1": {}})
    assert info.value.args[1] is dict


def test_handshake_timeout_args():
    from pssh.clients import SSHClient
    from pssh.exceptions import Timeout
    held = []
    server = gevent.server.StreamServer(("127.0.0.1", 0), lambda sock, _: held.append(sock)
                                        or gevent.sleep(GUARD))
    server.start()
    try:
        with gevent.Timeout(GUARD, AssertionError("silent server hung the client")):
            with pytest.raises(Timeout) as info:
                SSHClient("127.0.0.1", port=server.server_port, num_retries=1, timeout=1,
                          allow_agent=False, identity_auth=False)
    finally:
        server.stop(timeout=1)
    assert info.value.args[1:3] == ("127.0.0.1", server.server_port)


def test_join_timeout_args(sshd, user_key):
    from pssh.clients import ParallelSSHClient
    from pssh.exceptions import Timeout
    client = ParallelSSHClient([sshd.host], port=sshd.port, user=sshd.user,
                               pkey=user_key.private, num_retries=1, timeout=10,
                               allow_agent=False, identity_auth=False)
    with gevent.Timeout(GUARD, AssertionError("join hung")):
        output = client.run_command("sleep 5")
        with pytest.raises(Timeout) as info:
            client.join(output, timeout=0.3)
    fmt, timeout, finished, unfinished = info.value.args
    assert isinstance(fmt, str) and timeout == 0.3
    assert finished == [] and unfinished == [output[0]]
    output[0].client.close_channel(output[0].channel)
    client.close()


@pytest.mark.parametrize("method,error,count", [("copy_remote_file", "SFTPIOError", 3),
                                                ("scp_recv", "SCPError", 4)])
def test_download_of_missing_file_args_name_path_then_host(sshd, user_key, tmp_path, method,
                                                           error, count):
    from pssh import exceptions
    client = _connect(sshd, user_key)
    remote = "/nonexistent-%s" % uuid.uuid4().hex[:8]
    with gevent.Timeout(GUARD, AssertionError("download hung")):
        with pytest.raises(getattr(exceptions, error)) as info:
            getattr(client, method)(remote, str(tmp_path / "local"))
    assert info.value.args[1:3] == (remote, sshd.host)
    assert len(info.value.args) == count
    client.close()


@pytest.mark.xfail(strict=True, reason=(
    "deliberate difference (README, 'Differences'): ProxyError args are (fmt, proxy_host, "
    "proxy_port, host, port, cause), naming the bastion and the target; 2.x: (fmt, cause). "
    "The underlying error is .cause (and the last arg of a connect failure); to adopt 2.x's layout change the ProxyError raises in "
    "pssh/connection/tunnel.py"))
def test_proxy_failure_args(user_key):
    from pssh.clients import SSHClient
    from pssh.exceptions import ProxyError
    port = free_port("127.0.0.1")
    with gevent.Timeout(GUARD, AssertionError("proxy failure hung")):
        with pytest.raises(ProxyError) as info:
            SSHClient("127.0.0.1", port=22, proxy_host="127.0.0.1", proxy_port=port,
                      pkey=user_key.private, num_retries=1, timeout=5, allow_agent=False,
                      identity_auth=False)
    assert len(info.value.args) == 2
    assert isinstance(info.value.args[1], Exception)


def test_too_few_host_args_is_host_argument_error():
    from pssh.clients import ParallelSSHClient
    from pssh.exceptions import HostArgumentError, HostArgumentException
    client = ParallelSSHClient(["127.0.0.1", "127.0.0.2"], port=free_port("127.0.0.1"),
                               num_retries=1)
    with pytest.raises(HostArgumentException) as info:
        client.run_command("echo %s", host_args=[("a",)])
    assert isinstance(info.value, HostArgumentError)


def test_too_few_format_arguments_is_type_error():
    from pssh.clients import ParallelSSHClient
    client = ParallelSSHClient(["127.0.0.1"], port=free_port("127.0.0.1"), num_retries=1)
    with pytest.raises(TypeError):
        client.run_command("echo %s %s", host_args=[("only-one",)])


# -- internals 2.x user code reaches ---------------------------------------------------------------

def test_host_clients_cache_is_keyed_by_position_and_host(sshd, user_key):
    from pssh.clients import ParallelSSHClient, SSHClient
    client = ParallelSSHClient([sshd.host, sshd.host], port=sshd.port, user=sshd.user,
                               pkey=user_key.private, num_retries=1, timeout=10,
                               allow_agent=False, identity_auth=False)
    with gevent.Timeout(GUARD, AssertionError("connect_auth hung")):
        gevent.joinall(client.connect_auth(), raise_error=True)
    first, second = client._host_clients[(0, sshd.host)], client._host_clients[(1, sshd.host)]
    assert isinstance(first, SSHClient) and first is not second
    client.close()


def test_host_client_pkey_holds_key_bytes(sshd, user_key):
    from pssh.clients import ParallelSSHClient
    client = ParallelSSHClient([sshd.host], port=sshd.port, user=sshd.user,
                               pkey=user_key.private, num_retries=1, timeout=10,
                               allow_agent=False, identity_auth=False)
    with gevent.Timeout(GUARD, AssertionError("connect_auth hung")):
        gevent.joinall(client.connect_auth(), raise_error=True)
    with open(user_key.private, "rb") as key_file:
        assert client._host_clients[(0, sshd.host)].pkey == key_file.read()
    client.close()
