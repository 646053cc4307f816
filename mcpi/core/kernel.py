"""The dart kernel: count the hits among darts [start, stop) of a job's one random stream.

The stream is defined over darts, not over tasks. A job seed names one PCG64 generator
(seeded through numpy's ``SeedSequence``); dart ``i`` is the generator's ``i``-th raw
64-bit output. A chunk [a, b) jumps straight to dart ``a`` with ``PCG64.advance`` (a
128-bit LCG jump: microseconds, even at a = 1e15), so the hit count of any chunk is a
pure function of (seed, a, b), and the total over any split of [0, N) is bit-identical to
the serial run, however many chunks, workers, hosts or retries computed it.

Geometry. One 64-bit draw is split into two signed 32-bit lattice coordinates x (low
half) and y (high half), so a dart lands on one of the 2**64 points of the square
[-2**31, 2**31)**2, centred on the origin. It hits when

    fl(fl(x*x) + fl(y*y)) < 2**62          (IEEE-754 double arithmetic, no fused ops)

i.e. it falls inside the circle of radius R = 2**31. Two properties make this the cheap
*and* accurate choice:

* A lattice centred on the circle's centre has no first-order edge bias: the number of
  lattice points in the disc is pi*R**2 + E(R) with only the Gauss-circle remainder E,
  so E[pi-hat] - pi = E(R)/R**2. ``benchmarks/resolution.py`` counts the points
  exactly: at R = 2**31 the bias is -4.3e-14 (it shrinks like R**-1.5). A quarter disc
  on the corner lattice [0, 2**32)**2 would carry a bias of about 4/2**32 ~ 9.3e-10
  from the points on its axes.
* x*x <= 2**62 needs 62 bits, so a double rounds it (error <= 2**9); the comparison
  can only differ from the exact integer test for points with
  |x*x + y*y - 2**62| <= 2**11, an annulus of ~2**14 lattice points out of 2**64: a
  bias below 4e-15. Each operation is a separate, correctly rounded numpy ufunc, so the
  result is the same on every IEEE-754 machine (and on either byte order, because the
  test is symmetric in x and y).

Both are many orders of magnitude below the Monte Carlo standard error of the largest
job the tool accepts (``mcpi.core.plan.MAX_DARTS`` = 1e16 darts: 4*sqrt(p(1-p)/N) ~ 1.6e-8).

Speed. Per block of darts the kernel makes one raw draw per dart and four vectorised
passes over cache-resident buffers (int32 -> float64, square, pairwise add, compare),
reaching about two thirds of the rate of raw PCG64 generation itself
(``benchmarks/kernel.py``). Memory is bounded by the block size whatever the chunk
length.

Never the numpy global generator: prefork workers inherit its state, so every child
would throw the same darts.
"""

from __future__ import annotations

import numpy as np

#: Darts per vectorised block. The one array allocated per block (the raw draws, 8
#: bytes per dart: 120 KiB) stays below glibc's mmap threshold (128 KiB), so it comes
#: from the heap, not from an mmap/munmap pair and fresh zeroed pages: with
#: ``MALLOC_TRIM_THRESHOLD_`` set (Dask's nanny sets 65536 and it is inherited), a 256 KiB
#: block ran at half speed. The reused buffers (~360 KiB) stay in a core's L2 cache, and
#: the Python overhead per block (~6 numpy calls) stays near 1 % of the block's work.
BLOCK_DARTS = 15 * 1024

#: Squared radius of the target circle on the int32 lattice (R = 2**31).
RADIUS_SQUARED = float(2**62)

#: Seeds are non-negative integers below 2**128 (the entropy of one PCG64 state).
MAX_SEED = 2**128 - 1


def check_seed(seed: int) -> int:
    """Return ``seed`` if it is a valid job seed, else raise ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, not {type(seed).__name__}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and 2**128-1, not {seed}")
    return seed


def dart_stream(seed: int, start: int = 0) -> np.random.PCG64:
    """The job's generator, positioned so that its next raw draw is dart ``start``."""
    generator = np.random.PCG64(check_seed(seed))
    if start:
        generator.advance(start)
    return generator


def draws(seed: int, start: int, stop: int) -> np.ndarray:
    """The raw 64-bit draws of darts [start, stop) (for tests and small inspections)."""
    return dart_stream(seed, start).random_raw(stop - start)


def count_hits(seed: int, start: int, stop: int, block: int = BLOCK_DARTS) -> int:
    """Exact number of darts in [start, stop) of stream ``seed`` that land in the circle.

    >>> count_hits(2024, 0, 1000) + count_hits(2024, 1000, 5000) == count_hits(2024, 0, 5000)
    True
    """
    if not 0 <= start <= stop:
        raise ValueError(f"invalid dart range [{start}, {stop})")
    if block < 1:
        raise ValueError("block must be positive")
    remaining = stop - start
    if remaining == 0:
        return 0
    generator = dart_stream(seed, start)
    size = min(block, remaining)
    # Reused buffers: the coordinates as doubles (two per dart), their sums, the mask.
    coords = np.empty(2 * size, dtype=np.float64)
    radii = np.empty(size, dtype=np.float64)
    inside = np.empty(size, dtype=np.bool_)
    hits = 0
    while remaining:
        n = min(size, remaining)
        lanes = generator.random_raw(n).view(np.int32)  # x, y interleaved
        c, r, m = coords[: 2 * n], radii[:n], inside[:n]
        c[:] = lanes
        np.multiply(c, c, out=c)
        np.add(c[0::2], c[1::2], out=r)
        np.less(r, RADIUS_SQUARED, out=m)
        hits += int(np.count_nonzero(m))
        remaining -= n
    return hits
