"""Results and sweeps in notebooks: DataFrames (pandas) and a result's HTML table."""

from __future__ import annotations

import sys
from html.parser import HTMLParser

import pytest

import mcpi
from mcpi.errors import UsageError

LOCAL = {"local": True, "processes": 1, "env": {}}


def test_a_result_becomes_a_frame_of_its_outputs() -> None:
    result = mcpi.run("ball", samples=40_960, seed=3, params={"d": 3}, **LOCAL)
    frame = result.to_frame()
    assert list(frame.index) == ["volume"]
    row = frame.loc["volume"]
    volume = result["volume"]
    assert (row["mean"], row["std_error"]) == (volume.mean, volume.std_error)
    assert (row["ci_low"], row["ci_high"]) == (volume.ci_low, volume.ci_high)
    assert (row["exact"], row["error"]) == (volume.exact, volume.error)
    assert row["samples"] == result.samples


def test_a_sweep_becomes_one_row_per_job() -> None:
    results = mcpi.sweep("call", [{"K": 90.0}, {"K": 110.0}], 20_000, seed=4, **LOCAL)
    frame = results.to_frame()
    assert list(frame["K"]) == [90.0, 110.0]
    assert list(frame["price"]) == [r["price"].mean for r in results]
    assert list(frame["price_std_error"]) == [r["price"].std_error for r in results]
    assert list(frame["job_id"]) == [r.job_id for r in results]
    assert set(frame["seed"]) == {4} and (frame["wall_seconds"] > 0).all()


def test_a_result_shows_itself_as_a_table_in_a_notebook() -> None:
    result = mcpi.run("ball", samples=4096, seed=3, params={"d": 2}, **LOCAL)
    cells: list[str] = []

    class Cells(HTMLParser):
        def handle_data(self, data: str) -> None:
            cells.append(data)

    Cells().feed(result._repr_html_())
    assert cells[:1] == [f"mcpi ball {{'d': 2}}: 4,096 samples, seed 3, job {result.job_id}"]
    assert "volume" in cells and f"{result['volume'].mean:.8g}" in cells


def test_without_pandas_a_frame_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    result = mcpi.run("ball", samples=4096, seed=3, **LOCAL)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(UsageError, match=r"needs pandas.*pip install 'mcpi\[notebook\]'"):
        result.to_frame()
