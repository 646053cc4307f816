"""The README's and the documentation's examples are tests (see tests/docexamples.py).

Sybil comes with the test extra; the pure tier's environment, which has neither it nor
Celery and collects no Markdown, skips this.
"""

from __future__ import annotations

import importlib.util

if importlib.util.find_spec("sybil") is not None:
    from sybil import Sybil

    from tests import docexamples

    pytest_collect_file = Sybil.pytest(docexamples.documents())
