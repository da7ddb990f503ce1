"""A hostile remote ``scp``: sshd runs it instead of the real one.

Use with ``make_sshd(extra_config={"ForceCommand": command("BEHAVIOUR")})``. sshd passes the
client's command (``scp -t PATH`` for an upload, ``scp -f PATH`` / ``scp -pf PATH`` for a
download) in ``$SSH_ORIGINAL_COMMAND``; this script speaks the scp protocol as far as the
behaviour needs and then misbehaves. It only ever writes to its stdout/stderr (never to a file)
and always ends: when the client closes the channel (EOF or a broken pipe) or after
``TIME_LIMIT`` seconds.

Behaviours (``BEHAVIOURS``):

* uploads, after acknowledging the file: ``trailing-small`` (a line on stderr, exit 0),
  ``trailing-big`` (``BIG_TRAILING`` bytes on stdout, exit 0), ``trailing-endless`` (stdout
  without end), ``trailing-drip`` (one byte every 0.2 s without end); ``error-drip``
  (instead of acknowledging: an error line that never ends, one byte every 0.2 s);
* downloads, in the ``T`` or ``C`` header or the data: ``times-bad`` (mtime and atime
  beyond 2**63), ``size-negative``, ``size-huge`` (> 2**64),
  ``size-beyond-data`` (announces a terabyte, sends 10 bytes and exits), ``mode-bad``,
  ``mode-0777``, ``mode-4755`` (the last two send a correct file), ``header-long`` (a
  100 000-byte header line), ``more-data`` (20 bytes for an announced 10), and the
  ``trailing-*`` and ``error-drip`` behaviours at the final status byte.
"""
import os
import shlex
import signal
import sys
import time

TIME_LIMIT = 30
BIG_TRAILING = 64 * 1024 * 1024
PAYLOAD = b"0123456789"

BEHAVIOURS = ("trailing-small", "trailing-big", "trailing-endless", "trailing-drip",
              "error-drip", "times-bad", "size-negative", "size-huge", "size-beyond-data",
              "mode-bad", "mode-0777", "mode-4755", "header-long", "more-data")


def command(behaviour, python=sys.executable):
    """The ForceCommand line that runs this script with ``behaviour``."""
    if behaviour not in BEHAVIOURS:
        raise ValueError("unknown behaviour %r" % (behaviour,))
    return "%s %s %s" % (shlex.quote(python), shlex.quote(os.path.abspath(__file__)), behaviour)


def _send(data):
    os.write(1, data)


def _read_until(end):
    data = b""
    while not data.endswith(end):
        byte = os.read(0, 1)
        if not byte:
            sys.exit(0)  # the client went away
        data += byte
    return data


def _drip(first):
    _send(first)
    while True:
        _send(b"z")
        time.sleep(0.2)


def _final_status(behaviour):
    if behaviour == "error-drip":
        _drip(b"\1fake scp: ")
    _send(b"\0")


def _trailing(behaviour):
    if behaviour == "trailing-small":
        os.write(2, b"fake scp: all done\n")
    elif behaviour == "trailing-big":
        block = b"x" * 65536
        for _ in range(BIG_TRAILING // len(block)):
            _send(block)
    elif behaviour == "trailing-endless":
        block = b"y" * 65536
        while True:
            _send(block)
    elif behaviour == "trailing-drip":
        _drip(b"")


def sink(behaviour):
    """The remote end of an upload: acknowledge everything, then misbehave."""
    _send(b"\0")
    while True:
        line = _read_until(b"\n")
        if line.startswith(b"T"):
            _send(b"\0")
            continue
        break
    size = int(line.split(b" ")[1])
    _send(b"\0")
    left = size + 1  # the data and the client's status byte
    while left:
        chunk = os.read(0, min(left, 1 << 20))
        if not chunk:
            sys.exit(1)
        left -= len(chunk)
    _final_status(behaviour)
    _trailing(behaviour)


def source(behaviour, name):
    """The remote end of a download."""
    _read_until(b"\0")
    if behaviour == "times-bad":
        _send(b"T99999999999999999999999 0 18446744073709551615 0\n")
    else:
        _send(b"T1000000000 0 1000000000 0\n")
    _read_until(b"\0")
    mode, size, data = "0644", str(len(PAYLOAD)), PAYLOAD
    if behaviour == "size-negative":
        size = "-5"
    elif behaviour == "size-huge":
        size = "99999999999999999999999"
    elif behaviour == "size-beyond-data":
        size = str(10 ** 12)
    elif behaviour == "mode-bad":
        mode = "08x9"
    elif behaviour in ("mode-0777", "mode-4755"):
        mode = behaviour[-4:]
    elif behaviour == "header-long":
        name = "n" * 100000
    elif behaviour == "more-data":
        data = PAYLOAD * 2
    _send(("C%s %s %s\n" % (mode, size, name)).encode())
    _read_until(b"\0")
    _send(data)
    if behaviour == "size-beyond-data":
        sys.exit(0)
    _final_status(behaviour)
    _read_until(b"\0")
    _trailing(behaviour)


def main():
    behaviour = sys.argv[1]
    signal.alarm(TIME_LIMIT)
    words = shlex.split(os.environ.get("SSH_ORIGINAL_COMMAND", ""))
    if not words or os.path.basename(words[0]) != "scp":
        sys.exit("fake scp: not an scp command: %r" % (words,))
    flags = "".join(w[1:] for w in words[1:-1] if w.startswith("-"))
    try:
        if "t" in flags:
            sink(behaviour)
        elif "f" in flags:
            source(behaviour, os.path.basename(words[-1]) or "file")
        else:
            sys.exit("fake scp: neither -t nor -f")
    except BrokenPipeError:
        sys.exit(1)


if __name__ == "__main__":
    main()
