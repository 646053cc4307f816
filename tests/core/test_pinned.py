"""Every path held to known answers written once (``tests/core/pinned.py``): a change that
alters a result fails here even where a compiled path and its reference change together."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcpi.core import exact, sobol
from mcpi.core.kernel import count_hits, count_hits_portable, count_hits_reference
from mcpi.core.runtime import numeric_runtime
from tests.core.pinned import PINNED, model_sums, rqmc_sums, sobol_points

ANSWERS: dict[str, Any] = json.loads(PINNED.read_text())
RUNTIME_BOUND = ANSWERS["runtime_bound"]


@pytest.mark.parametrize(("seed", "start", "stop", "hits"), ANSWERS["count_hits"])
def test_every_kernel_path_counts_the_pinned_hits(
    seed: int, start: int, stop: int, hits: int
) -> None:
    assert count_hits_reference(seed, start, stop) == hits
    assert count_hits(seed, start, stop) == hits
    if stop < 2**64:  # the compiled paths' range; beyond it the reference counts
        assert count_hits_portable(seed, start, stop) == hits


def chunk_cases(cases: list[list[Any]]) -> list[Any]:
    return [pytest.param(*case, id=f"{case[0]}-{n}") for n, case in enumerate(cases)]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled-sums", "numpy-sums"])
@pytest.mark.parametrize(
    ("name", "params", "seed", "start", "stop", "sums"), chunk_cases(ANSWERS["model_chunks"])
)
def test_builtin_model_chunks_sum_to_the_pinned_answers(
    name: str,
    params: dict[str, Any],
    seed: int,
    start: int,
    stop: int,
    sums: list[str],
    compiled: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not compiled:
        monkeypatch.setattr(exact, "_compiled", None)
    assert model_sums(name, params, seed, start, stop) == sums


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled-sobol", "numpy-sobol"])
@pytest.mark.parametrize(
    ("seed", "replicate", "dims", "first", "stop", "points"), ANSWERS["sobol_points"]
)
def test_scrambled_sobol_points_are_the_pinned_ones(
    seed: int,
    replicate: int,
    dims: int,
    first: int,
    stop: int,
    points: list[str],
    compiled: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not compiled:
        monkeypatch.setattr(sobol, "_compiled", None)
    assert sobol_points(seed, replicate, dims, first, stop) == points


def rqmc_cases(cases: list[list[Any]]) -> list[Any]:
    """(model, params, seed, replicates, replicate, first, stop) and the pinned sums."""
    return [pytest.param(case[:-1], case[-1], id=f"{case[0]}-{n}") for n, case in enumerate(cases)]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "numpy"])
@pytest.mark.parametrize(("case", "sums"), rqmc_cases(ANSWERS["rqmc_chunks"]))
def test_rqmc_chunks_sum_to_the_pinned_answers(
    case: list[Any], sums: list[str], compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not compiled:
        monkeypatch.setattr(sobol, "_compiled", None)
        monkeypatch.setattr(exact, "_compiled", None)
    assert rqmc_sums(*case) == sums


PINNED_RUNTIME = RUNTIME_BOUND["runtime"]


#: Where numpy's exp, log and sin come from other code (SIMD paths), the last bits of a
#: model that takes them may differ: those answers hold on the runtime they were pinned on.
LIBM_BOUND = pytest.mark.skipif(
    numeric_runtime() != PINNED_RUNTIME,
    reason=f"pinned on numpy {PINNED_RUNTIME['numpy']} with this CPU's features; exp, log "
    "and sin may differ in the last bits on another numeric runtime",
)


@LIBM_BOUND
@pytest.mark.parametrize(
    ("name", "params", "seed", "start", "stop", "sums"),
    chunk_cases(RUNTIME_BOUND["model_chunks"]),
)
def test_libm_bound_model_chunks_sum_to_their_pinned_answers(
    name: str, params: dict[str, Any], seed: int, start: int, stop: int, sums: list[str]
) -> None:
    assert model_sums(name, params, seed, start, stop) == sums


@LIBM_BOUND
@pytest.mark.parametrize(("case", "sums"), rqmc_cases(RUNTIME_BOUND["rqmc_chunks"]))
def test_libm_bound_rqmc_chunks_sum_to_their_pinned_answers(
    case: list[Any], sums: list[str]
) -> None:
    assert rqmc_sums(*case) == sums
