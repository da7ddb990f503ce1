"""The connection layer: connect and authenticate, jump hosts and tunnels, agent forwarding, channels.

Built on :mod:`pssh.core`; never imports the transfer layer or the clients.
"""
