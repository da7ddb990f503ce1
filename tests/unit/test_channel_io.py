"""pssh.connection.channel.Channel against fake libssh2 objects: EOF is sent once, and stdin
writes the channel cannot deliver are refused before libssh2 is called."""
import pytest

from pssh.connection.channel import Channel
from pssh.core.calls import Caller
from pssh.exceptions import SessionError


class FakeWaiter:
    def settle(self):
        pass

    def wait(self, directions, deadline=None):
        raise AssertionError("no call here would block")

    def bind(self, deadline):
        raise AssertionError("the write must be refused before libssh2 is called")


class FakeSession:
    def block_directions(self):
        return 0


class FakeSSHChannel:
    def __init__(self):
        self.calls = []

    def send_eof(self):
        self.calls.append("send_eof")
        return 0

    def close(self):
        self.calls.append("close")
        return 0

    def write_ex(self, stream_id, data):
        self.calls.append("write_ex")
        return len(data), len(data)


def make_channel(closed=False):
    caller = Caller("web1", 2222, FakeSession(), FakeWaiter(), 5.0, lambda: closed)
    return Channel(FakeSSHChannel(), caller, 5.0)


def test_eof_is_sent_once():
    channel = make_channel()
    channel.send_eof()
    channel.send_eof()
    assert channel.ssh_channel.calls == ["send_eof"]


def test_no_eof_on_a_closed_channel():
    channel = make_channel()
    channel.close()
    channel.close()
    channel.send_eof()
    assert channel.ssh_channel.calls == ["close"]


@pytest.mark.parametrize("end, reason", [("eof", "EOF was sent"),
                                         ("close", "the channel is closed"),
                                         ("finished", "the channel is closed")])
def test_write_after_the_end_is_refused_naming_host_and_reason(end, reason):
    channel = make_channel()
    if end == "eof":
        channel.send_eof()
    elif end == "close":
        channel.close()
    else:
        channel.state.done.set()
    with pytest.raises(SessionError) as info:
        channel.write(b"data")
    assert (info.value.host, info.value.port) == ("web1", 2222)
    assert "web1:2222" in str(info.value) and reason in str(info.value)
    assert "write_ex" not in channel.ssh_channel.calls


def test_write_on_a_closed_client_is_refused():
    channel = make_channel(closed=True)
    with pytest.raises(SessionError) as info:
        channel.write(b"data")
    assert "is closed" in str(info.value) and info.value.host == "web1"
    assert channel.ssh_channel.calls == []
