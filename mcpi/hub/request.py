"""What a user asks the hub for: a job's size or precision target, seed, and where."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mcpi.core.precision import PrecisionTarget


@dataclass(frozen=True)
class EstimateRequest:
    """What the user asked for; None means "choose for me".

    With ``model`` (an installed model's name, or ``FILE.py:NAME`` / ``MODULE:NAME``
    for the local pool), the job runs that model: ``darts`` counts its samples and
    ``precision``'s half-width applies to ``output`` (default: the first).
    """

    darts: int
    seed: int | None = None
    chunk_size: int | None = None
    local: bool = False
    processes: int | None = None
    #: Throw darts until π's interval is this narrow (``darts`` is then unused).
    precision: PrecisionTarget | None = None
    #: Finish this earlier job instead of starting one.
    resume: str | None = None
    model: str | None = None
    #: Whether the caller runs models (``run``) rather than π (``estimate``): a resumed
    #: job must be of the kind its caller reports.
    model_job: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    #: A model job's precision target: ``output``'s 95 % half-width (absolute), bounded
    #: by ``max_samples``.
    half_width: float | None = None
    output: str | None = None
    max_samples: int | None = None
