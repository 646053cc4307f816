"""Antithetic pairs through the hub's one pipeline, on the in-process executor: the same
estimate whatever the split and the faults, a killed hub's job resumed, a precision
target, the report's notes, and what cannot be asked refused in one line."""

from __future__ import annotations

import pytest

from mcpi.errors import UsageError
from mcpi.hub.records import RUNNING, JobBook
from mcpi.hub.request import HistogramSpec, JobRequest
from mcpi.models import builtin
from mcpi.settings import Settings
from mcpi.testing.inprocess import Faults, HubStopped, InProcess
from tests.hub.support import run

SEED = 20261207
PRICE = builtin.black_scholes_call(100.0, 100.0, 1.0, 0.05, 0.2)


def call(sampler: str, **fields: object) -> JobRequest:
    asked: dict[str, object] = {"samples": 16 * 2**14, "seed": SEED, "sampler": sampler}
    return JobRequest("call", antithetic=True, **(asked | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sampler", "points", "chunk"), [("mc", 2**14, 2**14), ("rqmc", 2**16, 2**15)]
)
def test_the_estimate_is_bit_identical_whatever_the_split_and_the_faults(
    settings: Settings, sampler: str, points: int, chunk: int
) -> None:
    whole = run(call(sampler, samples=16 * points, chunk_size=16 * points), settings)
    faults = Faults(duplicate={0, 2}, lose={1})
    split = run(
        call(sampler, samples=16 * points, chunk_size=chunk),
        settings,
        InProcess({"a": 2}, faults=faults),
    )
    assert split.chunks > whole.chunks and split.outputs == whole.outputs
    (price,) = whole.outputs
    assert price.antithetic_gain is not None and abs(price.mean - PRICE) < 4 * price.std_error
    assert any("model evaluations" in n for n in whole.notes)


def test_plain_monte_carlo_s_variance_is_halved_per_evaluation(settings: Settings) -> None:
    report = run(call("mc"), settings)
    (price,) = report.outputs
    assert price.antithetic_gain == pytest.approx(4.0, rel=0.1)
    assert price.variance_reduction == pytest.approx(2.0, rel=0.1)
    assert f"{2 * report.samples:,} model evaluations" in " ".join(report.notes)


def test_a_precision_target_holds_to_the_pairs_interval(settings: Settings) -> None:
    target = {"samples": None, "precision": 0.02, "max_samples": 10**8}
    paired = run(call("mc", **target), settings)
    (price,) = paired.outputs
    assert price.half_width <= 0.02
    split = run(call("mc", chunk_size=4096, **target), settings, InProcess({"a": 2}))
    assert split.outputs == paired.outputs
    plain = run(JobRequest("call", seed=SEED, sampler="mc", **target), settings)  # type: ignore[arg-type]
    # Half the evaluations per unit of variance: a quarter of the samples (pairs).
    assert paired.samples < plain.samples / 3


def test_a_killed_hub_s_job_resumes_with_its_pairs(settings: Settings) -> None:
    uninterrupted = run(call("rqmc", chunk_size=2**13), settings)
    with pytest.raises(HubStopped):
        run(call("rqmc", chunk_size=2**13), settings, InProcess(faults=Faults(stop_after=9)))
    jobs = JobBook(settings.cache_dir / "jobs")  # type: ignore[operator]
    (record,) = [r for r in jobs.recent() if r.status == RUNNING]
    assert record.model["design"] == {"kind": "antithetic"}
    assert run(JobRequest(resume=record.id), settings).outputs == uninterrupted.outputs


@pytest.mark.parametrize(
    ("model", "fields", "message"),
    [
        ("e", {}, "model e takes a generator (rng, n): antithetic pairs mirror its uniforms"),
        ("call", {"control": "terminal"}, "one variance reduction at a time"),
        (
            "call",
            {"histograms": (HistogramSpec("price", 0, 50, 10),)},
            "count single samples, not antithetic pairs' means: drop --antithetic",
        ),
    ],
)
def test_what_cannot_be_asked_is_refused_in_one_line(
    settings: Settings, model: str, fields: dict[str, object], message: str
) -> None:
    executor = InProcess()
    request = {"samples": 4096, "seed": 1, "antithetic": True} | fields
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(JobRequest(model, **request), settings, executor)  # type: ignore[arg-type]
    assert executor.computed == []
