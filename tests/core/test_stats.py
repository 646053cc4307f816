"""The estimate, its interval, and throughput figures."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcpi.core.stats import HostWork, host_throughput, wilson_interval
from tests.helpers import pi_estimate as estimate


def test_estimate_of_a_known_count() -> None:
    e = estimate(785_398_163, 10**9)
    assert e.mean == pytest.approx(3.141592652)
    assert e.std_error == pytest.approx(
        4 * math.sqrt(math.pi / 4 * (1 - math.pi / 4) / 1e9), rel=1e-6
    )
    # At large N Wilson's interval is Wald's: π̂ ± 1.96 SE.
    assert e.ci_low == pytest.approx(e.mean - 1.96 * e.std_error, rel=1e-6)
    assert e.ci_high == pytest.approx(e.mean + 1.96 * e.std_error, rel=1e-6)


@given(trials=st.integers(1, 10**12), data=st.data())
def test_wilson_interval_contains_the_observed_fraction(trials: int, data: st.DataObject) -> None:
    successes = data.draw(st.integers(0, trials))
    low, high = wilson_interval(successes, trials)
    assert 0 <= low <= successes / trials <= high <= 1


def test_small_counts_keep_a_real_interval() -> None:
    e = estimate(3, 3)  # every dart hit: Wald would claim π = 4 exactly
    assert e.ci_low < 3 and e.ci_high == 4


@pytest.mark.parametrize(("hits", "darts"), [(5, 4), (-1, 4), (0, 0)])
def test_impossible_counts_are_refused(hits: int, darts: int) -> None:
    with pytest.raises(ValueError):
        estimate(hits, darts)


def test_host_rows_add_up_to_the_cluster_rate() -> None:
    work = {"a": HostWork(), "b": HostWork()}
    work["a"].add(600, 2.0)
    work["a"].add(400, 2.0)
    work["b"].add(1000, 1.0)
    rows = host_throughput(work, wall_seconds=4.0)
    assert [r.host for r in rows] == ["a", "b"]  # busiest first, then by name
    assert sum(r.darts_per_second for r in rows) == 2000 / 4.0
    assert rows[0].chunks == 2 and rows[0].darts_per_busy_second == 250.0
