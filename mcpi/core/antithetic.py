"""Antithetic pairs: each point u and its mirror 1 − u, the pair's mean one sample.

**The estimator.** For a model of uniforms f, x = (f(u) + f(1 − u))/2 has the mean of
f, since 1 − u is uniform too, and variance Var(f)(1 + ρ)/2 with ρ the correlation of
f(u) and f(1 − u). Where f is monotone in each uniform ρ ≤ 0, and a pair (two model
evaluations) beats two independent points: for the Black–Scholes call ρ = −0.501, a
cut of 1/(1 + ρ) = 2.00 per model evaluation (ESTIMATORS.md; Glasserman, *Monte Carlo
Methods in Financial Engineering*, 2004, §4.2). Where ρ > 0 the pairs lose, and the
report says so.

**Exact sums.** The antithetic design (:func:`antithetic_design`) is the model with,
per point, each output's pair mean and, as further outputs, each output's value at u
alone. Its sums are exact integers like every other output's, so the estimate is
bit-identical whatever the split, and the value at u alone measures what the pairs
gained on the job itself: under plain Monte Carlo Var(f)/Var(x) from the two columns'
per-sample variances; under randomized QMC the spread of the replicates' means of f(u)
alone over that of their pair means (each replicate's u are a scrambled net, their
mirrors another).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from mcpi.core.exact import OutputEstimate, mean_and_variance
from mcpi.core.model import Model, ModelError, ParamValue, as_samples


def single_name(output: str) -> str:
    """The design output holding ``output``'s value at u alone, per point."""
    return f"{output}_at_u"


def antithetic_design(model: Model) -> Model:
    """``model`` with each output replaced by its antithetic pair's mean, and each
    output's value at u alone as a further output: (x̄₁ … x̄_k, f₁(u) … f_k(u))."""
    if model.uniform is None:
        raise ModelError(
            f"model {model.name} takes a generator (rng, n): antithetic pairs mirror its "
            "uniforms u (declare dims=, and a function of u)"
        )
    base, outputs = model.uniform, model.outputs

    def paired(u: np.ndarray, **given: ParamValue) -> np.ndarray:
        n = u.shape[0]
        at_u = as_samples(model, base(u, **given), n, "antithetic design")
        mirrored = as_samples(model, base(1.0 - u, **given), n, "antithetic design")
        columns = np.empty((2 * len(outputs), n))
        columns[: len(outputs)] = (at_u + mirrored) / 2
        columns[len(outputs) :] = at_u
        return columns.T

    return model.as_design(paired, (*outputs, *(single_name(o) for o in outputs)))


def antithetic_gain(
    estimate: OutputEstimate, samples: int, single: tuple[int, int], pair: tuple[int, int]
) -> OutputEstimate:
    """Plain Monte Carlo: ``estimate`` (of the pair means, over ``samples`` pairs) with
    what the pairs gained: Var(f)/Var(x) from the exact (Σ, Σ²) of f(u) alone and of the
    pair means, and against plain Monte Carlo for the same 2n model evaluations, half that."""
    variance_alone = mean_and_variance(samples, *single)[1]
    variance_pairs = mean_and_variance(samples, *pair)[1]
    cut = float(variance_alone / variance_pairs) if variance_pairs > 0 else float("inf")
    return replace(estimate, antithetic_gain=cut, variance_reduction=cut / 2)


def replicate_antithetic_gain(
    estimate: OutputEstimate,
    points: int,
    singles: Sequence[tuple[int, int]],
    pairs: Sequence[tuple[int, int]],
) -> OutputEstimate:
    """Randomized QMC: ``estimate`` (the replicates' pair means, ``points`` pairs each)
    with what the pairs gained: the variance of the replicates' means of f(u) alone over
    that of their pair means, for twice the evaluations. ``variance_reduction`` stays
    against plain Monte Carlo, now for the 2n evaluations: from the per-evaluation
    variance of f(u) alone."""
    alone = np.array([float(mean_and_variance(points, *s)[0]) for s in singles])
    paired = np.array([float(mean_and_variance(points, *p)[0]) for p in pairs])
    spread_alone, spread_pairs = alone.var(ddof=1), paired.var(ddof=1)
    cut = float(spread_alone / spread_pairs) if spread_pairs > 0 else float("inf")
    pooled = (sum(s[0] for s in singles), sum(s[1] for s in singles))
    per_evaluation = float(mean_and_variance(points * len(singles), *pooled)[1])
    evaluations = 2 * points * len(singles)
    reduction = (
        per_evaluation / evaluations / estimate.std_error**2
        if estimate.std_error > 0
        else float("inf")
    )
    return replace(estimate, antithetic_gain=cut, variance_reduction=reduction)
