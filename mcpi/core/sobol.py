"""Scrambled Sobol' points: the point sets of randomized quasi-Monte Carlo (RQMC).

**The sequence.** Sobol' points in d dimensions with Joe and Kuo's direction numbers
(search criterion D(6), the choice scipy and QMCPy make; ``data/joe-kuo-6.1111``, up to
:data:`MAX_DIMS` dimensions), as 64-bit integers: coordinate j of point i is the XOR of
the direction vectors v_{j,k} over the bits k of i's Gray code g(i) = i ⊕ (i >> 1)
(Antonov and Saleev's ordering, Bratley and Fox's algorithm 659):

    x_j(i) = ⊕_{k : bit k of g(i)} v_{j,k},    v_{j,k} = m_{j,k} · 2^(63 − k)

with m_{j,k} from the primitive polynomial's recurrence. Any point is reached directly,
in O(64·d) (no fast-forward through the points before it, unlike scipy's O(i·d)), and
consecutive points differ by one direction vector (g(i) ⊕ g(i − 1) = 2^ctz(i)), so a
block costs one XOR per point and coordinate. Unscrambled, the integers are scipy's
``Sobol(d, scramble=False, bits=64)`` bit for bit (the tests check it).

**The scramble.** Each replicate r of a job is the sequence under its own random linear
matrix scramble and digital shift (Matoušek 1998; "LMS + shift", scipy's and QMCPy's
default): x'_j(i) = L_j · x_j(i) ⊕ e_j over GF(2), L_j a random lower-triangular 64×64 bit
matrix with a unit diagonal, e_j a random 64-bit shift. Being linear, it scrambles the
direction vectors once (v'_{j,k} = L_j · v_{j,k}), so point i is as cheap to reach as
before. For averages it gives the same variance as Owen's nested uniform scramble (Goda
and Suzuki, arXiv 2507.04297), RMSE O(n^(−3/2+ε)) for smooth integrands (Owen 2008),
and it is unbiased: each point is uniform on the unit cube. Owen's nested scramble would
need a hash per point and digit; LMS needs nothing per point. The matrices and shift of
replicate r come from ``SeedSequence(seed, spawn_key=(SPAWN_DOMAIN, r))`` (numpy's
independent streams, never seed + r; two keys, so no block stream of plain Monte Carlo,
``spawn_key=(k,)``, is ever the same).

**Doubles.** A point's 64-bit coordinate becomes u = (⌊x / 2¹²⌋ + ½) · 2⁻⁵², exactly: the
centre of its cell of width 2⁻⁵², so u is never 0 or 1 (an inverse normal never sees
±∞) and points that share their top 52 bits share u.

Use n = 2^m points per replicate, from point 0, and no thinning: aligned blocks of 2^k
points of one replicate are (t, k, d)-nets; other sizes lose the rate.
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path

import numpy as np

from mcpi.core import compiled

# Where it did not load, numpy's passes give the same points, slower.
_compiled, FALLBACK_REASON = compiled.load("_sobol", "the compiled Sobol' points")
#: Which path :func:`uniforms` takes in this process.
SOBOL_PATH = "compiled" if _compiled else "numpy"

#: Joe and Kuo's direction numbers (their file format), dimensions 2 to MAX_DIMS.
DIRECTION_NUMBERS = Path(__file__).parent / "data" / "joe-kuo-6.1111"
#: Dimensions the vendored table covers.
MAX_DIMS = 1111
#: Bits of a point's integer coordinates: points per replicate up to 2^64.
BITS = 64
#: The first spawn key of a replicate's scramble (see the module docstring): "RQMC".
SPAWN_DOMAIN = 0x52514D43

_MASK = (1 << BITS) - 1


@cache
def _table() -> tuple[tuple[int, int, tuple[int, ...]], ...]:
    """(s, a, m_1 … m_s) of dimensions 2 … MAX_DIMS, from the vendored file."""
    rows = []
    for line in DIRECTION_NUMBERS.read_text().splitlines():
        if line.startswith("#") or line.startswith("d "):
            continue
        _, s, a, *m = (int(word) for word in line.split())
        rows.append((s, a, tuple(m)))
    return tuple(rows)


@lru_cache(maxsize=64)
def direction_vectors(dims: int) -> np.ndarray:
    """The unscrambled direction vectors v_{j,k}, a (dims, BITS) uint64 array.

    >>> [int(v) >> 60 for v in direction_vectors(2)[1, :4]]  # m = 1, 3, 5, 15 (poly x + 1)
    [8, 12, 10, 15]
    """
    check_dims(dims)
    vectors = np.empty((dims, BITS), dtype=np.uint64)
    vectors[0] = [1 << (BITS - 1 - k) for k in range(BITS)]  # van der Corput: m = 1
    for j, (s, a, initial) in enumerate(_table()[: dims - 1], start=1):
        m = list(initial)
        for k in range(s, BITS):
            # m_k = 2a₁m_{k−1} ⊕ 4a₂m_{k−2} ⊕ … ⊕ 2^{s−1}a_{s−1}m_{k−s+1} ⊕ 2^s m_{k−s} ⊕ m_{k−s}
            new = m[k - s] ^ (m[k - s] << s)
            for i in range(1, s):
                if (a >> (s - 1 - i)) & 1:
                    new ^= m[k - i] << i
            m.append(new)
        vectors[j] = [(mk << (BITS - 1 - k)) & _MASK for k, mk in enumerate(m)]
    return vectors


def check_dims(dims: int) -> int:
    """``dims`` if the table covers it, else ValueError."""
    if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= MAX_DIMS:
        raise ValueError(f"Sobol' points have 1 to {MAX_DIMS} dimensions, not {dims!r}")
    return dims


@lru_cache(maxsize=256)
def scrambled(seed: int, replicate: int, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """Replicate ``replicate``'s scrambled direction vectors (dims, BITS) and shift (dims,).

    Each L_j row p (MSB first) is p random bits above a unit diagonal: row_p = (random bits
    in columns 0 … p − 1) | 2^(63 − p); bit p of L·v is the parity of row_p & v.
    """
    vectors = direction_vectors(dims)
    generator = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(SPAWN_DOMAIN, replicate)))
    )
    raw = generator.integers(0, 1 << BITS, size=(dims, BITS), dtype=np.uint64, endpoint=False)
    shift = generator.integers(0, 1 << BITS, size=dims, dtype=np.uint64, endpoint=False)
    p = np.arange(BITS, dtype=np.uint64)
    diagonal = np.left_shift(np.uint64(1), np.uint64(BITS - 1) - p)
    # Columns 0 … p − 1 (the p most significant bits): all ones above the diagonal bit.
    above = ~(diagonal | (diagonal - np.uint64(1)))
    rows = (raw & above) | diagonal  # (dims, BITS): L_j's rows
    # bit p of L_j · v_{j,k} = parity(rows[j, p] & v[j, k]), for all j, p, k at once
    products = rows[:, :, None] & vectors[:, None, :]  # (dims, p, k)
    parity = _parity(products)  # 0/1, (dims, p, k)
    weights = np.left_shift(np.uint64(1), np.uint64(BITS - 1) - p)  # bit p's value
    mixed = np.bitwise_or.reduce(parity * weights[None, :, None], axis=1)  # (dims, k)
    return mixed.astype(np.uint64), shift


def _parity(values: np.ndarray) -> np.ndarray:
    """Each uint64's bit parity (0 or 1), elementwise."""
    x = values.copy()
    for shift in (32, 16, 8, 4, 2, 1):
        x ^= x >> np.uint64(shift)
    return x & np.uint64(1)


