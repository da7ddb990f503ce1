"""Public path of the parallel clients' copy methods; the code is in :mod:`pssh.transfer.parallel`.

Only re-exports, so ``from pssh.parallel_transfer import ParallelTransferMixin`` keeps working.
"""
from pssh.transfer.parallel import ParallelTransferMixin

__all__ = ["ParallelTransferMixin"]
