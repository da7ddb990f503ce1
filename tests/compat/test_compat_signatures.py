"""Call shapes of parallel-ssh 2.16 and 1.x: parameter names, order and defaults.

The tables below were written by hand from parallel-ssh's public source
(ParallelSSH/parallel-ssh: ``pssh/clients/native/parallel.py``,
``pssh/clients/native/single.py``, ``pssh/clients/base/single.py``,
``pssh/clients/base/parallel.py``, ``pssh/clients/ssh/*.py``,
``pssh/config.py``, ``pssh/output.py`` at tag 2.16.0, and
``pssh/pssh_client.py`` / ``pssh/clients/miko/single.py`` of the 1.x line),
cross-checked with the project's spec (shared/spec/API.md). Only facts
(names, order, defaults) are recorded.

A pssh signature matches when the 2.x parameters come first, in the same
order, with the same defaults; pssh may add parameters after them (they
must have defaults or be keyword-only), and may give a default to a
parameter 2.x required (calls written for 2.x still work). Known mismatches
in files this suite's authors do not own are strict xfails, so fixing one
makes the suite fail until the mark is removed.
"""
import inspect

import pytest

REQUIRED = object()  # a parameter without default in 2.x

# (module path, class name, method) -> [(name, default), ...] without ``self``.
# Defaults 3 and 5 are DEFAULT_RETRIES and RETRY_DELAY.
NATIVE_PARALLEL = {
    "__init__": [("hosts", REQUIRED), ("user", None), ("password", None), ("port", 22),
                 ("pkey", None), ("num_retries", 3), ("timeout", None), ("pool_size", 100),
                 ("allow_agent", True), ("host_config", None), ("retry_delay", 5),
                 ("proxy_host", None), ("proxy_port", None), ("proxy_user", None),
                 ("proxy_password", None), ("proxy_pkey", None), ("forward_ssh_agent", False),
                 ("keepalive_seconds", 60), ("identity_auth", True), ("ipv6_only", False),
                 ("compress", False), ("keyboard_interactive", False)],
    "run_command": [("command", REQUIRED), ("sudo", False), ("user", None),
                    ("stop_on_errors", True), ("use_pty", False), ("host_args", None),
                    ("shell", None), ("encoding", "utf-8"), ("read_timeout", None)],
    "join": [("output", None), ("consume_output", False), ("timeout", None)],
    "finished": [("output", None)],
    "get_last_output": [("cmds", None)],
    "connect_auth": [],
    "copy_file": [("local_file", REQUIRED), ("remote_file", REQUIRED), ("recurse", False),
                  ("copy_args", None)],
    "copy_remote_file": [("remote_file", REQUIRED), ("local_file", REQUIRED), ("recurse", False),
                         ("suffix_separator", "_"), ("copy_args", None), ("encoding", "utf-8")],
    "scp_send": [("local_file", REQUIRED), ("remote_file", REQUIRED), ("recurse", False),
                 ("copy_args", None)],
    "scp_recv": [("remote_file", REQUIRED), ("local_file", REQUIRED), ("recurse", False),
                 ("copy_args", None), ("suffix_separator", "_")],
    "open_shell": [("encoding", "utf-8"), ("read_timeout", None)],
    "run_shell_commands": [("shells", REQUIRED), ("commands", REQUIRED)],
    "join_shells": [("shells", REQUIRED), ("timeout", None)],
    "_join": [("host_out", REQUIRED), ("consume_output", False), ("timeout", None)],
}

