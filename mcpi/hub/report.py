"""What the hub returns: everything a finished job's or a tuning's report shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcpi.core.exact import OutputEstimate
from mcpi.core.plan import Plan
from mcpi.core.precision import ModelPrecision, PrecisionTarget
from mcpi.core.stats import Estimate, HostThroughput, rate
from mcpi.core.tuning import Capacity, ChunkChoice
from mcpi.hub.records import Stage
from mcpi.hub.trace import Trace


@dataclass(frozen=True)
class JobReport:
    """Everything ``mcpi-hub estimate`` (π: ``estimate``) or ``run`` (a model: ``outputs``)
    prints about a finished job."""

    job_id: str
    seed: int
    #: The job's stages: one, or the looks of a precision-targeted job.
    stages: list[Stage]
    mode: str  # "local" or "cluster"
    ran_on: str
    #: π's estimate; None for a model job, whose results are ``outputs``.
    estimate: Estimate | None
    wall_seconds: float
    hosts: list[HostThroughput]
    duplicates: int
    worker_versions: list[str]
    #: How automatic chunk sizing chose the chunk size; None if the user gave it.
    chunking: ChunkChoice | None = None
    #: The measurements automatic chunking used (None if the user gave the chunk size).
    capacity: Capacity | None = None
    notes: list[str] = field(default_factory=list)
    precision: PrecisionTarget | ModelPrecision | None = None
    #: Whether this run finished a job an earlier hub had started.
    resumed: bool = False
    trace: Trace | None = None
    #: Of a resumed job: darts an earlier run counted, read back rather than thrown.
    earlier_darts: int = 0
    #: A model job's outputs, in the model's order, and its call (name, params, ...).
    outputs: list[OutputEstimate] = field(default_factory=list)
    model: dict[str, Any] | None = None

    @property
    def darts(self) -> int:
        """Darts (or a model's samples) counted in all."""
        return sum(s.darts for s in self.stages if s.counted)

    @property
    def chunks(self) -> int:
        return sum(Plan(s.darts, s.chunk_size).chunk_count for s in self.stages)

    @property
    def chunk_size(self) -> int:
        return self.stages[-1].chunk_size

    @property
    def precision_reached(self) -> bool:
        target = self.precision
        if target is None:
            return True
        if isinstance(target, ModelPrecision):
            return self.outputs[target.output].half_width <= target.half_width
        return self.estimate is not None and self.estimate.half_width <= target.half_width

    @property
    def thrown_darts(self) -> int:
        """Darts thrown in this run (all of them, unless the job was resumed)."""
        return self.darts - self.earlier_darts

    @property
    def darts_per_second(self) -> float:
        return rate(self.thrown_darts, self.wall_seconds)


@dataclass(frozen=True)
class TuneReport:
    """What ``mcpi-hub tune`` measured, and the chunking it would choose for a job."""

    mode: str
    ran_on: str
    capacity: Capacity
    choice: ChunkChoice
