"""The transfer layer: SFTP, SCP, local files and the parallel fan-out of copies.

Sits on :mod:`pssh.connection`; ``pssh.transfer.TransferMixin`` keeps the old public path.
"""
from pssh.transfer.client import TransferMixin

__all__ = ["TransferMixin"]
