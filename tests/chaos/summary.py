"""What each seed of the soak did, for the end of the pytest run: the release soak's
figures (docs/faults.md) are read off it."""

from __future__ import annotations

#: One line per seed that passed.
SOAKED: list[str] = []
