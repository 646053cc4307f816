"""Control variates through the hub's one pipeline, on the in-process executor: the
same estimate whatever the split and the faults, a killed hub's job resumed, what the
report says, and what cannot be asked refused in one line before anything runs."""

from __future__ import annotations

import pytest

from mcpi.errors import UsageError
from mcpi.hub.records import RUNNING, JobBook
from mcpi.hub.request import JobRequest
from mcpi.models import builtin
from mcpi.settings import Settings
from mcpi.testing.inprocess import Faults, HubStopped, InProcess
from tests.hub.support import run

SEED = 20261206
PRICE = builtin.black_scholes_call(100.0, 100.0, 1.0, 0.05, 0.2)


def call(sampler: str, **fields: object) -> JobRequest:
    asked: dict[str, object] = {"samples": 16 * 2**14, "seed": SEED, "sampler": sampler}
    return JobRequest("call", control="terminal", **(asked | fields))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("sampler", "points", "chunk"),
    # Under RQMC a chunk is whole batches of 2^15 points of one replicate (d = 1).
    [("mc", 2**14, 2**14), ("rqmc", 2**16, 2**15)],
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
    assert price.control == "terminal" and price.ci_low <= PRICE <= price.ci_high
    assert price.control_gain is not None and price.control_gain > 3


def test_plain_monte_carlo_s_variance_is_cut_about_6_9_times(settings: Settings) -> None:
    (price,) = run(call("mc"), settings).outputs
    assert price.control_beta == pytest.approx(0.6736, abs=0.02)
    assert price.variance_reduction == pytest.approx(6.88, rel=0.1)
    (plain,) = run(
        JobRequest("call", samples=16 * 2**14, seed=SEED, sampler="mc"), settings
    ).outputs
    assert price.std_error < plain.std_error / 2.4


def test_a_killed_hub_s_job_resumes_with_its_control(settings: Settings) -> None:
    uninterrupted = run(call("rqmc", chunk_size=2**13), settings)
    with pytest.raises(HubStopped):
        run(call("rqmc", chunk_size=2**13), settings, InProcess(faults=Faults(stop_after=9)))
    jobs = JobBook(settings.cache_dir / "jobs")  # type: ignore[operator]
    (record,) = [r for r in jobs.recent() if r.status == RUNNING]
    assert record.model["design"] == {"kind": "control", "control": "terminal"}
    assert run(JobRequest(resume=record.id), settings).outputs == uninterrupted.outputs


@pytest.mark.parametrize(("sampler", "precision"), [("mc", 0.02), ("rqmc", 1e-4)])
def test_a_precision_target_holds_to_the_controlled_interval(
    settings: Settings, sampler: str, precision: float
) -> None:
    """The rule looks at what the report gives: the adjusted estimate's half-width (under
    plain MC, Chow and Robbins' rule on the residual variance), so a controlled job stops
    with fewer samples than the same target without the control, on any split."""
    target = {"samples": None, "precision": precision, "max_samples": 10**8}
    controlled = run(call(sampler, **target), settings)
    (price,) = controlled.outputs
    assert price.half_width <= precision and price.ci_low <= PRICE <= price.ci_high
    assert any(f"precision ±{precision:g} on price reached" in n for n in controlled.notes)
    split = run(call(sampler, chunk_size=2**13, **target), settings, InProcess({"a": 2}))
    assert split.outputs == controlled.outputs
    plain = run(JobRequest("call", seed=SEED, sampler=sampler, **target), settings)  # type: ignore[arg-type]
    assert controlled.samples <= plain.samples / 2


@pytest.mark.parametrize(
    ("model", "fields", "message"),
    [
        ("call", {"control": "nope"}, "model call has no control 'nope' (its controls: terminal)"),
        ("ishigami", {"control": "x"}, "(its controls: none)"),
    ],
)
def test_what_cannot_be_asked_is_refused_in_one_line(
    settings: Settings, model: str, fields: dict[str, object], message: str
) -> None:
    executor = InProcess()
    request = {"samples": 4096, "seed": 1, "max_samples": 10**6} | fields
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(JobRequest(model, **request), settings, executor)  # type: ignore[arg-type]
    assert executor.computed == []
