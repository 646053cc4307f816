"""Sobol' sensitivity indices of a model of uniforms, from exact sums.

**What they are.** For f(x) of d independent uniform inputs, with variance V, the
first-order index of input j is S_j = Var(E[f | x_j]) / V (the share of V that x_j
explains alone) and the total index is T_j = E[Var(f | x_~j)] / V (the share that
involves x_j at all, interactions included). Σ S_j ≤ 1 ≤ Σ T_j; S_j = T_j for an
input without interactions; T_j = 0 for an input that does not matter.

**The design** (Saltelli 2002; Saltelli et al. 2010): two independent point sets A and
B of N points in [0, 1)^d, and for each j the set AB_j, A with its column j taken from
B: N·(d + 2) evaluations. Here A and B are the two halves of one point set of 2d
uniforms — under randomized QMC, a scrambled 2d-dimensional Sobol' point set per
replicate, as scipy's ``sobol_indices`` and SALib's ``sample.sobol`` draw them. The
estimators, each a mean over the N points:

    V   ≈ the variance of the 2N values f(A), f(B)
    V_j ≈ mean( f(B) · (f(AB_j) − f(A)) )            Saltelli et al. 2010, Table 2 (b)
    V·T_j ≈ mean( (f(A) − f(AB_j))² ) / 2              Jansen 1999, Table 2 (f)

and S_j = V_j / V, T_j = (V·T_j) / V: those of SALib's ``analyze.sobol`` and scipy's
``sobol_indices`` (method ``saltelli_2010``), which the benchmark runs beside mcpi.
Saltelli et al. compared the estimators of their day and recommend exactly these two.
(A. Saltelli, P. Annoni, I. Azzini, F. Campolongo, M. Ratto, S. Tarantola, "Variance
based sensitivity analysis of model output. Design and estimator for the total
sensitivity index", Computer Physics Communications 181 (2010) 259–270; M. J. W.
Jansen, "Analysis of variance designs for model output", Computer Physics
Communications 117 (1999) 35–43.)

**Exact sums.** Every quantity above is a mean, so the design is itself a model: one
of 2d uniforms whose outputs per point are f(A), f(B), f(B)(f(AB_j) − f(A)) and
(f(A) − f(AB_j))²/2 (:func:`design_model`). A chunk's result is their exact (Σx, Σx²)
like any model's (:mod:`mcpi.core.exact`); Σf(A)² and Σf(B)² are their outputs' Σx².
The sums add in any order, so the indices are a pure function of the job, bit for bit
whatever the split, on the local pool or a cluster. No code travels: a worker builds
the same design around the model it has (:func:`mcpi.core.design.runnable`), named in
the job's model call.

**The interval.** Each randomized-QMC replicate gives its own S_j and T_j, from its own
sums; the replicates are independent and identically distributed, so the estimate is
their mean and its 95 % interval the replicate interval every RQMC answer in mcpi uses
(:func:`mcpi.core.exact.replicate_intervals`: Student's t, united with Hall's where the
replicates are skewed). The ratio's bias is of the order of the replicates' variance,
far below their spread. ``tests/core/test_sensitivity.py`` measures the coverage by
simulation, on Ishigami and the Sobol' g-function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from mcpi.core.exact import SCALE_BITS, replicate_intervals
from mcpi.core.model import Model, ModelError, ParamValue, as_samples, check_samples
from mcpi.core.precision import Sums
from mcpi.core.sampler import RQMC

#: The outputs of a design's first two evaluations: f(A) and f(B).
FA, FB = "f_a", "f_b"


def design_outputs(dims: int) -> tuple[str, ...]:
    """The design model's outputs for a model of ``dims`` uniforms: f(A), f(B), then
    f(B)(f(AB_j) − f(A)) for each input j, then (f(A) − f(AB_j))²/2 for each.

    >>> design_outputs(2)
    ('f_a', 'f_b', 'first_1', 'first_2', 'total_1', 'total_2')
    """
    inputs = range(1, dims + 1)
    return (FA, FB, *(f"first_{j}" for j in inputs), *(f"total_{j}" for j in inputs))


def design_model(model: Model, output: str, params: Mapping[str, ParamValue]) -> Model:
    """The Saltelli design of ``model``'s output ``output`` as a model of 2d uniforms
    (see the module's docstring), with the same name, version and code.

    The model is called d + 2 times per batch of points, on arrays of the batch's size
    (A, B, then each AB_j), so that its memory stays that of a batch whatever d is.

    >>> import math
    >>> plus = Model("plus", None, ("y",), uniform=lambda u: u[:, 0] + 2 * u[:, 1], dims=2)
    >>> design = design_model(plus, "y", {})
    >>> design.dimension({}), design.outputs[:3]
    (4, ('f_a', 'f_b', 'first_1'))
    """
    if model.uniform is None:
        raise ModelError(
            f"model {model.name} takes a generator (rng, n): Sobol' indices are of a model "
            "of uniforms (declare dims=, and a function of u)"
        )
    if output not in model.outputs:
        raise ModelError(
            f"model {model.name} has no output {output!r} (its outputs: {', '.join(model.outputs)})"
        )
    dims = model.dimension(params)
    row = model.outputs.index(output)
    base = model.uniform

    def evaluate(u: np.ndarray, what: str, **given: ParamValue) -> np.ndarray:
        values = as_samples(model, base(u, **given), u.shape[0], f"design {what}")
        check_samples(model, values, f"design {what}")
        analysed: np.ndarray = values[row]
        return analysed

    def saltelli(u: np.ndarray, **given: ParamValue) -> np.ndarray:
        n = u.shape[0]
        a, b = u[:, :dims], u[:, dims:]
        f_a = evaluate(np.ascontiguousarray(a), "A", **given)
        f_b = evaluate(np.ascontiguousarray(b), "B", **given)
        terms = np.empty((2 + 2 * dims, n))
        terms[0], terms[1] = f_a, f_b
        mixed = np.array(a)
        for j in range(dims):
            mixed[:, j] = b[:, j]
            f_ab = evaluate(mixed, f"AB_{j + 1}", **given)
            mixed[:, j] = a[:, j]
            terms[2 + j] = f_b * (f_ab - f_a)
            difference = f_a - f_ab
            terms[2 + dims + j] = 0.5 * (difference * difference)
        return terms.T

    return model.as_design(saltelli, design_outputs(dims), dims=2 * dims, inputs=())


def input_names(model: Model, params: Mapping[str, ParamValue]) -> tuple[str, ...]:
    """The names of a model's uniforms: its declared ``inputs``, else x1 … xd (input j
    being column j − 1 of ``u``)."""
    dims = model.dimension(params)
    if model.inputs:
        if len(model.inputs) != dims:
            raise ModelError(
                f"model {model.name} names {len(model.inputs)} inputs but takes {dims} uniforms"
            )
        return tuple(model.inputs)
    return tuple(f"x{j}" for j in range(1, dims + 1))


@dataclass(frozen=True, slots=True)
class IndexEstimate:
    """One index's estimate (the replicates' mean) and its 95 % interval."""

    value: float
    std_error: float
    ci_low: float
    ci_high: float

    @property
    def half_width(self) -> float:
        return (self.ci_high - self.ci_low) / 2

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "std_error": self.std_error,
            "ci95": [self.ci_low, self.ci_high],
        }


@dataclass(frozen=True, slots=True)
class InputIndices:
    """An input's first-order and total indices."""

    name: str
    first: IndexEstimate
    total: IndexEstimate


