"""SFTP and SCP transfers of one SSHClient (methods mixed into :class:`pssh.single.SSHClient`)."""

__all__ = ["TransferMixin"]


class TransferMixin:
    """copy_file, copy_remote_file, scp_send, scp_recv, sftp_put, sftp_get, mkdir."""
