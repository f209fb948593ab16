"""``python -m seedloop``: the same command line as the ``seedloop`` script."""

from ._cli import main

if __name__ == "__main__":
    main()