NATIVE_SINGLE = {
    "__init__": [("host", REQUIRED), ("user", None), ("password", None), ("port", None),
                 ("pkey", None), ("alias", None), ("num_retries", 3), ("retry_delay", 5),
                 ("allow_agent", True), ("timeout", None), ("forward_ssh_agent", False),
                 ("proxy_host", None), ("proxy_port", None), ("proxy_pkey", None),
                 ("proxy_user", None), ("proxy_password", None), ("_auth_thread_pool", True),
                 ("keepalive_seconds", 60), ("identity_auth", True), ("ipv6_only", False),
                 ("compress", False), ("keyboard_interactive", False)],
    "run_command": [("command", REQUIRED), ("sudo", False), ("user", None), ("use_pty", False),
                    ("shell", None), ("encoding", "utf-8"), ("timeout", None),
                    ("read_timeout", None)],
    "wait_finished": [("host_output", REQUIRED), ("timeout", None)],
    "finished": [("channel", REQUIRED)],
    "get_exit_status": [("channel", REQUIRED)],
    "close_channel": [("channel", REQUIRED)],
    "open_session": [],
    "open_shell": [("encoding", "utf-8"), ("read_timeout", None)],
    "execute": [("cmd", REQUIRED), ("use_pty", False), ("channel", None)],
    "read_output": [("stdout_buffer", REQUIRED), ("timeout", None)],
    "read_stderr": [("stderr_buffer", REQUIRED), ("timeout", None)],
    "read_output_buffer": [("output_buffer", REQUIRED), ("prefix", None), ("callback", None),
                           ("callback_args", None), ("encoding", "utf-8")],
    "copy_file": [("local_file", REQUIRED), ("remote_file", REQUIRED), ("recurse", False),
                  ("sftp", None)],
    "copy_remote_file": [("remote_file", REQUIRED), ("local_file", REQUIRED), ("recurse", False),
                         ("sftp", None), ("encoding", "utf-8")],
    "scp_send": [("local_file", REQUIRED), ("remote_file", REQUIRED), ("recurse", False),
                 ("sftp", None)],
    "scp_recv": [("remote_file", REQUIRED), ("local_file", REQUIRED), ("recurse", False),
                 ("sftp", None), ("encoding", "utf-8")],
    "sftp_put": [("sftp", REQUIRED), ("local_file", REQUIRED), ("remote_file", REQUIRED)],
    "sftp_get": [("sftp", REQUIRED), ("remote_file", REQUIRED), ("local_file", REQUIRED)],
    "mkdir": [("sftp", REQUIRED), ("directory", REQUIRED)],
    "auth": [],
    "configure_keepalive": [],
    "disconnect": [],
    "poll": [("timeout", None)],
    "eagain": [("func", REQUIRED), ("*args", REQUIRED), ("**kwargs", REQUIRED)],
    "eagain_write": [("write_func", REQUIRED), ("data", REQUIRED)],
    "_make_sftp": [],
    "_mkdir": [("sftp", REQUIRED), ("directory", REQUIRED)],
    "_copy_remote_dir": [("file_list", REQUIRED), ("remote_dir", REQUIRED),
                         ("local_dir", REQUIRED), ("sftp", REQUIRED), ("encoding", "utf-8")],
    "_disconnect": [],
    "_connect": [("host", REQUIRED), ("port", REQUIRED), ("retries", 1)],
}

LIBSSH_PARALLEL = {
    "__init__": [("hosts", REQUIRED), ("user", None), ("password", None), ("port", 22),
                 ("pkey", None), ("cert_file", None), ("num_retries", 3), ("timeout", None),
                 ("pool_size", 100), ("allow_agent", True), ("host_config", None),
                 ("retry_delay", 5), ("forward_ssh_agent", False), ("gssapi_auth", False),
                 ("gssapi_server_identity", None), ("gssapi_client_identity", None),
                 ("gssapi_delegate_credentials", False), ("identity_auth", True),
                 ("ipv6_only", False), ("compress", False)],
}

LIBSSH_SINGLE = {
    "__init__": [("host", REQUIRED), ("user", None), ("password", None), ("port", None),
                 ("pkey", None), ("alias", None), ("cert_file", None), ("num_retries", 3),
                 ("retry_delay", 5), ("allow_agent", True), ("timeout", None),
                 ("identity_auth", True), ("gssapi_auth", False),
                 ("gssapi_server_identity", None), ("gssapi_client_identity", None),
                 ("gssapi_delegate_credentials", False), ("ipv6_only", False),
                 ("compress", False), ("_auth_thread_pool", True)],
}

HOST_CONFIG = {
    "__init__": [("user", None), ("port", None), ("password", None), ("private_key", None),
                 ("allow_agent", None), ("alias", None), ("num_retries", None),
                 ("retry_delay", None), ("timeout", None), ("identity_auth", None),
                 ("proxy_host", None), ("proxy_port", None), ("proxy_user", None),
                 ("proxy_password", None), ("proxy_pkey", None), ("keepalive_seconds", None),
                 ("ipv6_only", None), ("cert_file", None), ("auth_thread_pool", True),
                 ("gssapi_auth", False), ("gssapi_server_identity", None),
                 ("gssapi_client_identity", None), ("gssapi_delegate_credentials", False),
                 ("forward_ssh_agent", False), ("compress", False),
                 ("keyboard_interactive", False)],
}

HOST_OUTPUT = {
    "__init__": [("host", REQUIRED), ("channel", REQUIRED), ("stdin", REQUIRED),
                 ("client", REQUIRED), ("alias", None), ("exception", None),
                 ("encoding", "utf-8"), ("read_timeout", None), ("buffers", None),
                 ("fully_qualified_command", None)],
}

# 1.x (pssh/pssh_client.py and the paramiko single client, whose exec_command the
# 1.x ssh2 client kept the shape of).
LEGACY_PARALLEL = {
    "__init__": [("hosts", REQUIRED), ("user", None), ("password", None), ("port", None),
                 ("pkey", None), ("forward_ssh_agent", True), ("num_retries", 3),
                 ("timeout", 120), ("pool_size", 10), ("proxy_host", None), ("proxy_port", 22),
                 ("proxy_user", None), ("proxy_password", None), ("proxy_pkey", None),
                 ("agent", None), ("allow_agent", True), ("host_config", None),
                 ("channel_timeout", None)],
    "run_command": [("command", REQUIRED), ("sudo", False), ("user", None),
                    ("stop_on_errors", True), ("shell", None), ("use_shell", True),
                    ("use_pty", True), ("host_args", None), ("encoding", "utf-8")],
    "get_output": [("cmd", REQUIRED), ("output", REQUIRED), ("encoding", "utf-8")],
    "join": [("output", REQUIRED)],
    "finished": [("output", REQUIRED)],
    "get_exit_codes": [("output", REQUIRED)],
    "get_exit_code": [("host_output", REQUIRED)],
    "copy_file": [("local_file", REQUIRED), ("remote_file", REQUIRED), ("recurse", False)],
    "copy_remote_file": [("remote_file", REQUIRED), ("local_file", REQUIRED), ("recurse", False),
                         ("suffix_separator", "_")],
}

