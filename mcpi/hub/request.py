"""What a user asks the hub for: a job's size or precision target, seed, and where."""

from __future__ import annotations

from dataclasses import dataclass

from mcpi.core.precision import PrecisionTarget


@dataclass(frozen=True)
class EstimateRequest:
    """What the user asked for; None means "choose for me"."""

    darts: int
    seed: int | None = None
    chunk_size: int | None = None
    local: bool = False
    processes: int | None = None
    #: Throw darts until π's interval is this narrow (``darts`` is then unused).
    precision: PrecisionTarget | None = None
    #: Finish this earlier job instead of starting one.
    resume: str | None = None
