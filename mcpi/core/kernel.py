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

Speed. Two implementations count the same darts. :func:`count_hits_reference` is the
definition in numpy: per block of darts one raw draw per dart and four vectorised passes
over cache-resident buffers (int32 -> float64, square, pairwise add, compare), at about
0.6 of the rate of numpy's raw PCG64 generation. The compiled kernel (``_darts.c``,
built into the wheel) steps many positions ("lanes") of the same stream together and
fuses the hit test in. It has two paths, picked once when it loads: on CPUs with AVX-512
IFMA, 32 lanes stepped in 512-bit vectors, their 128-bit states as 52-bit limbs (about
3x numpy's raw rate on one core, ``benchmarks/kernel.py``); elsewhere 16 lanes of scalar
128-bit arithmetic (about 1.4x), the scalar multiplier being its limit.
:func:`count_hits` uses the best path that loaded (:data:`KERNEL` says which runs,
:data:`FALLBACK_REASON` why none did); the tests hold both paths to the reference's
count on random splits, huge offsets and every lane remainder. Memory is bounded by a
block whatever the chunk length.

Never the numpy global generator: prefork workers inherit its state, so every child
would throw the same darts.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mcpi.core import compiled
from mcpi.core.exact import SCALE_BITS

_compiled, FALLBACK_REASON = compiled.load("_darts", "the compiled kernel")

#: Which kernel :func:`count_hits` runs in this process, e.g. "compiled, 32 lanes, AVX-512
#: IFMA" (shown per worker by ``mcpi-hub status``).
KERNEL = f"compiled, {_compiled.LANES} lanes, {_compiled.PATH}" if _compiled else "numpy reference"

#: How :func:`generator_steps` steps the stream in this process.
STEPPING = f"{_compiled.STEP_LANES} lanes, {_compiled.PATH}" if _compiled else "not available"

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


def generator_steps(seed: int, steps: int, portable: bool = False) -> int:
    """Step the stream ``steps`` times on the compiled kernel's lanes, hit test left out.

    The generator's own limit for any kernel that draws one number per dart, measured by
    ``benchmarks/kernel.py`` and ``mcpi-hub bench``; ``portable`` steps on the portable
    path whatever this CPU runs. Steps a whole number of the path's lanes (``steps`` rounded
    down) and returns their outputs folded by XOR (so that none is optimised away); raises
    RuntimeError where the kernel did not load.
    """
    if _compiled is None:
        raise RuntimeError(FALLBACK_REASON)
    step = _compiled.step_portable if portable else _compiled.step
    fold: int = step(*_origin(check_seed(seed)), 0, steps)
    return fold


def draws(seed: int, start: int, stop: int) -> np.ndarray:
    """The raw 64-bit draws of darts [start, stop) (for tests and small inspections)."""
    return dart_stream(seed, start).random_raw(stop - start)


#: The compiled kernel takes dart indices as 64-bit integers; past them (far beyond
#: ``MAX_DARTS``) the reference counts.
_COMPILED_LIMIT = 2**64


@lru_cache(maxsize=256)
def _origin(seed: int) -> tuple[int, int, int, int]:
    """The stream's PCG64 state before dart 0 and its increment, as 64-bit halves."""
    state = np.random.PCG64(seed).state["state"]
    mask = 2**64 - 1
    return state["state"] >> 64, state["state"] & mask, state["inc"] >> 64, state["inc"] & mask


def count_hits(seed: int, start: int, stop: int) -> int:
    """Exact number of darts in [start, stop) of stream ``seed`` that land in the circle.

    >>> count_hits(2024, 0, 1000) + count_hits(2024, 1000, 5000) == count_hits(2024, 0, 5000)
    True
    """
    if not 0 <= start <= stop:
        raise ValueError(f"invalid dart range [{start}, {stop})")
    if _compiled is None or stop >= _COMPILED_LIMIT:
        return count_hits_reference(seed, start, stop)
    hits: int = _compiled.count_hits(*_origin(check_seed(seed)), start, stop)
    return hits


def dart_sums(hits: int) -> tuple[int, int]:
    """The exact sums of ``hits`` hits as the ``pi`` model's output: its samples are
    4·1{hit}, so Σx = 4·hits and Σx² = 16·hits, in units of 2**-1074 (:mod:`mcpi.core.exact`).

    >>> dart_sums(3) == (12 << 1074, 48 << 1074)
    True
    """
    return (4 * hits) << SCALE_BITS, (16 * hits) << SCALE_BITS


def count_hits_portable(seed: int, start: int, stop: int) -> int:
    """:func:`count_hits` on the compiled kernel's portable path, whatever this CPU runs.

    So that the tests can hold that path to the reference on a CPU that runs the vector
    one, and the kernel benchmark can show both. Raises RuntimeError where the kernel did
    not load.
    """
    if not 0 <= start <= stop < _COMPILED_LIMIT:
        raise ValueError(f"invalid dart range [{start}, {stop}) for the compiled kernel")
    if _compiled is None:
        raise RuntimeError(FALLBACK_REASON)
    hits: int = _compiled.count_hits_portable(*_origin(check_seed(seed)), start, stop)
    return hits


def count_hits_reference(seed: int, start: int, stop: int, block: int = BLOCK_DARTS) -> int:
    """:func:`count_hits` in numpy: the definition the compiled kernel is held to.

    >>> count_hits_reference(2024, 0, 5000) == count_hits(2024, 0, 5000)
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
