"""The inverse normal CDF the uniform-form models use, against scipy's ``ndtri``."""

from __future__ import annotations

import numpy as np
import pytest

from mcpi.core.sobol import to_unit
from mcpi.core.special import normal_quantile
from mcpi.core.stats import t_quantile

special = pytest.importorskip("scipy.special")
stats = pytest.importorskip("scipy.stats")


def test_the_normal_quantile_is_scipy_s_to_a_few_ulps() -> None:
    raw = np.random.default_rng(2026).bit_generator.random_raw(10**6)
    edges = [2.0**-53, 1 - 2.0**-53, 1e-300, 0.075, 0.925, 0.5, 1e-10, 1 - 1e-10]
    u = np.concatenate([to_unit(raw), edges])
    ours, theirs = normal_quantile(u), special.ndtri(u)
    assert np.max(np.abs(ours - theirs) / np.abs(theirs).clip(1e-300)) < 4e-15
    assert np.array_equal(np.sign(ours), np.sign(theirs))


def test_the_normal_quantile_s_ends() -> None:
    assert normal_quantile(np.array([0.0, 1.0])).tolist() == [-np.inf, np.inf]
    assert np.isnan(normal_quantile(np.array([-0.5, 1.5, np.nan]))).all()


@pytest.mark.parametrize("df", [7, 8, 15, 31, 63, 100, 255, 1023])
def test_student_t_quantiles_are_scipy_s(df: int) -> None:
    for p in (0.6, 0.9, 0.975, 0.995, 0.9999):
        assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-11)
    assert t_quantile(0.025, df) == -t_quantile(0.975, df)
