"""pssh.exceptions: message formatting, structured attributes, builtin bases, aliases."""

import builtins
import errno
import pickle

import pytest

from pssh import exceptions as exc_mod
from pssh.exceptions import (
    AuthenticationError, AuthenticationException, ConnectionError, ConnectionErrorException,
    ConnectionLostError, ConnectionRefusedError, HandshakeError, HostArgumentError,
    HostArgumentException, NoIPv6AddressFoundError, PKeyFileError, PSSHError, SessionError,
    SFTPError, SFTPIOError, SSHError, SSHException, Timeout, UnknownHostError,
    UnknownHostException)


def all_classes():
    return [getattr(exc_mod, name) for name in exc_mod.__all__]


@pytest.mark.parametrize("cls", all_classes(), ids=lambda c: c.__name__)
def test_every_class_is_a_pssh_error(cls):
    assert issubclass(cls, PSSHError)
    assert issubclass(cls, Exception)


@pytest.mark.parametrize("alias, cls", [
    (UnknownHostException, UnknownHostError),
    (ConnectionErrorException, ConnectionError),
    (AuthenticationException, AuthenticationError),
    (SSHException, SSHError),
    (HostArgumentException, HostArgumentError),
])
def test_aliases_catch_each_other(alias, cls):
    assert alias is cls
    with pytest.raises(alias):
        raise cls("x")


def test_str_formats_first_arg_with_the_rest():
    exc = AuthenticationError("Auth failed for %s:%s - %s", "h1", 22, "bad key")
    assert str(exc) == "Auth failed for h1:22 - bad key"
    assert exc.args == ("Auth failed for %s:%s - %s", "h1", 22, "bad key")


def test_str_single_arg_unchanged():
    assert str(SessionError("100% literal %s")) == "100% literal %s"
    assert str(SessionError(42)) == "42"


def test_str_too_few_values_falls_back_to_default():
    exc = SessionError("one %s and %s", "x")
    assert str(exc) == str(("one %s and %s", "x"))
    exc = SessionError("%d items", "not a number")
    assert str(exc) == str(("%d items", "not a number"))


def test_str_extra_structured_args_are_not_formatted():
    # e.g. join's Timeout(fmt, timeout, finished, unfinished) names one value only
    exc = Timeout("Timed out after %s s", 5, ["h1"], ["h2"])
    assert str(exc) == "Timed out after 5 s"
    assert exc.args == ("Timed out after %s s", 5, ["h1"], ["h2"])
    assert str(SessionError("100%% done %s", "now", "extra")) == "100% done now"


def test_str_no_args():
    assert str(Timeout()) == ""
    assert str(PSSHError()) == ""


def test_structured_attributes():
    cause = OSError(errno.ETIMEDOUT, "timed out")
    exc = ConnectionError("Error connecting to %s:%s", "h", 2222, host="h", port=2222,
                          cause=cause)
    assert (exc.host, exc.port, exc.cause) == ("h", 2222, cause)
    assert exc.__cause__ is cause
    assert exc.errno == errno.ETIMEDOUT
    assert exc.strerror == "Error connecting to h:2222"


def test_attributes_default_to_none():
    exc = SFTPIOError("x")
    assert (exc.host, exc.port, exc.cause) == (None, None, None)
    assert exc.__cause__ is None


def test_timeout_is_builtin_timeout_error():
    exc = Timeout("Read timeout on %s", "h", host="h")
    assert isinstance(exc, builtins.TimeoutError)
    assert isinstance(exc, OSError)
    with pytest.raises(TimeoutError):
        raise exc
    # OSError's constructor must not have eaten the format string as errno/strerror
    assert exc.args == ("Read timeout on %s", "h")
    assert exc.errno is None
    assert str(exc) == "Read timeout on h"


def test_connection_errors_are_builtin_connection_errors():
    assert issubclass(ConnectionError, builtins.ConnectionError)
    assert issubclass(ConnectionRefusedError, builtins.ConnectionRefusedError)
    assert issubclass(ConnectionRefusedError, ConnectionError)
    assert issubclass(ConnectionLostError, ConnectionError)
    assert issubclass(HandshakeError, ConnectionError)
    assert issubclass(HandshakeError, SessionError)
    cause = builtins.ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    exc = ConnectionRefusedError("Connection refused by %s:%s", "h", 1, host="h", port=1,
                                 cause=cause)
    try:
        raise exc
    except builtins.ConnectionRefusedError as caught:
        assert caught.errno == errno.ECONNREFUSED
        assert str(caught) == "Connection refused by h:1"


def test_non_builtin_errors_are_not_os_errors():
    for cls in (AuthenticationError, UnknownHostError, NoIPv6AddressFoundError, SessionError,
                PKeyFileError, SFTPError):
        assert not issubclass(cls, OSError), cls


@pytest.mark.parametrize("cls", all_classes(), ids=lambda c: c.__name__)
def test_pickle_round_trip(cls):
    cause = ValueError("inner")
    exc = cls("%s failed on %s", "thing", "h1", host="h1", port=22, cause=cause)
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is cls
    assert copy.args == exc.args
    assert str(copy) == str(exc) == "thing failed on h1"
    assert (copy.host, copy.port) == ("h1", 22)
    assert isinstance(copy.cause, ValueError) and copy.cause.args == ("inner",)


def test_timeout_message_names_host():
    exc = Timeout("SSH handshake with host %s:%s timed out", "web1", 22, host="web1", port=22)
    assert "web1:22" in str(exc)
    assert repr(exc).startswith("Timeout(")
