"""The rate book between jobs: what the hub measures once and reuses (:mod:`mcpi.hub.rates`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mcpi.hub.rates import MAX_AGE, RateBook
from mcpi.hub.run import measure
from mcpi.models.builtin import ball, pi
from mcpi.testing.inprocess import InProcess


def _book(tmp_path: Path, model: str) -> RateBook:
    # As the hub keys it: the executor's where, then the model's rate key.
    return RateBook(tmp_path / "rates.json", cluster=f"in-process {model}", version="test")


def test_a_model_new_to_a_cluster_reuses_the_cluster_s_task_overhead(tmp_path: Path) -> None:
    """The task overhead is the transport's: measured with one model, it is not measured
    again for the next; the rates, which are the model's, are."""
    first = InProcess(hosts={"a": 2, "b": 2}, rate=1e6, task_overhead=0.25)
    slots = {"a": 2, "b": 2}
    measured = measure(first, slots, _book(tmp_path, "pi"), pi.call({}))
    assert measured.task_overhead == 0.25 and first.calls["calibrate"] == 1

    second = InProcess(hosts={"a": 2, "b": 2}, rate=3e5, task_overhead=9.0)
    reused = measure(second, slots, _book(tmp_path, "ball"), ball.call({"d": 4}))
    assert second.calls["calibrate"] == 1  # the rates of the new model are measured
    assert reused.task_overhead == 0.25 and {h.rate for h in reused.hosts} == {3e5}
    # Kept with its first measurement's age: it goes stale when that one does.
    again = _book(tmp_path, "ball").capacity(slots)
    assert again is not None and again.task_overhead == 0.25
    later = time.time() + MAX_AGE + 60
    assert _book(tmp_path, "ball").capacity(slots, now=later) is None
    assert _book(tmp_path, "ball").known_overhead("in-process", now=later) is None


def test_an_overhead_is_not_reused_across_clusters_or_when_recalibrating(tmp_path: Path) -> None:
    slots = {"a": 2}
    measure(InProcess(hosts=slots, task_overhead=0.25), slots, _book(tmp_path, "pi"), pi.call({}))
    assert _book(tmp_path, "pi").known_overhead("elsewhere") is None
    fresh = InProcess(hosts=slots, task_overhead=0.5)
    measured = measure(fresh, slots, _book(tmp_path, "ball"), ball.call({"d": 4}), recalibrate=True)
    assert measured.task_overhead == 0.5


def test_the_book_is_written_sorted_whatever_order_it_learnt_in(tmp_path: Path) -> None:
    """A person diffs two rate books, or one before and after a job: keys in order."""
    slots = {"b": 1, "a": 1}
    measure(InProcess(hosts=slots, rate=1e6), slots, _book(tmp_path, "pi"), pi.call({}))
    measure(InProcess(hosts=slots, rate=1e5), slots, _book(tmp_path, "ball"), ball.call({"d": 4}))
    text = (tmp_path / "rates.json").read_text()

    def keys_in_order(node: object) -> bool:
        if isinstance(node, dict):
            return list(node) == sorted(node) and all(map(keys_in_order, node.values()))
        if isinstance(node, list):
            return all(map(keys_in_order, node))
        return True

    book = json.loads(text)
    assert len(book) >= 2 and keys_in_order(book)
