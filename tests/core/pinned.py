"""Known answers, written once from the references: ``python -m tests.core.pinned``.

A change to the compiled kernel or the exact sums that altered a result would fail their
tests against the numpy references, unless the reference changed with it. These
answers do not change with the code: ``test_pinned.py`` holds every path to them.

* ``count_hits``: hit counts of dart ranges, from :func:`count_hits_reference`, at
  offsets up to the largest job and past 64-bit dart indices, across the lanes and
  buffers of both compiled paths;
* model chunks: the exact sums of the built-in models' chunks, taken with numpy's bucket
  pass (the compiled module kept out of the way) and, for ``pi``, the reference kernel;
* randomized QMC: scrambled Sobol' points (their doubles' bits, deep in a replicate too)
  and the exact sums of the uniform forms' chunks, from numpy's Sobol' pass.

Written on one machine; ``call`` and ``ishigami`` take ``exp`` and ``sin`` from numpy's
SIMD paths, which may differ in the last bits elsewhere (:mod:`mcpi.core.runtime`), so
the file records the numeric runtime they were pinned on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PINNED = Path(__file__).parent / "data" / "pinned.json"

#: (seed, start, stop) of the pinned dart counts.
DART_RANGES = [
    (0, 0, 1),
    (0, 0, 1000),
    (2024, 0, 1_000_003),
    (2024, 17, 100_017),
    (7, 10**12 + 1, 10**12 + 500_033),
    (2**128 - 1, 0, 65_537),
    (2**128 - 1, 10**15, 10**15 + 3_000_017),
    (5, 10**16 - 100_003, 10**16),
    (9, 2**64 - 5, 2**64 + 35),
]

#: (model, params, seed, start, stop) of the pinned model chunks; the runtime-bound
#: ones (libm SIMD) apart.
MODEL_CHUNKS = [
    ("pi", {}, 11, 0, 1_000_000),
    ("pi", {}, 2**100, 10**14, 10**14 + 123_457),
    ("ball", {"d": 3}, 12, 0, 4096 * 5),
    ("ball", {"d": 9}, 13, 4096 * 7, 4096 * 9),
    ("e", {}, 14, 0, 4096 * 4),
    ("e", {}, 2**127, 4096 * 100, 4096 * 103),
]
#: (seed, replicate, dims, first, stop) of pinned scrambled Sobol' points.
SOBOL_POINTS = [
    (0, 0, 1, 0, 8),
    (2026, 15, 5, 1000, 1004),
    (2**128 - 1, 1023, 3, 2**40 - 2, 2**40 + 2),
    (7, 3, 1111, 2**51 + 5, 2**51 + 6),
]
#: (model, params, seed, replicates, replicate, first, stop) of pinned randomized QMC
#: chunks: π's and the ball's uniform forms are arithmetic alone.
RQMC_CHUNKS = [
    ("pi", {}, 21, 16, 0, 0, 4096),
    ("pi", {}, 22, 16, 9, 2**30, 2**30 + 8192),
    ("ball", {"d": 7}, 23, 8, 7, 4096, 8192),
]
RUNTIME_BOUND = [
    ("call", {}, 15, 0, 4096 * 4),
    ("call", {"K": 130.0, "sigma": 0.5}, 16, 4096 * 2, 4096 * 6),
    ("ishigami", {}, 17, 0, 4096 * 4),
]
RUNTIME_BOUND_RQMC = [
    ("call", {}, 24, 16, 3, 0, 8192),
    ("ishigami", {}, 25, 16, 15, 2**20, 2**20 + 4096),
]


def model_sums(name: str, params: dict[str, Any], seed: int, start: int, stop: int) -> list[str]:
    """A chunk's exact sums as decimal strings."""
    from mcpi import models
    from mcpi.core.model import chunk_sums

    model = models.resolve(name)
    return [str(s) for s in chunk_sums(model, model.call(params), seed, start, stop)]


def sobol_points(seed: int, replicate: int, dims: int, first: int, stop: int) -> list[str]:
    """Scrambled Sobol' points as the hex of their doubles, point by point."""
    from mcpi.core import sobol

    return [float(u).hex() for u in sobol.uniforms(seed, replicate, dims, first, stop).ravel()]


def rqmc_sums(
    name: str,
    params: dict[str, Any],
    seed: int,
    replicates: int,
    replicate: int,
    first: int,
    stop: int,
) -> list[str]:
    """A randomized QMC chunk's exact sums (its replicate's slots) as decimal strings."""
    from mcpi import models
    from mcpi.core.model import rqmc_chunk_sums

    model = models.resolve(name)
    sums = rqmc_chunk_sums(model, model.call(params), seed, replicates, replicate, first, stop)
    group = 2 * len(model.outputs)
    return [str(s) for s in sums[group * replicate : group * (replicate + 1)]]


def write() -> None:
    from mcpi.core import exact, kernel, sobol
    from mcpi.core.runtime import numeric_runtime

    exact._compiled = None  # numpy's bucket pass: the reference
    kernel._compiled = None  # and the reference kernel
    sobol._compiled = None  # and numpy's Sobol' pass
    answers = {
        "count_hits": [
            [seed, start, stop, kernel.count_hits_reference(seed, start, stop)]
            for seed, start, stop in DART_RANGES
        ],
        "model_chunks": [[*case, model_sums(*case)] for case in MODEL_CHUNKS],
        "sobol_points": [[*case, sobol_points(*case)] for case in SOBOL_POINTS],
        "rqmc_chunks": [[*case, rqmc_sums(*case)] for case in RQMC_CHUNKS],
        "runtime_bound": {
            "runtime": numeric_runtime(),
            "model_chunks": [[*case, model_sums(*case)] for case in RUNTIME_BOUND],
            "rqmc_chunks": [[*case, rqmc_sums(*case)] for case in RUNTIME_BOUND_RQMC],
        },
    }
    PINNED.write_text(json.dumps(answers, indent=1) + "\n")


if __name__ == "__main__":
    write()
