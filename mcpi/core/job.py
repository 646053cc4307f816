"""A job: its id, its seed and its plan."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from mcpi.core.kernel import check_seed
from mcpi.core.model import ModelCall
from mcpi.core.plan import Plan
from mcpi.core.sampler import MC, RQMC, Sampler
from mcpi.core.tallies import NO_TALLIES, Tallies

#: Bits of a fresh seed: a full PCG64 state's worth, as numpy recommends for the
#: entropy a ``SeedSequence`` is given (fewer bits would make two jobs' streams
#: likelier to coincide than the generator itself allows).
SEED_BITS = 128


@dataclass(frozen=True, slots=True)
class Job:
    """Run ``model`` on the samples of ``plan`` drawn by ``sampler`` (π: the model ``pi``,
    its samples darts).

    Under plain Monte Carlo the plan counts the model's samples in whole blocks of
    ``model.block``; under randomized QMC it is a stage of the sampler's replicates
    (:meth:`~mcpi.core.sampler.RQMC.check_plan`). Each chunk's result is exact sums.
    """

    id: str
    seed: int
    plan: Plan
    model: ModelCall
    sampler: Sampler = MC
    #: What each chunk counts besides the moments: histograms, exceedances.
    tallies: Tallies = NO_TALLIES

    def __post_init__(self) -> None:
        check_seed(self.seed)
        self.tallies.check(len(self.model.outputs))
        if isinstance(self.sampler, RQMC):
            self.sampler.check_plan(self.plan)
            return
        block, plan = self.model.block, self.plan
        if plan.first % block or plan.darts % block or plan.chunk_size % block:
            raise ValueError(f"a model job's chunks must be whole blocks of {block} samples")

    @property
    def group(self) -> int:
        """Integers per group (the job, or each replicate under randomized QMC): Σx and
        Σx² of each output, then the tallies' counts."""
        return 2 * len(self.model.outputs) + self.tallies.slots

    @property
    def shape(self) -> tuple[int, int]:
        """(integers per group, of which each output's (Σx, Σx²) come first)."""
        return self.group, 2 * len(self.model.outputs)

    @property
    def width(self) -> int:
        """Integers per chunk result: a group, or one per replicate."""
        return self.sampler.width(self.group)


def new_job_id() -> str:
    """A short random id (64 bits) naming a job in task ids and backend keys."""
    return secrets.token_hex(8)


def new_seed() -> int:
    """A fresh random seed for a job whose user gave none (printed, so reproducible).

    >>> 0 <= new_seed() < 2**SEED_BITS
    True
    """
    return secrets.randbits(SEED_BITS)