LEGACY_SINGLE = {
    "__init__": [("host", REQUIRED), ("user", None), ("password", None), ("port", None),
                 ("pkey", None), ("forward_ssh_agent", True), ("num_retries", 3),
                 ("agent", None), ("allow_agent", True), ("timeout", 10), ("proxy_host", None),
                 ("proxy_port", 22), ("proxy_user", None), ("proxy_password", None),
                 ("proxy_pkey", None), ("channel_timeout", None),
                 ("_openssh_config_file", None)],
    "exec_command": [("command", REQUIRED), ("sudo", False), ("user", None), ("shell", None),
                     ("use_shell", True), ("use_pty", True)],
    "read_output_buffer": [("output_buffer", REQUIRED), ("prefix", None), ("callback", None),
                           ("callback_args", None), ("encoding", "utf-8")],
    "mkdir": [("sftp", REQUIRED), ("directory", REQUIRED)],
}

TABLES = [
    ("pssh.clients.native", "ParallelSSHClient", NATIVE_PARALLEL),
    ("pssh.clients.native", "SSHClient", NATIVE_SINGLE),
    ("pssh.clients.ssh", "ParallelSSHClient", LIBSSH_PARALLEL),
    ("pssh.clients.ssh", "SSHClient", LIBSSH_SINGLE),
    ("pssh.config", "HostConfig", HOST_CONFIG),
    ("pssh.output", "HostOutput", HOST_OUTPUT),
    ("pssh.pssh_client", "ParallelSSHClient", LEGACY_PARALLEL),
    ("pssh.ssh_client", "SSHClient", LEGACY_SINGLE),
]

# Differences this suite expects until the named file changes (strict: a fix flips them).
# Empty: every 2.x signature in the tables is served.
KNOWN_MISMATCHES = {}

# Deliberate differences (README, "Differences"): checked to be exactly these.
DELIBERATE = {
    # pssh: a false HostConfig value overrides the client's, so "not set" must be None.
    ("pssh.config", "HostConfig", "__init__", "forward_ssh_agent"): None,
    ("pssh.config", "HostConfig", "__init__", "compress"): None,
    ("pssh.config", "HostConfig", "__init__", "keyboard_interactive"): None,
}


def _params(func):
    """[(name, default), ...] without self; *args/**kwargs named with their stars."""
    found = []
    for param in inspect.signature(func).parameters.values():
        if param.name == "self":
            continue
        if param.kind is param.VAR_POSITIONAL:
            found.append(("*" + param.name, REQUIRED))
        elif param.kind is param.VAR_KEYWORD:
            found.append(("**" + param.name, REQUIRED))
        else:
            default = REQUIRED if param.default is param.empty else param.default
            found.append((param.name, default))
    return found


def _cases():
    for module, cls, table in TABLES:
        for method, expected in table.items():
            key = (module, cls, method)
            marks = ()
            if key in KNOWN_MISMATCHES:
                marks = (pytest.mark.xfail(strict=True, reason=KNOWN_MISMATCHES[key]),)
            yield pytest.param(module, cls, method, expected, marks=marks,
                               id="%s.%s.%s" % (module, cls, method))


@pytest.mark.parametrize("module,cls,method,expected", list(_cases()))
def test_signature_matches_2x(module, cls, method, expected):
    import importlib
    klass = getattr(importlib.import_module(module), cls)
    func = getattr(klass, method, None)
    assert func is not None, "%s.%s has no %s" % (module, cls, method)
    actual = _params(func)
    names = [name for name, _ in actual]
    want = [name for name, _ in expected]
    assert names[:len(want)] == want, (
        "%s.%s.%s parameters %s, 2.x order %s" % (module, cls, method, names, want))
    for (name, default), (_, have) in zip(expected, actual):
        deliberate = DELIBERATE.get((module, cls, method, name), default)
        if default is REQUIRED or name.startswith("*"):
            continue  # a pssh default for a 2.x-required parameter keeps 2.x calls working
        assert have == deliberate, "%s.%s.%s: %s defaults to %r, 2.x %r" % (
            module, cls, method, name, have, default)
    extra = inspect.signature(func).parameters
    for name, _ in actual[len(want):]:
        if name.startswith("*"):
            continue
        param = extra[name]
        assert param.default is not param.empty, (
            "%s.%s.%s: extra parameter %s must have a default" % (module, cls, method, name))
