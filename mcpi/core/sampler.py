"""Samplers: where a job's samples come from, plain Monte Carlo or randomized QMC.

**Plain Monte Carlo** (:data:`MC`): sample s of a job is sample s of the model's
stream (per-block PCG64 generators; π's one positional dart stream). A chunk's result is
each output's exact (Σx, Σx²).

**Randomized quasi-Monte Carlo** (:class:`RQMC`): the job is R independent replicates,
each the first n = 2^m points of its own scramble of the Sobol' sequence
(:mod:`mcpi.core.sobol`), fed to the model's uniform form. Its samples are addressed
stage by stage: a stage of a job holds the same points [p₀, p₀ + m) of every replicate,
R·m samples, so that stage sample index s (from the stage's first) is replicate
⌊s / m⌋, point p₀ + s mod m, with p₀ = first / R. A precision-targeted job doubles the
points of every replicate at each look (m₀, then m₀, 2m₀, 4m₀ … more), so every
replicate always holds a power of two. A chunk is a power-of-two range of one
replicate's points; its result is the exact sums *of that replicate*, in the replicate's
slots of a vector of R · (Σx, Σx²) per output, zero elsewhere, so that adding chunk
results, in any order, gives every replicate's exact sums, from which the hub forms the
R replicate means once. (A group is each output's (Σx, Σx²), then the job's tallies'
counts: :mod:`mcpi.core.tallies`.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcpi.core.plan import MAX_DARTS, Chunk, Plan
from mcpi.core.sobol import MAX_DIMS

#: The fewest replicates: the interval is Student's t with R − 1 degrees of freedom,
#: and below 8 its width (and its coverage) depends too much on the few replicates.
MIN_REPLICATES = 8
#: Replicates unless the user says otherwise.
DEFAULT_REPLICATES = 16
#: Replicates of a job with a precision target unless the user says otherwise. The rule
#: looks at the replicates' spread s again and again, and at R = 16 s is noisy enough
#: that stopping picks the runs whose s came out low — for a skewed output, runs whose
#: mean came out low too: the call to ±4e-4 covered 0.90 at R = 16, 0.955 at R = 64
#: (tests/core/test_rqmc.py), for 2–4× its points (docs/results.md).
PRECISION_REPLICATES = 64
#: The most replicates: each multiplies the sums a chunk result carries.
MAX_REPLICATES = 1024
#: The most points a replicate could take: a point's coordinates are doubles on a grid
#: of 2⁻⁵² (:func:`mcpi.core.sobol.to_unit`), so more points than cells would repeat.
#: A job's size bound keeps every replicate well below it.
MAX_POINTS = 1 << 52
assert MAX_DARTS // MIN_REPLICATES < MAX_POINTS
#: The fewest points a model of uniforms is given at once (see :func:`batch_points`).
MIN_BATCH = 1 << 10


@dataclass(frozen=True, slots=True)
class MonteCarlo:
    """Plain Monte Carlo: independent pseudo-random samples."""

    kind = "mc"

    def width(self, group: int) -> int:
        """Integers a chunk's result carries: one ``group`` (each output's Σx and Σx², and
        the tallies' counts) for the job."""
        return group

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind}


MC = MonteCarlo()


