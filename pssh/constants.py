"""Defaults shared by the clients (same values as parallel-ssh)."""

DEFAULT_RETRIES = 3
RETRY_DELAY = 5
# Upper bound for connect + handshake + auth when the user gave no timeout:
# pssh never waits forever on a peer that accepts TCP but never speaks SSH.
DEFAULT_CONNECT_TIMEOUT = 60
