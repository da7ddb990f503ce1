"""A local user with a password, for password / keyboard-interactive authentication tests."""

import fcntl
import json
import os
import pwd
import secrets
import subprocess

__all__ = ["ensure_password_user", "PasswordUserError", "STATE_FILE"]

STATE_FILE = "/var/tmp/pssh-test-user.json"


class PasswordUserError(RuntimeError):
    pass


def ensure_password_user(name="psshtest", state_file=STATE_FILE):
    """Make sure local user ``name`` exists with a known password; return ``(name, password)``.

    Root only: creates the user (``useradd -m -s /bin/bash``) when missing, and sets its password
    with chpasswd. The password is kept in ``state_file`` (mode 0600) so repeated runs reuse it.
    The servers' AuthorizedKeysFile lives in their workdir, readable by this user when run as
    root, so the same keys log in as this user too.
    """
    if os.geteuid() != 0:
        raise PasswordUserError("creating the password test user %r needs root (euid %d)" % (name, os.geteuid()))
    lock_path = state_file + ".lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            pwd.getpwnam(name)
        except KeyError:
            _run(["useradd", "-m", "-s", "/bin/bash", name])
        password = None
        try:
            with open(state_file) as fh:
                state = json.load(fh)
            if state.get("name") == name:
                password = state.get("password")
        except (OSError, ValueError):
            pass
        if not password:
            password = secrets.token_urlsafe(18)
            fd = os.open(state_file + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump({"name": name, "password": password}, fh)
            os.replace(state_file + ".tmp", state_file)
        # set it every time: cheap, and repairs a password changed behind our back
        _run(["chpasswd"], input="%s:%s\n" % (name, password))
    return name, password


def _run(cmd, input=None):
    env = dict(os.environ)
    env["PATH"] = env.get("PATH", "") + ":/usr/sbin:/sbin"
    try:
        proc = subprocess.run(cmd, input=input, universal_newlines=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, env=env, timeout=60)
    except OSError as exc:
        raise PasswordUserError("%s: %s" % (cmd[0], exc))
    if proc.returncode != 0:
        raise PasswordUserError("%s failed (%d): %s" % (" ".join(cmd), proc.returncode, proc.stdout.strip()))
