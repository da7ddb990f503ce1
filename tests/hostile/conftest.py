"""Tests with hostile hosts: every byte a server sends is untrusted.

Each test reproduces one attack against a real OpenSSH sshd (made hostile by a toolkit piece
from ``toolkit/``) or a crafted server, and checks that only that host fails, with a clear
``PSSHError`` within its timeout, and that nothing outside the target is written.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
