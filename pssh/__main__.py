"""``python -m pssh``: the ``pssh`` command line."""
from pssh.cli import main

if __name__ == "__main__":
    main()
