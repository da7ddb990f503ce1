"""Hostile-server toolkit: pieces that make a real OpenSSH server (or a crafted one) misbehave.

Each module is one kind of attacker: a filter in front of the real sftp-server, a fake remote
``scp``, a packet-rewriting TCP relay, a crafted server for channel-level attacks.
"""
