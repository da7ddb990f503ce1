"""Process-tree helpers (Linux /proc) for killing sshd together with its connection children.

OpenSSH's listener forks one child per connection and that child calls ``setsid()``, so the
children leave the listener's process group: ``killpg`` alone does not reach them. We therefore
walk the parent links in ``/proc``, freezing each process with SIGSTOP before reading its children
(a stopped process cannot fork), then SIGKILL the whole frozen tree.
"""

import contextlib
import os
import signal

__all__ = ["children_map", "descendants", "kill_tree", "signal_tree", "is_alive", "identity",
           "same_process", "reaped"]


def _stat(pid):
    """(ppid, state, starttime) of ``pid`` or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    # comm may contain spaces/parens: fields start after the last ')'
    rest = data[data.rfind(b")") + 2:].split()
    return int(rest[1]), rest[0].decode(), int(rest[19])


def children_map():
    """{ppid: [pid, ...]} for every process visible in /proc."""
    result = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return result
    for name in names:
        if not name.isdigit():
            continue
        info = _stat(int(name))
        if info is not None:
            result.setdefault(info[0], []).append(int(name))
    return result


def descendants(pid):
    """All current descendants of ``pid`` (not including it)."""
    cmap = children_map()
    out, todo = [], [pid]
    while todo:
        for child in cmap.get(todo.pop(), ()):
            out.append(child)
            todo.append(child)
    return out


def is_alive(pid):
    """True if ``pid`` exists and is not a zombie."""
    info = _stat(pid)
    return info is not None and info[1] not in ("Z", "X")


def identity(pid):
    """(pid, start time) of a live process, or None: guards against pid reuse."""
    info = _stat(pid)
    if info is None or info[1] in ("Z", "X"):
        return None
    return pid, info[2]


def same_process(ident):
    """True if the process recorded by :func:`identity` is still alive (and not a reused pid)."""
    return ident is not None and identity(ident[0]) == ident


def _send(pid, sig):
    try:
        os.kill(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def kill_tree(pid, include_root=True):
    """Freeze ``pid`` and all its descendants, then SIGKILL them. Returns the pids signalled."""
    frozen = []
    if include_root:
        if _send(pid, signal.SIGSTOP):
            frozen.append(pid)
    seen = set(frozen)
    # Repeat until no new descendant appears: a process that forked between our listing and its
    # SIGSTOP shows up in the next pass.
    for _ in range(50):
        new = [p for p in descendants(pid) if p not in seen]
        if not new:
            break
        for child in new:
            seen.add(child)
            if _send(child, signal.SIGSTOP):
                frozen.append(child)
    for target in reversed(frozen):  # leaves first, then the listener
        _send(target, signal.SIGKILL)
    return frozen


def signal_tree(pid, sig, include_root=True):
    """Send ``sig`` to ``pid``'s descendants (and ``pid``). Returns the pids signalled."""
    targets = descendants(pid)
    if include_root:
        targets.append(pid)
    return [p for p in targets if _send(p, sig)]


@contextlib.contextmanager
def reaped(proc):
    """Yield the ``subprocess.Popen`` ``proc``; if it still runs when the block ends (a failed
    assertion, a timeout), kill it and collect its pipes, so a test never leaves it behind."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def listens_on(pid, port):
    """True if process ``pid`` holds a TCP socket listening on ``port`` (IPv4 or IPv6), read
    from /proc: a banner on the port may come from another program's server that took the
    port first (another test run picking the same free port)."""
    inodes = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as table:
                next(table, None)
                for line in table:
                    fields = line.split()
                    # local address "ADDR:PORT" in hex, state 0A = LISTEN, inode in field 9
                    if len(fields) > 9 and fields[3] == "0A" and \
                            int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add("socket:[%s]" % fields[9])
        except OSError:
            continue
    if not inodes:
        return False
    fd_dir = "/proc/%d/fd" % pid
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return False
    for fd in names:
        try:
            if os.readlink(os.path.join(fd_dir, fd)) in inodes:
                return True
        except OSError:
            continue
    return False
