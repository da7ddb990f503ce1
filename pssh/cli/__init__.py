"""The ``pssh`` command line (``pssh run``, ``pssh copy``, ``pssh fetch``); see README.rst
"Command line". Built on click, rich and ClusterShell's NodeSet; not imported by ``pssh``."""
from pssh.cli.app import cli, main

__all__ = ["cli", "main"]