@dataclass(frozen=True, slots=True)
class RQMC:
    """Randomized QMC: ``replicates`` scrambles of a ``dims``-dimensional Sobol' sequence."""

    replicates: int
    dims: int

    kind = "rqmc"

    def __post_init__(self) -> None:
        if not MIN_REPLICATES <= self.replicates <= MAX_REPLICATES:
            raise ValueError(
                f"randomized QMC takes {MIN_REPLICATES} to {MAX_REPLICATES} replicates, "
                f"not {self.replicates}"
            )
        if not 1 <= self.dims <= MAX_DIMS:
            raise ValueError(
                f"randomized QMC's Sobol' points have 1 to {MAX_DIMS} dimensions, not {self.dims}"
            )

    def width(self, group: int) -> int:
        """Integers a chunk's result carries: one ``group`` per replicate."""
        return group * self.replicates

    @property
    def batch(self) -> int:
        """Points the model is given at once: see :func:`batch_points`."""
        return batch_points(self.dims)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "replicates": self.replicates, "dims": self.dims}

    def check_plan(self, plan: Plan) -> None:
        """ValueError unless ``plan`` is a stage of this sampler: every replicate's points
        a power of two, each chunk a power of two dividing them (so none straddles two
        replicates), the stage beginning where the previous ones ended."""
        points, rest = divmod(plan.darts, self.replicates)
        if rest or not _power_of_two(points):
            raise ValueError(
                f"a randomized QMC stage is {self.replicates} replicates of a power of two "
                f"points each, not {plan.darts:,} samples"
            )
        if plan.first % self.replicates or not _power_of_two(plan.first // self.replicates or 1):
            raise ValueError("a randomized QMC stage begins where the earlier ones ended")
        if not _power_of_two(plan.chunk_size) or points % plan.chunk_size:
            raise ValueError(
                f"a randomized QMC chunk is a power of two dividing the {points:,} points "
                f"of each replicate, not {plan.chunk_size:,}"
            )
        if plan.chunk_size < min(self.batch, points):
            raise ValueError(
                f"a randomized QMC chunk holds whole batches of {self.batch:,} points, "
                f"not {plan.chunk_size:,}"
            )

    def locate(self, plan: Plan, chunk: Chunk) -> tuple[int, int, int]:
        """(replicate, first point, stop point) of ``chunk`` of stage ``plan``.

        >>> RQMC(8, 2).locate(Plan(8 * 16, 4, first=8 * 16), Chunk(5, 8 * 16 + 20, 8 * 16 + 24))
        (1, 20, 24)
        """
        points = plan.darts // self.replicates
        offset = chunk.start - plan.first
        replicate, within = divmod(offset, points)
        first_point = plan.first // self.replicates + within
        return replicate, first_point, first_point + chunk.darts

    def points(self, samples: int) -> int:
        """Points per replicate of a job of ``samples`` samples (in all)."""
        return samples // self.replicates

    def pairs(self, sums: tuple[int, ...], group: int, output: int) -> list[tuple[int, int]]:
        """Each replicate's exact (Σx, Σx²) of output ``output`` in a job's sums, whose
        replicates hold ``group`` integers each (:attr:`mcpi.core.job.Job.group`).

        >>> RQMC(8, 1).pairs(tuple(range(32)), 4, 1)[:2]
        [(2, 3), (6, 7)]
        """
        return [
            (sums[r * group + 2 * output], sums[r * group + 2 * output + 1])
            for r in range(self.replicates)
        ]

    def groups(self, sums: tuple[int, ...], group: int) -> list[tuple[int, ...]]:
        """Each replicate's ``group`` integers of a job's sums."""
        return [sums[r * group : (r + 1) * group] for r in range(self.replicates)]

    def pooled(self, sums: tuple[int, ...], group: int) -> tuple[int, ...]:
        """The integers of all replicates added: every output's (Σx, Σx²) over every
        sample, and every tally's counts."""
        return tuple(sum(sums[i::group]) for i in range(group))


Sampler = MonteCarlo | RQMC


def sampler_from_json(message: Any) -> Sampler:
    """A sampler from its JSON (absent: plain Monte Carlo, as every job before RQMC)."""
    if message is None:
        return MC
    if not isinstance(message, dict):
        raise ValueError("a sampler is an object")
    kind = message.get("kind")
    if kind == MC.kind:
        return MC
    if kind == RQMC.kind:
        replicates, dims = message.get("replicates"), message.get("dims")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (replicates, dims)):
            raise ValueError("a randomized QMC sampler names its replicates and dimensions")
        return RQMC(int(replicates), int(dims))  # type: ignore[arg-type]
    raise ValueError(f"no sampler {kind!r}")


def batch_points(dims: int) -> int:
    """Points a model of ``dims`` uniforms is given at once: about 2^15 coordinates (a
    power of two of points, at least :data:`MIN_BATCH`), aligned on multiples of itself.

    Part of a job's definition, like plain Monte Carlo's blocks: a chunk holds whole
    batches (or a whole stage of a replicate, if that is smaller), so that the model sees
    the same arrays however the job is split — numpy's vectorised ``exp`` or ``sin`` may
    round the last bit of an element differently with the array's length or alignment.
    Large enough that numpy's per-call costs vanish (≈ 4 µs a call, against 6 ns a
    point for π), small enough to stay in cache.

    >>> batch_points(1), batch_points(2), batch_points(3), batch_points(1111)
    (32768, 16384, 8192, 1024)
    """
    return max(MIN_BATCH, power_of_two_at_most(max(1, (1 << 15) // dims)))


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def power_of_two_at_least(value: int) -> int:
    """The smallest power of two ≥ ``value`` (≥ 1).

    >>> power_of_two_at_least(1000), power_of_two_at_least(1024), power_of_two_at_least(0)
    (1024, 1024, 1)
    """
    return 1 if value <= 1 else 1 << (value - 1).bit_length()


def power_of_two_at_most(value: int) -> int:
    """The largest power of two ≤ ``value`` (``value`` ≥ 1)."""
    return 1 << (value.bit_length() - 1)