@dataclass(frozen=True)
class Sensitivity:
    """A model output's Sobol' indices, input by input, from ``points`` design points
    in all (``replicates`` replicates), each point d + 2 evaluations of the model."""

    output: str
    inputs: list[InputIndices]
    mean: float
    variance: float
    points: int
    replicates: int

    @property
    def evaluations(self) -> int:
        return self.points * (len(self.inputs) + 2)

    @property
    def widest(self) -> float:
        """The largest half-width of any index: what ``--precision`` bounds."""
        return max(max(i.first.half_width, i.total.half_width) for i in self.inputs)

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "mean": self.mean,
            "variance": self.variance,
            "points": self.points,
            "replicates": self.replicates,
            "evaluations": self.evaluations,
            "inputs": {
                i.name: {"first": i.first.to_json(), "total": i.total.to_json()}
                for i in self.inputs
            },
        }


def replicate_indices(
    sums: Sums, sampler: RQMC, group: int, dims: int, points: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[Fraction, Fraction]]]:
    """Each replicate's first-order and total indices (two d × R arrays) and its mean
    and variance of f, from a design job's exact sums (``points`` points a replicate,
    ``group`` integers a replicate)."""
    scale = points * (1 << SCALE_BITS)
    first = np.empty((dims, sampler.replicates))
    total = np.empty((dims, sampler.replicates))
    moments: list[tuple[Fraction, Fraction]] = []
    for r, part in enumerate(sampler.groups(sums, group)):
        # Each design output's mean (its Σx) and mean square (its Σx²), exactly.
        means = [Fraction(value, scale) for value in part[: 2 * (2 + 2 * dims)]]
        centre = (means[0] + means[2]) / 2
        variance = (means[1] + means[3]) / 2 - centre * centre
        moments.append((centre, variance))
        for j in range(dims):
            first[j, r] = _ratio(means[2 * (2 + j)], variance)
            total[j, r] = _ratio(means[2 * (2 + dims + j)], variance)
    return first, total, moments


def sobol_indices(
    output: str, inputs: tuple[str, ...], sums: Sums, samples: int, sampler: RQMC, group: int
) -> Sensitivity:
    """The Sobol' indices of a design job of ``samples`` points in all, from its exact
    sums: each the mean of the replicates' estimates, with their 95 % interval."""
    dims = len(inputs)
    points = sampler.points(samples)
    first, total, moments = replicate_indices(sums, sampler, group, dims, points)
    estimates = []
    for values in (first, total):
        low, high = replicate_intervals(values)
        centre = values.mean(axis=1)
        error = values.std(axis=1, ddof=1) / np.sqrt(sampler.replicates)
        estimates.append(
            [
                IndexEstimate(float(c), float(e), float(lo), float(hi))
                for c, e, lo, hi in zip(centre, error, low, high, strict=True)
            ]
        )
    replicates = len(moments)
    return Sensitivity(
        output=output,
        inputs=[
            InputIndices(name, s, t)
            for name, s, t in zip(inputs, estimates[0], estimates[1], strict=True)
        ],
        mean=float(sum(m for m, _ in moments) / replicates),
        variance=float(sum(v for _, v in moments) / replicates),
        points=samples,
        replicates=replicates,
    )


def _ratio(numerator: Fraction, variance: Fraction) -> float:
    # A constant output has no variance to share out: every index is 0, not 0/0.
    return float(numerator / variance) if variance > 0 else 0.0
