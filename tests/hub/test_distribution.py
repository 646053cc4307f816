"""Histograms, quantiles and exceedances through the hub's one pipeline, on the in-process
executor: bit-identical on any split and through faults and a resume, kept in the record,
and refused in one line where they cannot be answered."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mcpi.errors import UsageError
from mcpi.hub.records import RUNNING, JobBook
from mcpi.hub.report import JobReport
from mcpi.hub.request import HistogramSpec, JobRequest
from mcpi.settings import Settings
from mcpi.testing.inprocess import Faults, HubStopped, InProcess
from tests.hub.support import run

SEED = 20261208
PRICE_BINS = HistogramSpec("price", 0.0, 100.0, 400)


def call(sampler: str, samples: int | None = 16 * 2**15, **fields: object) -> JobRequest:
    return JobRequest(
        "call",
        samples=samples,
        seed=SEED,
        sampler=sampler,
        histograms=(PRICE_BINS,),
        quantiles=((None, 0.5), ("price", 0.99)),
        exceed=(("price", 20.0), ("price", 60.0)),
        **fields,  # type: ignore[arg-type]
    )


def answers(report: JobReport) -> object:
    d = report.distribution
    return (report.outputs, d.histograms, d.quantiles, d.exceedances)


@pytest.mark.parametrize("sampler", ["mc", "rqmc"])
def test_the_answers_are_bit_identical_whatever_the_split_and_the_faults(
    settings: Settings, sampler: str
) -> None:
    reference = run(call(sampler, chunk_size=16 * 2**15), settings)
    faults = Faults(duplicate={0, 3}, lose={1, 5})
    split = run(
        call(sampler, chunk_size=2**15), settings, InProcess({"a": 2, "b": 1}, faults=faults)
    )
    assert answers(split) == answers(reference)
    (histogram,) = split.distribution.histograms
    assert histogram.samples == split.samples and len(histogram.counts) == 400
    median, tail = split.distribution.quantiles
    assert (median.p, tail.p) == (0.5, 0.99) and median.value < tail.value
    above20, above60 = split.distribution.exceedances
    assert 0.2 < above20.probability < 0.22 and above60.probability < 0.02


def test_a_tally_of_any_width_travels_as_the_workers_send_it(settings: Settings) -> None:
    # One output's (Σx, Σx²) and one exceedance count: three sums a result, an odd number,
    # through the same JSON encoding as a worker's result (0.4.0's CI found a parity check).
    request = JobRequest(
        "call", samples=4 * 2**15, seed=SEED, sampler="mc", exceed=(("price", 20.0),)
    )
    whole = run(replace(request, chunk_size=4 * 2**15), settings)
    split = run(replace(request, chunk_size=2**15), settings, InProcess({"a": 2}))
    assert answers(split) == answers(whole) and split.chunks > whole.chunks


def test_a_killed_hub_s_job_resumes_with_its_tallies(settings: Settings) -> None:
    uninterrupted = run(call("rqmc", None, precision=1e-3, max_samples=10**8), settings)
    with pytest.raises(HubStopped):
        run(
            call("rqmc", None, precision=1e-3, max_samples=10**8),
            settings,
            InProcess(faults=Faults(stop_after=4)),
        )
    (record,) = [r for r in JobBook(settings.cache_dir / "jobs").recent() if r.status == RUNNING]  # type: ignore[operator]
    assert record.request["quantiles"] == [
        {"output": "price", "p": 0.5},
        {"output": "price", "p": 0.99},
    ]
    resumed = run(JobRequest(resume=record.id), settings)
    assert answers(resumed) == answers(uninterrupted)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"quantiles": ((None, 0.9),)}, "a quantile of price is read from its histogram"),
        ({"quantiles": ((None, 1.5),)}, "between 0 and 1"),
        ({"exceed": (("volume", 1.0),)}, "model call has no output 'volume'"),
        ({"histograms": (HistogramSpec("price", 5.0, 1.0, 10),)}, "LO < HI"),
        ({"histograms": (HistogramSpec("nope", 0.0, 1.0, 10),)}, "no output 'nope'"),
        ({"model": "pi", "sampler": "mc", "exceed": (("pi", 1.0),)}, "--sampler rqmc"),
    ],
)
def test_what_cannot_be_answered_is_refused_before_anything_runs(
    settings: Settings, fields: dict[str, object], message: str
) -> None:
    request = {"model": "call", "samples": 4096, "seed": SEED} | fields
    executor = InProcess()
    with pytest.raises(UsageError, match=message) as refused:
        run(JobRequest(**request), settings, executor)  # type: ignore[arg-type]
    assert "\n" not in str(refused.value) and executor.computed == []


def test_a_model_s_declared_bins_are_counted_in_every_job(
    settings: Settings, tmp_path: Path
) -> None:
    module = tmp_path / "binned.py"
    module.write_text(
        "import mcpi\n"
        "@mcpi.model('binned', outputs=('x',), dims=1, bins={'x': (0, 1, 10)})\n"
        "def binned(u):\n"
        "    return u[:, 0]\n"
    )
    report = run(
        JobRequest(f"{module}:binned", samples=16 * 1024, seed=1, quantiles=((None, 0.25),)),
        settings,
    )
    (histogram,) = report.distribution.histograms
    # A scrambled net: every replicate puts exactly 1,024/10 or so in each tenth.
    assert (
        histogram.counts == tuple([16 * 1024 // 10] * 10)
        or max(histogram.counts) - min(histogram.counts) <= 16
    )
    (quarter,) = report.distribution.quantiles
    assert quarter.ci_low <= 0.25 <= quarter.ci_high


@pytest.mark.parametrize("sampler", ["mc", "rqmc"])
def test_refine_gives_a_held_back_quantile_a_second_pass_over_the_same_samples(
    settings: Settings, sampler: str
) -> None:
    coarse = {"histograms": (replace(PRICE_BINS, bins=20),), "exceed": ()}

    def asked(**fields: object) -> JobRequest:
        return replace(call(sampler, **fields), **coarse)  # type: ignore[arg-type]

    first = run(asked(), settings)
    assert all(q.bin_limited for q in first.distribution.quantiles)
    refined = run(asked(refine=True), settings)
    assert refined.outputs == first.outputs
    assert refined.distribution.histograms == first.distribution.histograms
    pairs = zip(first.distribution.quantiles, refined.distribution.quantiles, strict=True)
    for before, after in pairs:
        assert after.refined and before.ci_low <= after.ci_low <= after.ci_high <= before.ci_high
        assert after.ci_high - after.ci_low < (before.ci_high - before.ci_low) / 4
    # Two quantiles of one output: two passes, one bracket each; the same on any split.
    assert sum("refined by a second pass" in n for n in refined.notes) == 2
    split = run(asked(refine=True, chunk_size=2**13), settings, InProcess({"a": 2}))
    assert split.distribution.quantiles == refined.distribution.quantiles
    # Only what the bins held back is refined.
    finer, plain = run(call(sampler, refine=True), settings), run(call(sampler), settings)
    assert [q.refined for q in finer.distribution.quantiles] == [
        q.bin_limited for q in plain.distribution.quantiles
    ]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"quantiles": (), "refine": True}, "--refine refines quantiles: ask for one"),
        ({"resume": "0123456789abcdef", "refine": True}, "drop it with --resume"),
    ],
)
def test_refine_without_a_quantile_or_with_resume_is_refused(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        replace(call("mc"), **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("sampler", "half_width"), [("mc", 0.25), ("rqmc", 0.1)])
def test_a_precision_may_target_a_quantile_s_interval(
    settings: Settings, sampler: str, half_width: float
) -> None:
    """``--output price@0.99``: the rule looks at that quantile's interval (asked for if
    it was not), the same on any split; where the bins stop it short it says so."""
    fine = HistogramSpec("price", 55.0, 65.0, 200)
    target = JobRequest(
        "call", seed=SEED, sampler=sampler, precision=half_width, max_samples=10**8,
        output="price@0.99", histograms=(fine,),
    )  # fmt: skip
    assert target.output == "price" and target.quantiles == (("price", 0.99),)
    report = run(target, settings)
    found = report.target_quantile
    assert found is not None and found.p == 0.99 and report.precision_reached
    assert (found.ci_high - found.ci_low) / 2 <= half_width and len(report.stages) >= 2
    assert any(f"±{half_width:g} on price@0.99 reached" in n for n in report.notes)
    split = run(replace(target, chunk_size=2**14), settings, InProcess({"a": 2}))
    assert split.distribution.quantiles == report.distribution.quantiles
    # Bins of 1 cannot give so narrow an interval: the rule stops where more samples
    # cannot help, and says so.
    coarse = run(replace(target, histograms=(replace(fine, bins=10),)), settings)
    assert not coarse.precision_reached and coarse.samples <= report.samples
    assert any("as narrow as the histogram allows" in n for n in coarse.notes)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"output": "price@1.5"}, "NAME@P names NAME's P quantile, 0 < P < 1"),
        ({"output": "price@x"}, "NAME@P names"),
        ({"output": "price@0.9", "precision": None, "samples": 4096}, "give --precision H"),
    ],
)
def test_a_quantile_target_badly_named_is_refused(fields: dict[str, object], message: str) -> None:
    asked = {"precision": 0.1, "max_samples": 10**6, "histograms": (PRICE_BINS,)} | fields
    with pytest.raises(UsageError, match=message):
        JobRequest("call", **asked)  # type: ignore[arg-type]
