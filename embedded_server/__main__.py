"""``python -m embedded_server --hosts 3``: start servers and wait for Ctrl-C."""

import argparse
import shutil
import signal
import sys
import tempfile

from . import ServerFarm, make_user_key


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m embedded_server",
                                     description="Run OpenSSH sshd servers on loopback until Ctrl-C.")
    parser.add_argument("--hosts", type=int, default=3, help="number of servers (default 3)")
    parser.add_argument("--first-ip", default="127.0.0.2", help="first loopback address (default 127.0.0.2)")
    parser.add_argument("--port", type=int, default=None, help="port for all servers (default: a free one)")
    parser.add_argument("--key-kind", default="ed25519", choices=["ed25519", "rsa", "ecdsa"])
    parser.add_argument("--key-dir", default=None, help="where to write the user key (default: a temp dir)")
    parser.add_argument("--log-level", default=None, help="sshd LogLevel (default ERROR)")
    args = parser.parse_args(argv)

    key_dir = args.key_dir or tempfile.mkdtemp(prefix="pssh-demo-keys-")
    key = make_user_key(key_dir, kind=args.key_kind)
    farm = ServerFarm(args.hosts, first_ip=args.first_ip, port=args.port,
                      authorized_keys=[key.public], log_level=args.log_level)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        farm.start()
        for srv in farm:
            print("%s:%d" % (srv.host, srv.port))
        print("user: %s" % farm[0].user)
        print("key: %s" % key.private)
        print("try: ssh -i %s -p %d -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null %s@%s echo hi"
              % (key.private, farm.port, farm[0].user, farm[0].host))
        print("Ctrl-C to stop", flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        farm.stop_all()
        if not args.key_dir:
            shutil.rmtree(key_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
