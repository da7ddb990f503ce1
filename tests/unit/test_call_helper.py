"""pssh.core.calls: the one call helper and its one error contract (no network)."""
import pytest
from ssh2.error_codes import LIBSSH2_ERROR_EAGAIN
from ssh2.exceptions import ChannelRequestDenied, SFTPProtocolError, SocketRecvError

from pssh.core.calls import Caller, CallFailed
from pssh.core.hub import DeadlineExceeded, WaiterClosed
from pssh.exceptions import ConnectionLostError, SessionError, Timeout


class FakeWaiter:
    def __init__(self, fail=None):
        self.fail = fail
        self.waits = []

    def wait(self, directions, deadline=None):
        self.waits.append(directions)
        if self.fail is not None:
            raise self.fail

    def settle(self):
        pass


class FakeSession:
    def block_directions(self):
        return 1


def make_caller(waiter=None, closed=False):
    return Caller("db1", 2200, FakeSession(), waiter or FakeWaiter(), 3.0, lambda: closed)


def results(*values):
    values = list(values)

    def func():
        value = values.pop(0)
        if isinstance(value, BaseException):
            raise value
        return value
    return func


def test_retries_eagain_waiting_on_the_socket():
    caller = make_caller()
    assert caller.call(results(LIBSSH2_ERROR_EAGAIN, LIBSSH2_ERROR_EAGAIN, "ok"),
                       what="Opening a channel") == "ok"
    assert caller.waiter.waits == [1, 1]


def test_closed_client_fails_before_calling_libssh2():
    called = []
    caller = make_caller(closed=True)
    with pytest.raises(SessionError) as info:
        caller.call(lambda: called.append(1), what="PTY request")
    assert called == [] and "db1:2200 is closed" in str(info.value)


@pytest.mark.parametrize("failure, cls, text", [
    (DeadlineExceeded(), Timeout, "PTY request on host db1:2200 timed out"),
    (WaiterClosed(), SessionError, "Client for host db1:2200 was closed during PTY request"),
])
def test_wait_failures_become_named_exceptions(failure, cls, text):
    caller = make_caller(FakeWaiter(fail=failure))
    with pytest.raises(cls) as info:
        caller.call(results(LIBSSH2_ERROR_EAGAIN), what="PTY request")
    assert str(info.value).startswith(text)
    assert (info.value.host, info.value.port) == ("db1", 2200)


def test_socket_errors_are_connection_lost_others_session_errors():
    caller = make_caller()
    with pytest.raises(ConnectionLostError) as lost:
        caller.call(results(SocketRecvError()), what="Sending EOF")
    assert "lost during Sending EOF" in str(lost.value)
    assert isinstance(lost.value.cause, SocketRecvError)
    with pytest.raises(SessionError) as denied:
        caller.call(results(ChannelRequestDenied()), what="PTY request")
    assert "PTY request failed on host db1:2200" in str(denied.value)
    assert not isinstance(denied.value, ConnectionLostError)


def test_attempt_raises_call_failed_with_the_sftp_status():
    class Sftp:
        def last_error(self):
            return 2

    with pytest.raises(CallFailed) as info:
        make_caller().attempt(results(SFTPProtocolError()), sftp=Sftp())
    failure = info.value
    assert failure.status == 2 and failure.describe() == "no such file or directory"
    assert not failure.lost


def test_a_path_with_percent_in_what_is_kept_literally():
    caller = make_caller(FakeWaiter(fail=DeadlineExceeded()))
    with pytest.raises(Timeout) as info:
        caller.call(results(LIBSSH2_ERROR_EAGAIN), what="Uploading of /tmp/100%")
    assert "Uploading of /tmp/100% on host db1:2200 timed out" in str(info.value)


def test_loop_codes_are_checked_in_the_same_contract():
    caller = make_caller()
    assert caller.check(5, "Writing") == 5
    with pytest.raises(ConnectionLostError):
        caller.check(-43, "Writing")   # LIBSSH2_ERROR_SOCKET_RECV
