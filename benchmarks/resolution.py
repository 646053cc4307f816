"""The kernel's discretisation bias, computed exactly: how far E[π̂] is from π.

    python benchmarks/resolution.py [--bits 31]

A dart is a point of the lattice [-R, R)² with R = 2**bits (the kernel uses 31), and
hits when x² + y² < R². So E[π̂] = 4 · (lattice points in the open disc) / (2R)², and
its distance from π is the Gauss-circle remainder over R². This script counts the
points exactly, column by column (an exact integer square root per column), for R =
2**8 … 2**bits and prints the bias next to the Monte Carlo standard error of the
largest job mcpi accepts. (Double rounding in the kernel can move only points within
2**11 of the circle, about 2**14 of the 2**64: a further bias below 4e-15.)
"""

from __future__ import annotations

import argparse
import time
from decimal import Decimal, getcontext

import numpy as np

from mcpi.core.plan import MAX_DARTS

getcontext().prec = 50
PI = Decimal("3.14159265358979323846264338327950288419716939937510")
BLOCK = 1 << 22


def isqrt(values: np.ndarray) -> np.ndarray:
    """Exact floor(sqrt(v)) for int64 v < 2**62."""
    roots = np.sqrt(values.astype(np.float64)).astype(np.int64)
    roots -= roots * roots > values  # the float root may be one too large ...
    roots += (roots + 1) * (roots + 1) <= values  # ... or one too small
    return roots


def disc_points(radius: int) -> int:
    """Lattice points (x, y) with x² + y² < radius², exactly."""
    total = 0
    for first in range(0, radius, BLOCK):
        x = np.arange(first, min(first + BLOCK, radius), dtype=np.int64)
        half_column = isqrt(radius * radius - 1 - x * x)  # largest |y| in column x
        columns = 2 * half_column + 1
        total += 2 * int(columns.sum()) - (int(columns[0]) if first == 0 else 0)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, default=31)
    args = parser.parse_args()
    p = float(PI) / 4
    largest_job_error = 4 * (p * (1 - p) / MAX_DARTS) ** 0.5
    print(f"Monte Carlo standard error at the largest job (1e16 darts): {largest_job_error:.2e}")
    print(f"{'R':>6}  {'E[pi-hat] - pi':>15}  {'x R^1.5':>8}  seconds")
    for bits in range(8, args.bits + 1):
        began = time.perf_counter()
        radius = 1 << bits
        bias = Decimal(disc_points(radius)) / Decimal(radius * radius) - PI
        print(
            f"2**{bits:<3}  {float(bias):+15.3e}  {float(bias) * radius**1.5:+8.3f}  "
            f"{time.perf_counter() - began:.1f}"
        )


if __name__ == "__main__":
    main()
