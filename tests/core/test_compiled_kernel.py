"""The compiled kernel (mcpi/core/_darts.c) against the numpy reference: the same counts.

The compiled kernel has two paths: on CPUs with AVX-512 IFMA it cuts [start, stop) into 32
lanes stepped in vectors; elsewhere (and through ``count_hits_portable`` everywhere) into
16 lanes of scalar arithmetic, 64 steps per lane buffered between hit-counting passes.
Both count what the lanes leave over on one more position. The cases below cross every
one of those boundaries on both paths, at offsets up to the largest job mcpi accepts,
and random splits on top.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpi.core import kernel
from mcpi.core.kernel import (
    MAX_SEED,
    count_hits,
    count_hits_portable,
    count_hits_reference,
    draws,
    generator_steps,
)
from mcpi.core.plan import MAX_DARTS
from tests.helpers import HAS_IFMA

VECTOR_LANES, LANES, ROUNDS = 32, 16, 64

#: Where this CPU lacks the vector path's instructions, it runs (and so tests) the
#: portable path only: the vector path's tests are skipped, visibly, with this reason.
NO_IFMA = pytest.mark.skipif(
    not HAS_IFMA, reason="this CPU lacks AVX-512 IFMA: the kernel's vector path is untested here"
)
#: The compiled paths: the vector one (which ``count_hits`` runs where it can), and the
#: portable one.
PATHS = pytest.mark.parametrize(
    "count",
    [
        pytest.param(count_hits, id="ifma", marks=NO_IFMA),
        pytest.param(count_hits_portable, id="portable"),
    ],
)


def test_the_compiled_kernel_is_built_and_loaded_here() -> None:
    # The test environment is set up by scripts/setup, which makes sure a C compiler is
    # there: a silent fallback would leave every other test here comparing the reference
    # with itself.
    assert kernel.FALLBACK_REASON == ""
    assert kernel.KERNEL.startswith("compiled")


def test_this_cpu_runs_the_vector_path_where_it_has_avx512_ifma() -> None:
    # Where the CPU has the instructions, the fast path must be the one that runs (and so
    # the one every other test here and in the cluster tests exercises).
    running = kernel.KERNEL
    if HAS_IFMA:
        assert running == f"compiled, {VECTOR_LANES} lanes, AVX-512 IFMA"
    else:
        assert running == f"compiled, {LANES} lanes, portable"


LENGTHS = sorted(
    {0, 1, 2, 15, 16, 17, 31, 32, 33, 63, 65, 255, 257}
    | {LANES * ROUNDS + d for d in (-1, 0, 1)}
    | {LANES * ROUNDS * 3 + LANES + 5, LANES * (ROUNDS + 1) - 1, 100_003}
    | {VECTOR_LANES * 40 + d for d in (-1, 0, 1, VECTOR_LANES - 1)}
)


@PATHS
@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("start", [0, 7, 10**12 + 1, MAX_DARTS - 100_003])
def test_every_lane_and_buffer_remainder_counts_like_the_reference(
    count: Callable[[int, int, int], int], start: int, length: int
) -> None:
    for seed in (0, 2024, MAX_SEED):
        assert count(seed, start, start + length) == count_hits_reference(
            seed, start, start + length
        ), (seed, start, length)


@PATHS
@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, MAX_SEED),
    start=st.integers(0, MAX_DARTS),
    cuts=st.lists(st.integers(0, 60_000), max_size=6),
)
def test_random_splits_at_any_offset_count_like_the_reference(
    count: Callable[[int, int, int], int], seed: int, start: int, cuts: list[int]
) -> None:
    bounds = sorted({0, 60_000, *cuts})
    whole = count_hits_reference(seed, start, start + 60_000)
    assert count(seed, start, start + 60_000) == whole
    assert sum(count(seed, start + a, start + b) for a, b in itertools.pairwise(bounds)) == whole


@PATHS
def test_a_large_chunk_counts_like_the_reference(count: Callable[[int, int, int], int]) -> None:
    # Many buffer rounds per lane, and a remainder on each boundary.
    assert count(3, 10**15, 10**15 + 3_000_017) == count_hits_reference(
        3, 10**15, 10**15 + 3_000_017
    )


def test_dart_indices_past_64_bits_are_counted_by_the_reference() -> None:
    start = 2**64 - 5
    assert count_hits(9, start, start + 40) == count_hits_reference(9, start, start + 40)


@pytest.mark.parametrize(
    "portable", [pytest.param(False, id="ifma", marks=NO_IFMA), pytest.param(True, id="portable")]
)
def test_the_step_measure_steps_the_job_stream_itself(portable: bool) -> None:
    # generator_steps folds the outputs of lanes k*L... by XOR: for n*L steps, exactly the
    # first n*L draws of the stream, in some order.
    steps = VECTOR_LANES * 40  # a multiple of either path's step lanes (32 or 8)
    expected = np.bitwise_xor.reduce(draws(77, 0, steps))
    assert generator_steps(77, steps, portable) == int(expected)
    assert generator_steps(77, steps, portable) != generator_steps(78, steps, portable)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_the_compiled_kernel_loads_where_memory_cannot_become_executable() -> None:
    # PR_SET_MDWE(PR_MDWE_REFUSE_EXEC_GAIN) is the rule a unit's MemoryDenyWriteExecute=yes
    # sets. A JIT needs writable memory made executable; a compiled module does not.
    result = run_python(
        """
        import ctypes, mmap
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
        assert libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) == 0, "prctl failed"
        # Positive control: the rule is in force (write+exec memory is refused).
        try:
            mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        except OSError:
            pass
        else:
            raise SystemExit("write+exec memory was allowed: the rule is not in force")
        from mcpi.core import kernel
        print(kernel.KERNEL)
        print(kernel.count_hits(5, 10**9, 10**9 + 100_000))
        """
    )
    assert result.returncode == 0, result.stderr
    name, hits = result.stdout.split("\n")[:2]
    assert name == kernel.KERNEL
    assert int(hits) == count_hits_reference(5, 10**9, 10**9 + 100_000)


def test_without_the_compiled_module_the_reference_counts_and_says_why() -> None:
    result = run_python(
        """
        import sys
        sys.modules["mcpi.core._darts"] = None  # as if it had not been built
        from mcpi.core import kernel
        print(kernel.KERNEL)
        print(kernel.FALLBACK_REASON)
        print(kernel.count_hits(5, 0, 100_000))
        """
    )
    assert result.returncode == 0, result.stderr
    name, reason, hits = result.stdout.split("\n")[:3]
    assert name == "numpy reference"
    assert reason.startswith("the compiled kernel did not load")
    assert int(hits) == count_hits_reference(5, 0, 100_000)
