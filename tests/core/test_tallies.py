"""Histograms and exceedances as a chunk counts them: the same edges on every host, the
counts numpy would give, JSON that round-trips, and bad definitions refused."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from mcpi.core.distribution import histogram_result, quantile_estimate
from mcpi.core.job import Job
from mcpi.core.messages import decode_job, encode_job
from mcpi.core.model import model
from mcpi.core.plan import Plan
from mcpi.core.sampler import RQMC
from mcpi.core.tallies import MAX_BINS, Exceedance, Histogram, Tallies


def test_linear_edges_are_evenly_spaced_and_end_on_high() -> None:
    edges = Histogram(0, -1.0, 1.0, 8).edges
    assert edges[0] == -1.0 and edges[-1] == 1.0 and len(edges) == 9
    assert np.allclose(np.diff(edges), 0.25)


def test_log_edges_grow_by_the_ratio_sent_with_them() -> None:
    h = Histogram(0, 1.0, 1e6, 60, log=True)
    assert h.ratio == pytest.approx(10 ** (1 / 10))
    assert h.edges[-1] == 1e6 and np.allclose(h.edges[1:-1] / h.edges[:-2], h.ratio)
    message = h.to_json()
    assert message["ratio"] == h.ratio  # the hub's rounding, not each host's pow
    (back,) = Tallies.from_json([message]).items
    assert back == h and (back.edges == h.edges).all()


def test_counts_are_numpy_s_with_under_and_overflow() -> None:
    values = np.random.default_rng(3).normal(size=10_000)
    h = Histogram(0, -2.0, 2.0, 40)
    counts = h.count(values)
    inside, _ = np.histogram(values[(values >= -2) & (values < 2)], bins=h.edges)
    assert counts[0] == np.count_nonzero(values < -2) and counts[-1] == np.count_nonzero(
        values >= 2
    )
    assert counts[1:-1].tolist() == inside.tolist() and counts.sum() == len(values)
    assert Exceedance(0, 1.0).count(values)[0] == np.count_nonzero(values > 1.0)


def test_a_sample_on_an_edge_falls_in_the_bin_above() -> None:
    h = Histogram(0, 0.0, 1.0, 4)
    assert h.count(np.array([0.0, 0.25, 0.999, 1.0])).tolist() == [0, 1, 1, 0, 1, 1]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ((0, 1.0, 1.0, 4), "LO < HI"),
        ((0, 0.0, math.inf, 4), "finite"),
        ((0, 0.0, 1.0, 0), "1 to"),
        ((0, 0.0, 1.0, MAX_BINS + 1), "1 to"),
        ((0, 0.0, 1.0, 4, True), "log-spaced bins start above 0"),
    ],
)
def test_bad_histograms_are_refused(spec: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Histogram(*spec)


@pytest.mark.parametrize(
    "message",
    [
        [{"kind": "histogram", "output": 0, "low": 0, "high": 1, "bins": "4"}],
        [{"kind": "histogram", "output": "y", "low": 0, "high": 1, "bins": 4}],
        [{"kind": "exceedance", "output": 0, "threshold": "x"}],
        [{"kind": "sketch", "output": 0}],
        {"kind": "exceedance"},
    ],
)
def test_malformed_tallies_are_refused(message: Any) -> None:
    with pytest.raises(ValueError):
        Tallies.from_json(message)


def test_a_job_s_tallies_travel_and_shape_its_results() -> None:
    coin = model("coin", outputs=("a", "b"), dims=1)(lambda u: np.stack([u[:, 0], -u[:, 0]], 1))
    tallies = Tallies((Histogram(1, -1.0, 0.0, 10), Exceedance(0, 0.5)))
    job = Job("j", 7, Plan(8 * 1024, 1024), coin.call({}), RQMC(8, 1), tallies)
    assert decode_job(encode_job(job)) == job
    assert job.group == 4 + 12 + 1 and job.width == 8 * job.group and job.shape == (17, 4)
    with pytest.raises(ValueError, match="output"):
        Job("j", 7, Plan(8 * 1024, 1024), coin.call({}), RQMC(8, 1), Tallies((Exceedance(2, 0),)))


def test_a_histogram_result_and_a_quantile_from_known_counts() -> None:
    h = Histogram(0, 0.0, 10.0, 10)
    counts = [5, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 5]  # under, 10 bins, over
    result = histogram_result("x", h, counts)
    assert result.under == 5 and result.over == 5 and result.samples == 110
    q = quantile_estimate("x", 0.5, h, [counts], 110)
    assert q.value == pytest.approx(5.0) and q.ci_low < 5.0 < q.ci_high
    assert quantile_estimate("x", 0.01, h, [counts], 110).value == -math.inf  # below the bins
