"""The core layer: the hub waiter, the libssh2 call helper, backend selection, the libssh2 binding.

Imports nothing from the layers above (connection, transfer, clients).
"""
