"""Sobol' indices through the hub's one pipeline, on the in-process executor: the same
indices bit for bit whatever the split and whatever goes wrong, a killed hub's job
resumed, the precision rule on every index, what the record keeps, and what cannot be
asked refused in one line before anything runs.

The estimators and their coverage: ``tests/core/test_sensitivity.py``; the same job on
the local pool and real Celery workers: ``tests/cli`` and ``tests/cluster``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mcpi.core.sensitivity import Sensitivity
from mcpi.errors import UsageError
from mcpi.hub.records import DONE, RUNNING, JobBook
from mcpi.hub.report import JobReport
from mcpi.hub.request import SENSITIVITY, HistogramSpec, JobRequest
from mcpi.models import builtin
from mcpi.settings import Settings
from mcpi.testing.inprocess import Faults, HubStopped, InProcess
from tests.hub.support import run

SEED = 20261206
FIRST, TOTAL = builtin.ishigami_indices()


def ishigami(**fields: object) -> JobRequest:
    asked: dict[str, object] = {"samples": 16 * 4096, "seed": SEED} | fields
    return JobRequest.asked("ishigami", SENSITIVITY, **asked)  # type: ignore[arg-type]


def indices(report: JobReport) -> Sensitivity:
    assert report.sensitivity is not None
    return report.sensitivity


def test_the_indices_are_bit_identical_whatever_the_split_and_the_faults(
    settings: Settings,
) -> None:
    # A chunk is whole batches of 4,096 points (2^15 coordinates of the 6-dimensional
    # design): 16 chunks of a replicate's all, or 64 of a quarter.
    whole = run(ishigami(samples=16 * 16384, chunk_size=16384), settings)
    faults = Faults(duplicate={0, 7}, lose={3, 11}, delay={5: 0.01})
    split = run(
        ishigami(samples=16 * 16384, chunk_size=4096),
        settings,
        InProcess({"a": 2, "b": 1}, faults=faults),
    )
    assert split.chunks > whole.chunks
    assert indices(split) == indices(whole)
    found = indices(whole)
    assert [i.name for i in found.inputs] == ["x1", "x2", "x3"]
    assert found.points == 16 * 16384 and found.evaluations == 5 * 16 * 16384
    for i, first, total in zip(found.inputs, FIRST, TOTAL, strict=True):
        assert i.first.ci_low <= first <= i.first.ci_high
        assert i.total.ci_low <= total <= i.total.ci_high


def test_the_record_keeps_the_indices_and_names_the_job(settings: Settings) -> None:
    report = run(ishigami(), settings)
    record = JobBook(settings.cache_dir / "jobs").load(report.job_id)  # type: ignore[operator]
    assert record.status == DONE and record.view == "sensitivity"
    assert record.kind == "Sobol' indices of ishigami"
    assert record.model["design"] == {"kind": "sobol", "output": "y"}
    kept = record.result["sensitivity"]  # type: ignore[index]
    assert kept == indices(report).to_json()
    assert kept["inputs"]["x2"]["first"]["value"] == indices(report).inputs[1].first.value


def test_a_killed_hub_s_job_resumes_to_the_same_indices(settings: Settings) -> None:
    uninterrupted = run(ishigami(samples=None, precision=2e-3, max_samples=1 << 24), settings)
    with pytest.raises(HubStopped):
        run(
            ishigami(samples=None, precision=2e-3, max_samples=1 << 24),
            settings,
            InProcess(faults=Faults(stop_after=20)),
        )
    jobs = JobBook(settings.cache_dir / "jobs")  # type: ignore[operator]
    (record,) = [r for r in jobs.recent() if r.status == RUNNING]
    resumed = run(JobRequest(resume=record.id, view=SENSITIVITY), settings)
    assert indices(resumed) == indices(uninterrupted)
    assert resumed.precision_reached and indices(resumed).widest <= 2e-3


def test_a_precision_target_holds_every_index(settings: Settings) -> None:
    report = run(ishigami(samples=None, precision=1e-3, max_samples=1 << 24), settings)
    assert report.precision_reached and indices(report).widest <= 1e-3
    assert len(report.stages) > 1
    assert any("precision ±0.001 on every index reached" in n for n in report.notes)
    bounded = run(ishigami(samples=None, precision=1e-6, max_samples=16 * 2048), settings)
    assert not bounded.precision_reached
    assert any("NOT reached" in n for n in bounded.notes)


def test_a_model_s_named_inputs_and_another_output(settings: Settings, tmp_path: Path) -> None:
    module = tmp_path / "pair.py"
    module.write_text(
        "import mcpi\n"
        "@mcpi.model('pair', outputs=('sum', 'product'), dims=2, inputs=('load', 'speed'))\n"
        "def pair(u):\n"
        "    return {'sum': u[:, 0] + 3 * u[:, 1], 'product': u[:, 0] * u[:, 1]}\n"
    )
    report = run(
        JobRequest.asked(f"{module}:pair", SENSITIVITY, samples=16 * 4096, seed=1, output="sum"),
        settings,
    )
    found = indices(report)
    assert found.output == "sum" and [i.name for i in found.inputs] == ["load", "speed"]
    # Additive: S = ST = (1, 9)/10, exactly in the limit.
    load, speed = found.inputs
    for index, exact in ((load.first, 0.1), (load.total, 0.1), (speed.first, 0.9)):
        assert index.ci_low <= exact <= index.ci_high and index.half_width < 1e-3


@pytest.mark.parametrize(
    ("model", "fields", "message"),
    [
        ("e", {}, "takes a generator"),
        ("ishigami", {"sampler": "mc"}, "drop --sampler mc"),
        ("ishigami", {"output": "z"}, "no output 'z'"),
        ("ishigami", {"histograms": (HistogramSpec("y", 0, 1, 4),)}, "are `mcpi-hub run`'s"),
        ("ishigami", {"replicates": 4}, "8 to 1024 replicates"),
        ("nosuchmodel", {}, "nosuchmodel"),
    ],
)
def test_what_cannot_be_asked_is_refused_in_one_line_before_anything_runs(
    settings: Settings, model: str, fields: dict[str, object], message: str
) -> None:
    executor = InProcess()
    with pytest.raises(UsageError, match=message) as refused:
        run(
            JobRequest.asked(model, SENSITIVITY, samples=4096, seed=1, **fields),  # type: ignore[arg-type]
            settings,
            executor,
        )
    assert "\n" not in str(refused.value) and executor.computed == []
