"""Control variates from exact sums: the design a job runs and the estimates it gives.

**The estimator.** For an output x and a control y of the same sample whose mean μ is
known exactly, x̄ − β(ȳ − μ) is unbiased for E[x] for any fixed β, and its variance
Var(x)(1 − ρ²)/n is least at β* = Cov(x, y)/Var(y). β̂ = S_xy/S_yy from the job's own
sums has an O(1/n) bias (Glasserman, *Monte Carlo Methods in Financial Engineering*,
2004, §4.1); the standard error is that of the regression's residual,
s_e² = (S_xx − S_xy²/S_yy)/(n − 2), over √n. The variance reduction achieved is
S_xx/(S_xx − S_xy²/S_yy) = 1/(1 − ρ̂²): for the Black–Scholes call with the discounted
terminal price (mean S) as control, ρ = 0.9245 and the factor 6.88 (ESTIMATORS.md).

**Exact sums.** S_xy needs Σxy: the control design (:func:`control_design`) is the model
with, per point, the control's value and each output's product with it as extra
outputs, so that Σxy is an output's Σx — an exact integer like every other sum, and the
estimate is bit-identical whatever the split (β̂ is formed once, at the hub).

**Under randomized QMC** the replicates are independent: β̂ from all of them, then each
replicate's adjusted mean, and the replicate interval over those (as Owen, *Monte Carlo
theory, methods and examples*, §8.9, recommends a pooled coefficient); "worthwhile
improvements, but no change in the error rate" (Owen 2008).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np

from mcpi.core.exact import SCALE_BITS, OutputEstimate, replicate_intervals
from mcpi.core.model import Control, Model, ModelError, ParamValue, as_samples
from mcpi.core.stats import Z95


def product_name(output: str, control: str) -> str:
    """The design output holding ``output`` times ``control``, per point."""
    return f"{output}_x_{control}"


def control_design(model: Model, control: Control, params: Mapping[str, ParamValue]) -> Model:
    """``model`` with ``control`` and each output's product with it as further outputs:
    (x₁ … x_k, y, x₁y … x_ky), all from the same uniforms."""
    if model.uniform is None:
        raise ModelError(f"model {model.name} takes a generator: a control is a function of u")
    base, outputs = model.uniform, model.outputs

    def with_control(u: np.ndarray, **given: ParamValue) -> np.ndarray:
        n = u.shape[0]
        values = as_samples(model, base(u, **given), n, "control design")
        y = np.asarray(control.function(u, **given), dtype=np.float64).reshape(n)
        columns = np.empty((2 * len(outputs) + 1, n))
        columns[: len(outputs)] = values
        columns[len(outputs)] = y
        columns[len(outputs) + 1 :] = values * y
        return columns.T

    products = (product_name(o, control.name) for o in outputs)
    return model.as_design(with_control, (*outputs, control.name, *products))


def control_estimate(
    name: str,
    samples: int,
    x: tuple[int, int],
    y: tuple[int, int],
    xy: int,
    mean: float,
    control: str = "",
    exact: float | None = None,
) -> OutputEstimate:
    """Output ``name``'s control-variate estimate from its exact (Σx, Σx²), the control's
    (Σy, Σy²) and Σxy over ``samples`` samples, the control's mean being ``mean``."""
    if samples < 3:
        raise ValueError("a control variate's regression needs three samples at least")
    scale = 1 << SCALE_BITS
    n = samples
    sx, sxx = Fraction(x[0], scale), Fraction(x[1], scale)
    sy, syy = Fraction(y[0], scale), Fraction(y[1], scale)
    sxy = Fraction(xy, scale)
    cxx = sxx - sx * sx / n
    cyy = syy - sy * sy / n
    cxy = sxy - sx * sy / n
    beta = cxy / cyy if cyy > 0 else Fraction(0)
    adjusted = sx / n - beta * (sy / n - Fraction(mean))
    residual = max(Fraction(0), cxx - beta * cxy)
    std_error = math.sqrt(residual / (n - 2) / n)
    reduction = float(cxx / residual) if residual > 0 else math.inf
    centre = float(adjusted)
    return OutputEstimate(
        name=name,
        samples=samples,
        mean=centre,
        variance=float(cxx / (n - 1)),
        std_error=std_error,
        ci_low=centre - Z95 * std_error,
        ci_high=centre + Z95 * std_error,
        exact=exact,
        variance_reduction=reduction,
        control=control,
        control_beta=float(beta),
        control_gain=reduction,
    )


def replicate_control_estimate(
    name: str,
    points: int,
    sums: Sequence[tuple[int, int, int, int, int]],
    mean: float,
    control: str = "",
    exact: float | None = None,
) -> OutputEstimate:
    """Output ``name``'s control-variate estimate under randomized QMC, from each
    replicate's exact (Σx, Σx², Σy, Σy², Σxy) over ``points`` points: β̂ from all the
    replicates' sums, each replicate's adjusted mean, and their replicate interval
    (:func:`mcpi.core.exact.replicate_intervals`). ``variance_reduction`` is against
    plain Monte Carlo, ``control_gain`` against the same replicates without the control."""
    replicates = len(sums)
    scale = Fraction(1 << SCALE_BITS)
    n = points * replicates
    totals = [sum(column) for column in zip(*sums, strict=True)]
    sx, sxx, sy, syy, sxy = (Fraction(t) / scale for t in totals)
    cyy = syy - sy * sy / n
    beta = (sxy - sx * sy / n) / cyy if cyy > 0 else Fraction(0)
    mu = Fraction(mean)
    plain = [Fraction(s[0]) / scale / points for s in sums]
    adjusted = [
        m - beta * (Fraction(s[2]) / scale / points - mu) for m, s in zip(plain, sums, strict=True)
    ]
    values = np.array([[float(a) for a in adjusted]])
    low, high = replicate_intervals(values)
    centre = sum(adjusted, Fraction(0)) / replicates
    spread = sum(((a - centre) ** 2 for a in adjusted), Fraction(0)) / (replicates - 1)
    plain_centre = sum(plain, Fraction(0)) / replicates
    plain_spread = sum(((m - plain_centre) ** 2 for m in plain), Fraction(0)) / (replicates - 1)
    per_sample = (sxx - sx * sx / n) / (n - 1)
    return OutputEstimate(
        name=name,
        samples=n,
        mean=float(centre),
        variance=float(per_sample),
        std_error=math.sqrt(spread / replicates),
        ci_low=float(low[0]),
        ci_high=float(high[0]),
        exact=exact,
        replicates=replicates,
        variance_reduction=float(per_sample / n / (spread / replicates)) if spread else math.inf,
        control=control,
        control_beta=float(beta),
        control_gain=float(plain_spread / spread) if spread else math.inf,
    )
