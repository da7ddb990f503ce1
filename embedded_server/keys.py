"""Key generation for the embedded server: user keys and host keys, made with ssh-keygen."""

import os
import shutil
import subprocess
from collections import namedtuple

__all__ = ["KeyPair", "make_user_key", "make_host_key", "fingerprint", "ssh_keygen_path"]

KeyPair = namedtuple("KeyPair", ["private", "public"])
KeyPair.__doc__ = "Paths of a private key file and its ``.pub`` file."

_KIND_ARGS = {
    "ed25519": ["-t", "ed25519"],
    "rsa": ["-t", "rsa", "-b", "3072"],
    "ecdsa": ["-t", "ecdsa", "-b", "256"],
}


def ssh_keygen_path():
    """Absolute path of ssh-keygen (``$PSSH_SSH_KEYGEN`` overrides)."""
    path = os.environ.get("PSSH_SSH_KEYGEN") or shutil.which("ssh-keygen")
    if not path:
        for candidate in ("/usr/bin/ssh-keygen", "/usr/local/bin/ssh-keygen"):
            if os.access(candidate, os.X_OK):
                return candidate
        raise RuntimeError("ssh-keygen not found: install openssh-client (ci/setup.sh does)")
    return path


def _keygen(kind, path, passphrase, comment):
    if kind not in _KIND_ARGS:
        raise ValueError("unknown key kind %r (expected one of %s)" % (kind, ", ".join(sorted(_KIND_ARGS))))
    for stale in (path, path + ".pub"):
        if os.path.exists(stale):
            os.unlink(stale)
    cmd = [ssh_keygen_path(), "-q"] + _KIND_ARGS[kind] + ["-N", passphrase, "-C", comment, "-f", path]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError("ssh-keygen failed (%d): %s" % (proc.returncode, proc.stdout.decode(errors="replace")))
    os.chmod(path, 0o600)
    return KeyPair(path, path + ".pub")


def make_user_key(directory, kind="ed25519", passphrase="", name=None):
    """Generate a user key pair in ``directory`` with ssh-keygen.

    ``kind`` is ``ed25519``, ``rsa`` (3072 bits) or ``ecdsa`` (P-256). The private key is written in
    OpenSSH format, mode 0600, encrypted when ``passphrase`` is not empty. Returns a :class:`KeyPair`.
    """
    os.makedirs(directory, exist_ok=True)
    if name is None:
        name = "id_%s%s" % (kind, "_encrypted" if passphrase else "")
    return _keygen(kind, os.path.join(os.path.abspath(directory), name), passphrase, "pssh-test-%s" % kind)


def make_host_key(directory, kind="ed25519"):
    """Generate an unencrypted host key ``ssh_host_<kind>_key`` in ``directory``."""
    return _keygen(kind, os.path.join(os.path.abspath(directory), "ssh_host_%s_key" % kind), "", "pssh-test-host")


def fingerprint(key_path, hash_name="sha256"):
    """``SHA256:...`` fingerprint of a public (or unencrypted private) key file."""
    proc = subprocess.run([ssh_keygen_path(), "-l", "-E", hash_name, "-f", key_path],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError("ssh-keygen -l failed on %s: %s" % (key_path, proc.stderr.decode(errors="replace")))
    # "256 SHA256:abc... comment (ED25519)"
    return proc.stdout.decode().split()[1]
