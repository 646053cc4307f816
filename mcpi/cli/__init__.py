"""The command line, ``mcpi-hub``: :mod:`~mcpi.cli.main` (the dispatch and exit
statuses), one module per subcommand (parser and run), shared :mod:`~mcpi.cli.options`
and argument :mod:`~mcpi.cli.types`, and the output: :mod:`~mcpi.cli.render` (text and
JSON), the :mod:`~mcpi.cli.progress` bar and :mod:`~mcpi.cli.plot`. Nothing else in
mcpi imports this package.
"""

from __future__ import annotations

from mcpi.cli.main import entry_point, main

__all__ = ["entry_point", "main"]
