"""Sobol' indices: the design as a model, exact sums on any split, the exact indices
within their intervals, and the intervals' coverage by simulation.

Each simulated job is a real one, computed by the functions the workers and the hub
run: each replicate's exact sums of the design from
:func:`mcpi.core.model.rqmc_chunk_sums`, the indices from
:func:`mcpi.core.sensitivity.sobol_indices`. Seeds are fixed, so every number here is
reproducible. ``python -m tests.core.test_sensitivity`` prints the table the docs quote.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np
import pytest

from mcpi.core.design import runnable
from mcpi.core.model import Model, ModelCall, ModelError, model, rqmc_chunk_sums
from mcpi.core.precision import PILOT_POINTS, ReplicatePrecision, Sums
from mcpi.core.sampler import RQMC
from mcpi.core.sensitivity import (
    Sensitivity,
    design_model,
    design_outputs,
    input_names,
    sobol_indices,
)
from mcpi.models import builtin
from tests.core.sensitivity_cases import GFUNCTION, ISHIGAMI, IndicesCase

REPLICATES = 16


def design_call(base: Model, output: str | None = None) -> tuple[Model, ModelCall]:
    """The design of ``base`` and the call a hub sends for it."""
    call = base.call({})
    analysed = output or base.outputs[0]
    design = design_model(base, analysed, call.kwargs)
    return design, replace(call, outputs=design.outputs, sensitivity=analysed)


def indices(case: IndicesCase, seed: int, points: int, replicates: int = REPLICATES) -> Sensitivity:
    """A job of ``points`` points a replicate, each replicate's sums computed whole."""
    design, call = design_call(case.model)
    sums: tuple[int, ...] = ()
    for r in range(replicates):
        part = rqmc_chunk_sums(design, call, seed, replicates, r, 0, points)
        sums = tuple(map(sum, zip(sums, part, strict=True))) if sums else part
    sampler = RQMC(replicates, design.dimension({}))
    names = input_names(case.model, call.kwargs)
    return sobol_indices("y", names, sums, replicates * points, sampler, len(sums) // replicates)


def test_the_design_is_a_model_of_twice_the_uniforms_with_its_terms_as_outputs() -> None:
    design, call = design_call(builtin.ishigami)
    assert design.dimension({}) == 6 and design.outputs == design_outputs(3)
    assert (design.name, design.version, design.digest) == (
        "ishigami",
        builtin.ishigami.version,
        builtin.ishigami.digest,
    )
    assert runnable(builtin.ishigami, call).outputs == design.outputs
    assert ModelCall.from_json(call.to_json()) == call
    assert "design" not in builtin.ishigami.call({}).to_json()  # other jobs unchanged
    with pytest.raises(ModelError, match="a kind this mcpi does not know: 'importance'"):
        ModelCall.from_json(call.to_json() | {"design": {"kind": "importance"}})


def test_the_design_s_terms_are_the_estimators_of_saltelli_and_jansen() -> None:
    # f(x) = x1 + 2·x2, so that every term can be written out by hand.
    linear = model("linear", dims=2)(lambda u: u[:, 0] + 2 * u[:, 1])
    design, _ = design_call(linear)
    u = np.array([[0.1, 0.2, 0.7, 0.9], [0.3, 0.4, 0.5, 0.6]])
    terms = design.uniform(u)  # type: ignore[misc]
    a, b = u[:, :2], u[:, 2:]
    f_a, f_b = a[:, 0] + 2 * a[:, 1], b[:, 0] + 2 * b[:, 1]
    f_ab1, f_ab2 = b[:, 0] + 2 * a[:, 1], a[:, 0] + 2 * b[:, 1]
    expected = [
        f_a,
        f_b,
        f_b * (f_ab1 - f_a),
        f_b * (f_ab2 - f_a),
        0.5 * (f_a - f_ab1) ** 2,
        0.5 * (f_a - f_ab2) ** 2,
    ]
    assert np.array_equal(terms, np.array(expected).T)


def test_a_design_s_sums_are_the_same_whatever_the_split() -> None:
    design, call = design_call(GFUNCTION.model)
    batch = RQMC(REPLICATES, 16).batch
    whole = rqmc_chunk_sums(design, call, 5, REPLICATES, 3, 0, 4 * batch)
    parts = [
        rqmc_chunk_sums(design, call, 5, REPLICATES, 3, a, a + batch)
        for a in range(0, 4 * batch, batch)
    ]
    assert whole == tuple(map(sum, zip(*parts, strict=True)))


@pytest.mark.parametrize("case", [ISHIGAMI, GFUNCTION], ids=lambda c: c.name)
def test_the_exact_indices_are_within_their_intervals_at_a_large_n(case: IndicesCase) -> None:
    found = indices(case, seed=20261206, points=1 << 14)
    for i, first, total in zip(found.inputs, case.first, case.total, strict=True):
        assert i.first.ci_low <= first <= i.first.ci_high, (i.name, i.first, first)
        assert i.total.ci_low <= total <= i.total.ci_high, (i.name, i.total, total)
        assert i.first.half_width < 0.01 and i.total.half_width < 0.01
    assert found.evaluations == REPLICATES * (1 << 14) * (len(case.first) + 2)


def test_a_constant_output_shares_out_no_variance() -> None:
    flat = model("flat", dims=2)(lambda u: np.full(u.shape[0], 3.0))
    found = indices(IndicesCase(flat, (0.0, 0.0), (0.0, 0.0)), seed=1, points=1024)
    assert found.variance == 0.0 and found.mean == 3.0
    assert all(i.first.value == i.total.value == 0.0 for i in found.inputs)


def test_what_cannot_be_a_design_is_refused_in_one_line() -> None:
    with pytest.raises(ModelError, match="takes a generator"):
        design_model(builtin.euler, "e", {})
    with pytest.raises(ModelError, match="no output 'price2'"):
        design_model(builtin.call, "price2", builtin.call.call({}).kwargs)
    with pytest.raises(ModelError, match="inputs are distinct names"):
        model("named", dims=2, inputs=("x", "x"))(lambda u: u[:, 0])
    _, call = design_call(builtin.ishigami)
    other = replace(call, digest="0" * 16)
    with pytest.raises(ModelError, match="the job needs"):
        runnable(builtin.ishigami, other)  # a worker with other code refuses the chunk


def test_inputs_are_named_by_the_model_or_x1_to_xd() -> None:
    assert input_names(builtin.ishigami, {}) == ("x1", "x2", "x3")
    assert input_names(GFUNCTION.model, {})[-1] == "x8"


def test_the_precision_rule_stops_when_every_index_is_narrow_enough() -> None:
    design, call = design_call(builtin.ishigami)
    sampler = RQMC(REPLICATES, 6)
    group = 2 * len(design.outputs)

    def widest(sums: Sums, samples: int) -> float:
        return sobol_indices("y", ("x1", "x2", "x3"), sums, samples, sampler, group).widest

    rule = ReplicatePrecision(5e-3, 1 << 24, sampler, group, half_width_of=widest)
    samples, sums = 0, ()
    while (total := rule.next_total(sums, samples)) is not None:
        for r in range(REPLICATES):
            first = samples // REPLICATES
            part = rqmc_chunk_sums(design, call, 9, REPLICATES, r, first, total // REPLICATES)
            sums = tuple(map(sum, zip(sums, part, strict=True))) if sums else part
        samples = total
    assert widest(sums, samples) <= 5e-3 < widest(sums, samples) * 4
    assert samples > REPLICATES * PILOT_POINTS  # it took more than the pilot


#: (case, points a replicate, runs): 800 runs put a coverage's binomial noise at ±0.8 %
#: (one standard error); the heavier g-function gets fewer.
COVERAGE = [(ISHIGAMI, 1 << 8, 800), (ISHIGAMI, 1 << 10, 400), (GFUNCTION, 1 << 8, 300)]


def coverage(case: IndicesCase, points: int, runs: int) -> np.ndarray:
    """The share of ``runs`` jobs whose interval covered each exact index: 2 × d."""
    covered = np.zeros((2, len(case.first)))
    for run in range(runs):
        found = indices(case, seed=7_000_000 + run, points=points)
        for j, i in enumerate(found.inputs):
            covered[0, j] += i.first.ci_low <= case.first[j] <= i.first.ci_high
            covered[1, j] += i.total.ci_low <= case.total[j] <= i.total.ci_high
    return covered / runs


@pytest.mark.simulation
@pytest.mark.parametrize(
    ("case", "points", "runs"), COVERAGE, ids=lambda v: getattr(v, "name", str(v))
)
def test_every_index_s_interval_covers_at_its_nominal_rate(
    case: IndicesCase, points: int, runs: int
) -> None:
    rates = coverage(case, points, runs)
    # Each index within about four binomial standard errors of 95 %, and their mean
    # within two of the mean's (the union interval is a little conservative).
    noise = (0.95 * 0.05 / runs) ** 0.5
    assert rates.min() >= 0.95 - 4.5 * noise, rates
    assert rates.max() <= 0.995, rates
    assert abs(rates.mean() - 0.955) <= 0.02, rates


if __name__ == "__main__":
    for case, points, runs in COVERAGE:
        rates = coverage(case, points, runs)
        sys.stdout.write(
            f"{case.name:10} {REPLICATES} × {points:>5}: first "
            f"{' '.join(f'{r:.3f}' for r in rates[0])}; total "
            f"{' '.join(f'{r:.3f}' for r in rates[1])} ({runs} runs)\n"
        )
