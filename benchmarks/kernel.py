"""The dart kernel's rate on one core, against the generator's own rates, in one run.

    python benchmarks/kernel.py [--darts 2e8] [--rounds 7]

Six rates, timed in turn in every round (so drifts in machine speed hit all of them) in
one process on one core, and reported as the median over the rounds:

* numpy raw: ``PCG64.random_raw`` in blocks of the reference kernel's size, the rate
  numpy itself generates the stream at (one dependent 128-bit step after another, every
  draw written to memory);
* PCG64 steps: the same stream stepped on the compiled kernel's lanes with the hit test
  left out (``generator_steps``): the generator's limit for any kernel drawing one number
  per dart; on this CPU's best path and on the portable one;
* the numpy reference kernel (``count_hits_reference``), the compiled kernel's portable
  path (``count_hits_portable``) and the compiled kernel as ``count_hits`` runs it, all
  counting the same darts: their counts are checked equal.

Issue 17's target: compiled / numpy raw >= 1.8.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from mcpi.core import kernel
from mcpi.core.kernel import (
    BLOCK_DARTS,
    count_hits,
    count_hits_portable,
    count_hits_reference,
    generator_steps,
)

SEED = 1


def raw_generation(darts: int) -> None:
    generator = np.random.PCG64(SEED)
    for _ in range(darts // BLOCK_DARTS):
        generator.random_raw(BLOCK_DARTS)


def rate(run: Callable[[int], object], darts: int) -> float:
    began = time.perf_counter()
    run(darts)
    return darts / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--darts", type=float, default=2e8)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    darts = int(args.darts) // BLOCK_DARTS * BLOCK_DARTS
    if kernel.FALLBACK_REASON:
        raise SystemExit(f"kernel.py: {kernel.FALLBACK_REASON}")
    runs: dict[str, Callable[[int], object]] = {
        "numpy raw": raw_generation,
        "PCG64 steps": lambda n: generator_steps(SEED, n),
        "steps, portable": lambda n: generator_steps(SEED, n, portable=True),
        "reference": lambda n: count_hits_reference(SEED, 0, n),
        "portable": lambda n: count_hits_portable(SEED, 0, n),
        "compiled": lambda n: count_hits(SEED, 0, n),
    }
    for run in runs.values():  # warm up
        run(BLOCK_DARTS * 8)
    counts = {count_hits(SEED, 0, darts), count_hits_portable(SEED, 0, darts)}
    if counts != {count_hits_reference(SEED, 0, darts)}:
        raise SystemExit("kernel.py: a compiled path's count differs from the reference's")
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            rates[name].append(rate(run, darts))
    median = {name: statistics.median(r) for name, r in rates.items()}
    raw, steps = median["numpy raw"], median["PCG64 steps"]
    print(f"machine      {platform.processor() or platform.machine()}, numpy {np.__version__}")
    print(f"kernel       {kernel.KERNEL}; steps on {kernel.STEPPING}")
    print(f"darts        {darts:.3g} per run, median of {args.rounds} rounds")
    for name, value in median.items():
        print(f"{name:16s} {value / 1e6:8.1f} M/s   {value / raw:5.2f}x numpy raw")
    print(f"compiled / numpy raw      {median['compiled'] / raw:6.3f}  (target >= 1.8)")
    print(f"compiled / reference      {median['compiled'] / median['reference']:6.3f}")
    print(f"compiled / portable       {median['compiled'] / median['portable']:6.3f}")
    print(f"compiled / PCG64 steps    {median['compiled'] / steps:6.3f}")
    print(f"PCG64 steps / numpy raw   {steps / raw:6.3f}  (the most any such kernel can reach)")


if __name__ == "__main__":
    main()
