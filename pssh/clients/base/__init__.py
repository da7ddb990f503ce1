"""2.x import path ``pssh.clients.base`` (the 2.x base classes, as aliases of pssh's)."""
