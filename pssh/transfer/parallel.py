"""File transfer methods of ParallelSSHClient (mixed into :class:`pssh.parallel.ParallelSSHClient`).

Each method spawns one greenlet per host in ``self.pool`` and returns the list of greenlets in
host order; a failure surfaces from ``greenlet.get()`` or ``gevent.joinall(greenlets,
raise_error=True)``, as in parallel-ssh 2.x and in the 1.x README. Argument errors
(``copy_args`` too short or of the wrong type) raise at once, before anything is spawned.

Difference from parallel-ssh: a local (or remote) *directory* without ``recurse=True`` raises
``ValueError`` in the greenlets here as in the single-host client; parallel-ssh always recursed
in its parallel ``copy_file`` whatever ``recurse`` said.

Downloads without ``copy_args`` go to ``local_file + suffix_separator + host``: a host name
that would make that path leave its directory (one containing a path separator or NUL, or
``.``/``..``; aliases come from ssh_config too) fails that host's greenlet with
:class:`HostArgumentError`, before connecting; the other hosts go on.

Uploading one file to many hosts opens it once: the hosts' transfers share one descriptor and
read it with ``pread``, from the page cache after the first (see :mod:`pssh.transfer.localfile`).

A host's failure is reported by its greenlet's ``get()``/``joinall``, never printed by gevent's
hub as well (:mod:`pssh.core.greenlets`).
"""
import os
from collections.abc import Mapping

from pssh.core.greenlets import spawn_joined
from pssh.exceptions import HostArgumentError

__all__ = ["ParallelTransferMixin"]


def _check_copy_args(copy_args, hosts):
    if copy_args and len(copy_args) < len(hosts):
        raise HostArgumentError("Number of per-host copy arguments (%s) is less than the "
                                "number of hosts (%s)", len(copy_args), len(hosts))


def _scp_paths(entry):
    if not isinstance(entry, Mapping):
        raise TypeError("format requires a mapping: scp copy_args entries must be dicts with "
                        "'local_file' and 'remote_file' keys, not %s" % type(entry).__name__)
    return entry["local_file"], entry["remote_file"]


def _host_suffixed(local_file, separator, host):
    """``local_file + separator + host``, or the HostArgumentError refusing ``host``."""
    path = "%s%s%s" % (local_file, separator, host)
    name = str(host)
    if (name in (".", "..") or "\0" in name
            or any(sep in name for sep in ("/", os.sep, os.altsep) if sep)
            or os.path.basename(path) in ("", ".", "..")):
        return HostArgumentError("Host name %r cannot be part of a local file name (%r "
                                 "would leave its directory or is invalid)", name, path,
                                 host=host)
    return path


def _fail(error):
    raise error


class ParallelTransferMixin:
    """copy_file, copy_remote_file, scp_send, scp_recv over every host."""

    def _spawn_transfers(self, method, per_host):
        """``per_host``: [(index, host, args, kwargs)] -> greenlets in host order; an
        exception as ``args`` is what that host's greenlet raises."""
        return [spawn_joined(self.pool, _fail, args) if isinstance(args, Exception)
                else spawn_joined(self.pool, self._transfer_on_host, index, host, method, args,
                                  kwargs)
                for index, host, args, kwargs in per_host]

    def _transfer_on_host(self, index, host, method, args, kwargs):
        client = self._make_client(index, host)
        return getattr(client, method)(*args, **kwargs)

    def copy_file(self, local_file, remote_file, recurse=False, copy_args=None, progress=None):
        """Upload ``local_file`` to ``remote_file`` on every host with SFTP; returns greenlets.

        ``copy_args``: host *i* uses ``local_file % copy_args[i]`` and
        ``remote_file % copy_args[i]``. ``progress(host, path, done, total)`` as in
        :meth:`pssh.single.SSHClient.copy_file`.
        """
        _check_copy_args(copy_args, self.hosts)
        jobs = []
        for index, host in enumerate(self.hosts):
            local, remote = local_file, remote_file
            if copy_args:
                local, remote = local_file % copy_args[index], remote_file % copy_args[index]
            jobs.append((index, host, (local, remote),
                         {"recurse": recurse, "progress": progress}))
        return self._spawn_transfers("copy_file", jobs)

    def copy_remote_file(self, remote_file, local_file, recurse=False, suffix_separator="_",
                         copy_args=None, encoding="utf-8", progress=None):
        """Download ``remote_file`` from every host with SFTP; returns greenlets.

        Host *h* writes to ``local_file + suffix_separator + h`` unless ``copy_args`` is
        given, in which case both paths are ``%``-formatted with ``copy_args[i]`` and no
        suffix is added. Relative local paths are relative to the current directory; missing
        local directories are created.
        """
        _check_copy_args(copy_args, self.hosts)
        jobs = []
        for index, host in enumerate(self.hosts):
            if copy_args:
                remote = remote_file % copy_args[index]
                local = local_file % copy_args[index]
            else:
                remote, local = remote_file, _host_suffixed(local_file, suffix_separator, host)
            args = local if isinstance(local, Exception) else (remote, local)
            jobs.append((index, host, args,
                         {"recurse": recurse, "encoding": encoding, "progress": progress}))
        return self._spawn_transfers("copy_remote_file", jobs)

    def scp_send(self, local_file, remote_file, recurse=False, copy_args=None, progress=None):
        """Upload with SCP to every host; returns greenlets.

        ``copy_args`` entries are dicts with ``local_file`` and ``remote_file`` keys, which
        replace the positional paths for that host (a non-dict entry raises ``TypeError``).
        """
        _check_copy_args(copy_args, self.hosts)
        jobs = []
        for index, host in enumerate(self.hosts):
            local, remote = local_file, remote_file
            if copy_args:
                local, remote = _scp_paths(copy_args[index])
            jobs.append((index, host, (local, remote),
                         {"recurse": recurse, "progress": progress}))
        return self._spawn_transfers("scp_send", jobs)

    def scp_recv(self, remote_file, local_file, recurse=False, copy_args=None,
                 suffix_separator="_", progress=None):
        """Download with SCP from every host; returns greenlets.

        Host *h* writes to ``local_file + suffix_separator + h``; with ``copy_args`` (dicts
        with ``local_file`` and ``remote_file``) the given paths are used as they are.
        """
        _check_copy_args(copy_args, self.hosts)
        jobs = []
        for index, host in enumerate(self.hosts):
            if copy_args:
                local, remote = _scp_paths(copy_args[index])
            else:
                remote, local = remote_file, _host_suffixed(local_file, suffix_separator, host)
            args = local if isinstance(local, Exception) else (remote, local)
            jobs.append((index, host, args, {"recurse": recurse, "progress": progress}))
        return self._spawn_transfers("scp_recv", jobs)
