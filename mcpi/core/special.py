"""Special functions a model of uniforms needs, in numpy alone.

:func:`normal_quantile` is the inverse of the standard normal CDF, Φ⁻¹: a uniform-form
model turns a uniform u in (0, 1) into a standard normal Φ⁻¹(u) with it (scipy's
``scipy.special.ndtri`` does the same; the built-in models use this one so that the
workers need numpy alone).
"""

from __future__ import annotations

import numpy as np

# Wichura's algorithm AS 241 (PPND16), Applied Statistics 37 (1988) 477-484: rational
# approximations of Φ⁻¹ with a relative error about 1e-16, in three regions of p.
_A = (
    3.3871328727963666080e0, 1.3314166789178437745e2, 1.9715909503065514427e3,
    1.3731693765509461125e4, 4.5921953931549871457e4, 6.7265770927008700853e4,
    3.3430575583588128105e4, 2.5090809287301226727e3,
)  # fmt: skip
_B = (
    1.0, 4.2313330701600911252e1, 6.8718700749205790830e2, 5.3941960214247511077e3,
    2.1213794301586595867e4, 3.9307895800092710610e4, 2.8729085735721942674e4,
    5.2264952788528545610e3,
)  # fmt: skip
_C = (
    1.42343711074968357734e0, 4.63033784615654529590e0, 5.76949722146069140550e0,
    3.64784832476320460504e0, 1.27045825245236838258e0, 2.41780725177450611770e-1,
    2.27238449892691845833e-2, 7.74545014278341407640e-4,
)  # fmt: skip
_D = (
    1.0, 2.05319162663775882187e0, 1.67638483018380384940e0, 6.89767334985100004550e-1,
    1.48103976427480074590e-1, 1.51986665636164571966e-2, 5.47593808499534494600e-4,
    1.05075007164441684324e-9,
)  # fmt: skip
_E = (
    6.65790464350110377720e0, 5.46378491116411436990e0, 1.78482653991729133580e0,
    2.96560571828504891230e-1, 2.65321895265761230930e-2, 1.24266094738807843860e-3,
    2.71155556874348757815e-5, 2.01033439929228813265e-7,
)  # fmt: skip
_F = (
    1.0, 5.99832206555887937690e-1, 1.36929880922735805310e-1, 1.48753612908506148525e-2,
    7.86869131145613259100e-4, 1.84631831751005468180e-5, 1.42151175831644588870e-7,
    2.04426310338993978564e-15,
)  # fmt: skip


def _polynomial(coefficients: tuple[float, ...], x: np.ndarray) -> np.ndarray:
    """Σ c_k x^k by Horner's rule (coefficients from the constant term up)."""
    result = np.full_like(x, coefficients[-1])
    for c in coefficients[-2::-1]:
        result = result * x + c
    return result


def normal_quantile(p: np.ndarray) -> np.ndarray:
    """Φ⁻¹(p), elementwise, for p in (0, 1) (±inf at 0 and 1, NaN outside).

    >>> [round(float(x), 12) for x in normal_quantile(np.array([0.5, 0.975, 1e-10]))]
    [0.0, 1.95996398454, -6.361340902404]
    """
    p = np.asarray(p, dtype=np.float64)
    q = p - 0.5
    out = np.empty_like(p)
    central = np.abs(q) <= 0.425
    if central.any():
        qc = q[central]
        r = 0.180625 - qc * qc
        out[central] = qc * _polynomial(_A, r) / _polynomial(_B, r)
    tails = ~central
    if tails.any():
        qt, smaller = q[tails], np.minimum(p[tails], 1.0 - p[tails])
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.sqrt(-np.log(smaller))
            near = r <= 5.0
            x = np.empty_like(r)
            rn = r[near] - 1.6
            x[near] = _polynomial(_C, rn) / _polynomial(_D, rn)
            rf = r[~near] - 5.0
            x[~near] = _polynomial(_E, rf) / _polynomial(_F, rf)
        x = np.where(smaller == 0, np.inf, np.where(smaller > 0, x, np.nan))
        out[tails] = np.where(qt < 0, -x, x)
    return out