def points(vectors: np.ndarray, shift: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Integer points [start, stop) of the sequence with ``vectors`` and ``shift``, as a
    (stop − start, dims) uint64 array (unscrambled: ``shift`` zero, ``vectors`` from
    :func:`direction_vectors`)."""
    if not 0 <= start <= stop <= 1 << BITS:
        raise ValueError(f"points [{start}, {stop}) are not within a sequence of 2^{BITS}")
    count = stop - start
    dims = vectors.shape[0]
    out = np.empty((count, dims), dtype=np.uint64)
    if not count:
        return out
    first = shift.copy()
    gray = start ^ (start >> 1)
    for k in range(BITS):
        if (gray >> k) & 1:
            first ^= vectors[:, k]
    out[0] = first
    if count > 1:
        following = np.arange(start + 1, stop, dtype=np.uint64)
        lowest = following & (~following + np.uint64(1))  # 2^ctz(i)
        ctz = np.frexp(lowest.astype(np.float64))[1] - 1  # exact: a power of two
        out[1:] = vectors[:, ctz].T
        np.bitwise_xor.accumulate(out, axis=0, out=out)
    return out


def uniforms(seed: int, replicate: int, dims: int, start: int, stop: int) -> np.ndarray:
    """Points [start, stop) of replicate ``replicate``'s scrambled sequence as doubles in
    the open unit cube, a (stop − start, dims) array (see the module docstring).

    >>> u = uniforms(7, 0, 2, 0, 1024)
    >>> bool((u > 0).all() and (u < 1).all())
    True
    >>> strata = np.floor(u * 32).astype(int)  # an aligned 2^10 block is a net:
    >>> len({(int(a), int(b)) for a, b in strata})  # one point in each 1/32 x 1/32 cell
    1024
    """
    vectors, shift = scrambled(seed, replicate, check_dims(dims))
    if not 0 <= start <= stop <= 1 << BITS:
        raise ValueError(f"points [{start}, {stop}) are not within a sequence of 2^{BITS}")
    if _compiled is None:
        return to_unit(points(vectors, shift, start, stop))
    out = np.empty((stop - start, dims), dtype=np.float64)
    if stop > start:
        _compiled.fill(vectors, shift, start, out)
    return out


def to_unit(integers: np.ndarray) -> np.ndarray:
    """64-bit coordinates as the centres of their cells of width 2⁻⁵²: (⌊x/2¹²⌋ + ½)·2⁻⁵²."""
    return ((integers >> np.uint64(12)).astype(np.float64) + 0.5) * 2.0**-52
