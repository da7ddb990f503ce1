"""A scripted SSH server (paramiko) on loopback, for channel-level attacks.

Each test gives the server a ``script(channel, command)`` that runs in its own thread once a
command (exec or shell) is accepted, and may tell the server to never answer a channel open or
an exec request. Messages no honest server sends (a malformed ``exit-signal``, data after close)
are built with :func:`send_channel_request` / :func:`send_raw_data`.

Bounded: every blocking step waits on the server's stop event, and the server stops by itself
after ``lifetime`` seconds (or when the ``with`` block ends). Any public key is accepted.
"""
import socket
import struct
import threading

import paramiko
from paramiko.common import cMSG_CHANNEL_DATA, cMSG_CHANNEL_REQUEST

__all__ = ["CraftedServer", "send_channel_request", "send_raw_data", "exit_signal_fields"]

_HOST_KEY = []


def _host_key():
    if not _HOST_KEY:
        _HOST_KEY.append(paramiko.ECDSAKey.generate())
    return _HOST_KEY[0]


def _send(channel, message):
    # paramiko has no public call for arbitrary channel messages; this is the one it uses itself.
    channel.transport._send_user_message(message)


def send_channel_request(channel, name, payload=b"", want_reply=False):
    """Send a CHANNEL_REQUEST ``name`` whose type-specific part is the raw bytes ``payload``."""
    message = paramiko.Message()
    message.add_byte(cMSG_CHANNEL_REQUEST)
    message.add_int(channel.remote_chanid)
    message.add_string(name)
    message.add_boolean(want_reply)
    message.add_bytes(payload)
    _send(channel, message)


def send_raw_data(channel, data):
    """Send CHANNEL_DATA whatever state paramiko thinks the channel is in (after EOF, close)."""
    message = paramiko.Message()
    message.add_byte(cMSG_CHANNEL_DATA)
    message.add_int(channel.remote_chanid)
    message.add_string(data)
    _send(channel, message)


def exit_signal_fields(name, declared_length=None, core_dumped=False, text=b"", lang=b""):
    """The payload of an ``exit-signal`` request; ``declared_length`` may lie about ``name``."""
    length = len(name) if declared_length is None else declared_length
    return (struct.pack(">I", length) + name + bytes([core_dumped])
            + struct.pack(">I", len(text)) + text + struct.pack(">I", len(lang)) + lang)


class _Interface(paramiko.ServerInterface):
    def __init__(self, server):
        self.server = server

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind, chanid):
        if kind != "session":
            return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED
        if self.server.answer_open is False:
            self.server.stalled.set()
            self.server.stop_event.wait(self.server.lifetime)
        return paramiko.OPEN_SUCCEEDED

    def check_channel_pty_request(self, *args):
        return True

    def check_channel_exec_request(self, channel, command):
        return self._start(channel, command)

    def check_channel_shell_request(self, channel):
        return self._start(channel, None)

    def _start(self, channel, command):
        if self.server.answer_exec is False:
            self.server.stalled.set()
            self.server.stop_event.wait(self.server.lifetime)
            return False
        self.server._spawn(self.server.script, channel, command)
        return True


class CraftedServer:
    """SSH server on 127.0.0.1 running ``script(channel, command)`` for each command.

    ``window_size``: the receive window the server grants per channel (paramiko re-opens it
    only as the script reads). ``answer_open``/``answer_exec`` False: that request is never
    answered. ``errors`` collects exceptions raised by scripts (tests assert it is empty).
    """

    def __init__(self, script=None, window_size=2097152, answer_open=True, answer_exec=True,
                 lifetime=30.0):
        self.script = script or (lambda channel, command: None)
        self.window_size = window_size
        self.answer_open = answer_open
        self.answer_exec = answer_exec
        self.lifetime = lifetime
        self.stop_event = threading.Event()
        self.stalled = threading.Event()
        self.errors = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._listener.settimeout(0.2)
        self.host, self.port = self._listener.getsockname()
        self._transports = []
        self._threads = []
        self._timer = None

    def start(self):
        self._spawn(self._accept_loop)
        self._timer = threading.Timer(self.lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self):
        self.stop_event.set()
        if self._timer is not None:
            self._timer.cancel()
        for transport in list(self._transports):
            transport.close()
        self._listener.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
        for thread in self._threads:
            thread.join(5)

    def _spawn(self, func, *args):
        def run():
            try:
                func(*args)
            except Exception as exc:  # noqa: BLE001 - reported to the test
                if not self.stop_event.is_set():
                    self.errors.append(exc)
        thread = threading.Thread(target=run, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self):
        while not self.stop_event.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            transport = paramiko.Transport(sock, default_window_size=self.window_size)
            transport.add_server_key(_host_key())
            self._transports.append(transport)
            transport.start_server(server=_Interface(self))
