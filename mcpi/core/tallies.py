"""What a chunk counts besides each output's exact moments: histograms and exceedances.

A chunk's result is a vector of integers that add exactly, in any order
(:mod:`mcpi.core.tally`). Per group — the job under plain Monte Carlo, each replicate
under randomized QMC — the vector holds, in this order:

* each output's exact (Σx, Σx²) (:mod:`mcpi.core.exact`), always;
* each :class:`Histogram`'s K + 2 counts: the samples below its lowest edge, in each of
  its K bins [e_k, e_{k+1}), and at or above its highest edge;
* each :class:`Exceedance`'s count of the samples strictly above its threshold.

Counts are integers, so a histogram is bit-identical whatever the split (unlike a
t-digest or a KLL sketch, whose merges depend on their order). Bin edges are computed
from the histogram's definition by IEEE additions, multiplications and divisions alone
(no ``exp`` or ``log``, whose last bits may differ between hosts), so every host draws
the same edges; a sample lands in bin k when e_k ≤ x < e_{k+1}, by comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

#: The most bins of one histogram: each is an integer in every chunk's result.
MAX_BINS = 4096
#: The most histograms and exceedances a job counts.
MAX_TALLIES = 32


@dataclass(frozen=True)
class Histogram:
    """``bins`` bins of output ``output`` between ``low`` and ``high``: of equal width, or
    with ``log``, of equal ratio (``low`` > 0)."""

    output: int
    low: float
    high: float
    bins: int
    log: bool = False
    #: Log-spaced bins' ratio r = (high/low)^(1/K), rounded once where the histogram is
    #: defined (the hub) and sent with it, so that no host's ``pow`` decides its edges.
    ratio: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"a histogram's range is LO < HI, finite, not {self.low}:{self.high}")
        if not 1 <= self.bins <= MAX_BINS:
            raise ValueError(f"a histogram has 1 to {MAX_BINS} bins, not {self.bins}")
        if self.log and self.low <= 0:
            raise ValueError(f"log-spaced bins start above 0, not at {self.low}")
        if self.log and self.ratio == 1.0:
            object.__setattr__(self, "ratio", math.pow(self.high / self.low, 1.0 / self.bins))
        if self.log and not (math.isfinite(self.ratio) and self.ratio > 1.0):
            raise ValueError(f"log-spaced bins' ratio is above 1, not {self.ratio}")

    @property
    def slots(self) -> int:
        """Integers it adds to a chunk's result: under, each bin, over."""
        return self.bins + 2

    @cached_property
    def edges(self) -> np.ndarray:
        """The K + 1 edges, the same bits on every host.

        Linear: e_k = low + (high − low)·k/K. Log-spaced: e_k = low·r^k by repeated
        multiplication with :attr:`ratio`; the last edge is ``high`` itself.

        >>> Histogram(0, 0.0, 1.0, 4).edges.tolist()
        [0.0, 0.25, 0.5, 0.75, 1.0]
        """
        k = np.arange(self.bins + 1, dtype=np.float64)
        if not self.log:
            edges = self.low + (self.high - self.low) * (k / self.bins)
        else:
            edges = np.empty(self.bins + 1)
            edges[0] = self.low
            for j in range(1, self.bins + 1):
                edges[j] = edges[j - 1] * self.ratio
        edges[-1] = self.high
        return edges

    def count(self, values: np.ndarray) -> np.ndarray:
        """The K + 2 counts of ``values`` (under, bins, over), as int64."""
        where = np.searchsorted(self.edges, values, side="right")
        return np.bincount(where, minlength=self.bins + 2)

    def to_json(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "kind": "histogram",
            "output": self.output,
            "low": self.low,
            "high": self.high,
            "bins": self.bins,
        }
        if self.log:
            message |= {"log": True, "ratio": self.ratio}
        return message


@dataclass(frozen=True)
class Exceedance:
    """How many samples of output ``output`` are strictly above ``threshold``."""

    output: int
    threshold: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold):
            raise ValueError(f"an exceedance threshold is finite, not {self.threshold}")

    slots = 1

    def count(self, values: np.ndarray) -> np.ndarray:
        return np.array([np.count_nonzero(values > self.threshold)], dtype=np.int64)

    def to_json(self) -> dict[str, Any]:
        return {"kind": "exceedance", "output": self.output, "threshold": self.threshold}


Tally = Histogram | Exceedance


@dataclass(frozen=True)
class Tallies:
    """A job's tallies beyond the moments, in the order their counts follow them."""

    items: tuple[Tally, ...] = ()

    def __post_init__(self) -> None:
        if len(self.items) > MAX_TALLIES:
            raise ValueError(f"a job counts at most {MAX_TALLIES} histograms and exceedances")

    @property
    def slots(self) -> int:
        return sum(t.slots for t in self.items)

    def offsets(self, outputs: int) -> list[int]:
        """Where each tally's counts begin in a group of ``outputs`` outputs."""
        found, at = [], 2 * outputs
        for tally in self.items:
            found.append(at)
            at += tally.slots
        return found

    def check(self, outputs: int) -> None:
        """ValueError unless every tally names one of ``outputs`` outputs."""
        for tally in self.items:
            if not 0 <= tally.output < outputs:
                raise ValueError(f"a tally of output {tally.output} of {outputs}")

    def count(self, values: np.ndarray) -> list[int]:
        """Every tally's counts of one part's samples ((outputs, n) values)."""
        counts: list[int] = []
        for tally in self.items:
            counts += tally.count(values[tally.output]).tolist()
        return counts

    def to_json(self) -> list[dict[str, Any]]:
        return [t.to_json() for t in self.items]

    @classmethod
    def from_json(cls, message: Any) -> Tallies:
        if message is None:
            return NO_TALLIES
        if not isinstance(message, list):
            raise ValueError("a job's tallies are a list")
        return cls(tuple(_tally_from_json(m) for m in message))


NO_TALLIES = Tallies()


def _tally_from_json(message: Any) -> Tally:
    if not isinstance(message, dict):
        raise ValueError("a tally is an object")
    kind, output = message.get("kind"), message.get("output")
    if not isinstance(output, int) or isinstance(output, bool):
        raise ValueError("a tally names its output by index")
    if kind == "histogram":
        low, high, bins = message.get("low"), message.get("high"), message.get("bins")
        if not isinstance(bins, int) or isinstance(bins, bool):
            raise ValueError("a histogram's bins are a whole number")
        if not message.get("log"):
            return Histogram(output, _number(low), _number(high), bins)
        ratio = _number(message.get("ratio"))
        return Histogram(output, _number(low), _number(high), bins, log=True, ratio=ratio)
    if kind == "exceedance":
        return Exceedance(output, _number(message.get("threshold")))
    raise ValueError(f"no tally {kind!r}")


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not a number: {value!r}")
    return float(value)
