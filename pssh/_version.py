"""The version of pssh, in one place: setup.py parses it (without importing pssh) and
``pssh.__version__`` re-exports it."""
__version__ = "0.1.0"
