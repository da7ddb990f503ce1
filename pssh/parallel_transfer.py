"""File transfer methods of ParallelSSHClient (mixed into :class:`pssh.parallel.ParallelSSHClient`)."""

__all__ = ["ParallelTransferMixin"]


class ParallelTransferMixin:
    """copy_file, copy_remote_file, scp_send, scp_recv over every host."""
