"""The kernel's rate per core, as a ratio to raw PCG64 generation measured in the same run.

    python benchmarks/kernel.py [--darts 2e8] [--repeats 5]

Raw generation (``PCG64.random_raw`` in blocks of the kernel's size) is the hardware
limit of any kernel that draws one 64-bit number per dart; the ratio is what the
geometry costs on top of it. Both are timed alternately, best of ``--repeats``, in one
process on one core, so machine speed cancels out of the ratio. Target: >= 0.6.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from mcpi.core.kernel import BLOCK_DARTS, count_hits


def raw_generation(darts: int) -> None:
    generator = np.random.PCG64(1)
    for _ in range(darts // BLOCK_DARTS):
        generator.random_raw(BLOCK_DARTS)


def kernel(darts: int) -> None:
    count_hits(1, 0, darts)


def best_rate(run, darts: int, repeats: int) -> float:  # type: ignore[no-untyped-def]
    best = 0.0
    for _ in range(repeats):
        began = time.perf_counter()
        run(darts)
        best = max(best, darts / (time.perf_counter() - began))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--darts", type=float, default=2e8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    darts = int(args.darts) // BLOCK_DARTS * BLOCK_DARTS
    kernel(BLOCK_DARTS * 8)  # warm up
    raw_rates, kernel_rates = [], []
    for _ in range(args.repeats):  # alternate, so drifts in machine speed hit both
        raw_rates.append(best_rate(raw_generation, darts, 1))
        kernel_rates.append(best_rate(kernel, darts, 1))
    raw, ours = max(raw_rates), max(kernel_rates)
    print(f"machine      {platform.processor() or platform.machine()}, numpy {np.__version__}")
    print(f"raw PCG64    {raw / 1e6:8.1f} M draws/s  (limit: one draw per dart)")
    print(f"mcpi kernel  {ours / 1e6:8.1f} M darts/s")
    print(f"ratio        {ours / raw:8.3f}  (target >= 0.6)")


if __name__ == "__main__":
    main()
