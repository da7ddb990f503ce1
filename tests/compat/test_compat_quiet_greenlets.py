"""Failed per-host greenlets handed to the user print no hub traceback (2.x printed none);
other greenlets' errors are still printed, so gevent's reporting is unchanged for them."""
import subprocess
import sys
import textwrap

from embedded_server.net import free_port

_SCRIPT = textwrap.dedent("""
    import sys, tempfile, gevent
    from pssh.clients import ParallelSSHClient
    from pssh.exceptions import ConnectionError, HostArgumentError
    port = int(sys.argv[1])
    client = ParallelSSHClient(["127.0.0.1"] * 3, port=port, num_retries=1, retry_delay=0,
                               allow_agent=False, identity_auth=False, password="x")
    source = tempfile.NamedTemporaryFile()
    for greenlets in (client.copy_file(source.name, "dest"),
                      client.scp_send(source.name, "dest"),
                      client.copy_remote_file("src", source.name + ".d"),
                      client.connect_auth()):
        gevent.joinall(greenlets)
        for greenlet in greenlets:
            assert isinstance(greenlet.exception, ConnectionError), greenlet.exception
    # a host name that cannot be a file suffix fails its greenlet before connecting
    bad = ParallelSSHClient(["a/b"], port=port, num_retries=1, allow_agent=False)
    [greenlet] = bad.copy_remote_file("src", source.name)
    greenlet.join()
    assert isinstance(greenlet.exception, HostArgumentError)
    print("pssh greenlets done", flush=True)
    other = gevent.spawn(lambda: 1 / 0)
    other.join()
    print("end", flush=True)
""")


def test_failed_transfer_and_connect_greenlets_print_no_traceback():
    port = free_port()  # nothing listens: every host is refused
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(port)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["pssh greenlets done", "end"]
    # the greenlet that pssh did not spawn still gets gevent's report, and only it
    assert done.stderr.count("Traceback") == 1, done.stderr
    assert "ZeroDivisionError" in done.stderr
    assert "ConnectionRefusedError" not in done.stderr and "HostArgumentError" not in done.stderr
