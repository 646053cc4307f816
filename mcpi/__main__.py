"""``python -m mcpi`` is ``mcpi-hub``."""

from mcpi.cli.main import entry_point

if __name__ == "__main__":
    entry_point()
