"""A tunnel notices that its target's end of the socket pair is gone, also when the
application monkey-patched gevent (whose poll never reports POLLHUP)."""
import subprocess
import sys
import textwrap

_SCRIPT = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import socket
    from pssh.connection.tunnel import _Tunnel
    ours, theirs = socket.socketpair()
    probe = _Tunnel.__new__(_Tunnel)
    probe.sock = ours
    before = probe._target_gone()
    theirs.close()
    print(before, probe._target_gone())
""")


def test_target_gone_under_gevent_monkey_patching():
    done = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
