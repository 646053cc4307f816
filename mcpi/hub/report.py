"""What the hub returns: everything a finished job's or a tuning's report shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mcpi.core.distribution import QuantileEstimate
from mcpi.core.exact import OutputEstimate
from mcpi.core.plan import Plan
from mcpi.core.precision import Precision, ReplicatePrecision
from mcpi.core.sampler import MC, Sampler
from mcpi.core.sensitivity import Sensitivity
from mcpi.core.stats import HostThroughput, rate
from mcpi.core.tuning import Capacity, ChunkChoice
from mcpi.hub.binding import Distribution
from mcpi.hub.records import Stage
from mcpi.hub.request import View
from mcpi.hub.trace import Trace


@dataclass(frozen=True)
class JobReport:
    """Everything ``mcpi-hub run`` (or ``estimate``, its view of the ``pi`` model) prints
    about a finished job."""

    job_id: str
    seed: int
    #: The job's stages: one, or the looks of a precision-targeted job.
    stages: list[Stage]
    mode: str  # "local" or "cluster"
    ran_on: str
    #: Each output's estimate, in the model's order.
    outputs: list[OutputEstimate]
    #: The model's call (name, params, block, version, digest, outputs) and source.
    model: dict[str, Any]
    #: How the job was asked for, and is to be shown.
    view: View
    wall_seconds: float
    hosts: list[HostThroughput]
    duplicates: int
    worker_versions: list[str]
    #: How automatic chunk sizing chose the chunk size; None if the user gave it.
    chunking: ChunkChoice | None = None
    #: The measurements automatic chunking used (None if the user gave the chunk size).
    capacity: Capacity | None = None
    notes: list[str] = field(default_factory=list)
    #: The largest message the job's run sent, in bytes, at most (0: none, the local pool).
    largest_message: int = 0
    precision: Precision | ReplicatePrecision | None = None
    #: Whether this run finished a job an earlier hub had started.
    resumed: bool = False
    trace: Trace | None = None
    #: Of a resumed job: samples an earlier run counted, read back rather than computed.
    earlier_samples: int = 0
    #: Where the samples came from: plain Monte Carlo, or randomized QMC's replicates.
    sampler: Sampler = MC
    #: Histograms, quantiles and exceedance probabilities, where asked.
    distribution: Distribution = field(default_factory=Distribution)
    #: Of a job of Sobol' indices: the indices, input by input.
    sensitivity: Sensitivity | None = None
    #: The quantile a precision targeted (``--output NAME@P``), as reported.
    target_quantile: QuantileEstimate | None = None

    @property
    def samples(self) -> int:
        """Samples (π's darts) counted in all."""
        return sum(s.samples for s in self.stages if s.counted)

    @property
    def chunks(self) -> int:
        return sum(Plan(s.samples, s.chunk_size).chunk_count for s in self.stages)

    @property
    def chunk_size(self) -> int:
        return self.stages[-1].chunk_size

    @property
    def targeted(self) -> OutputEstimate:
        """The output a precision targets (else the first): what ``--plot`` draws."""
        return self.outputs[self.precision.output if self.precision else 0]

    @property
    def precision_reached(self) -> bool:
        target = self.precision
        if target is not None and self.target_quantile is not None:
            found = self.target_quantile
            return (found.ci_high - found.ci_low) / 2 <= target.half_width
        if target is not None and self.sensitivity is not None:
            return self.sensitivity.widest <= target.half_width
        return target is None or self.targeted.half_width <= target.half_width

    @property
    def thrown_samples(self) -> int:
        """Samples computed in this run (all of them, unless the job was resumed)."""
        return self.samples - self.earlier_samples

    @property
    def samples_per_second(self) -> float:
        return rate(self.thrown_samples, self.wall_seconds)


@dataclass(frozen=True)
class TuneReport:
    """What ``mcpi-hub tune`` measured, and the chunking it would choose for a job."""

    mode: str
    ran_on: str
    capacity: Capacity
    choice: ChunkChoice
