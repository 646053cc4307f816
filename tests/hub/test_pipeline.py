"""The hub's one pipeline, driven through the in-process executor (no processes, no services):
stages, precision targets, records, resume, failures, sweeps and warm sessions, in seconds.

The real-service tests (``tests/cli``, ``tests/cluster``) run the same hub over the local
pool and Celery; these cover its logic above the executor seam.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mcpi.core.exact import exact_sum, output_estimate
from mcpi.core.kernel import count_hits, dart_sums
from mcpi.core.messages import encode_exact
from mcpi.core.model import block_generator, chunk_sums
from mcpi.core.precision import Precision, looks
from mcpi.errors import JobFailed, JobTimeout, ModelMissing, UsageError
from mcpi.hub.progress import NoProgress
from mcpi.hub.records import DONE, FAILED, RUNNING, JobBook
from mcpi.hub.request import ESTIMATE, RUN, JobRequest
from mcpi.hub.run import run_job
from mcpi.hub.sweep import run_sweep
from mcpi.hub.warm import Warm
from mcpi.models.builtin import ball
from mcpi.settings import Settings
from mcpi.testing.inprocess import Faults, HubStopped, InProcess
from tests.hub.support import run

SEED = 20261206


def pi_request(darts: int = 10**6, **fields: object) -> JobRequest:
    return JobRequest("pi", samples=darts, seed=SEED, view=ESTIMATE, **fields)  # type: ignore[arg-type]


def book(settings: Settings) -> JobBook:
    assert settings.cache_dir is not None
    return JobBook(settings.cache_dir / "jobs")


def test_a_pi_job_counts_every_dart_once_whatever_the_chunking(settings: Settings) -> None:
    expected = dart_sums(count_hits(SEED, 0, 10**6))
    for hosts, chunk_size in (({"a": 1}, None), ({"a": 2, "b": 3}, None), ({"a": 1}, 9973)):
        executor = InProcess(hosts)
        report = run(pi_request(chunk_size=chunk_size), settings, executor)
        (pi,) = report.outputs
        assert (report.samples, pi.successes) == (10**6, count_hits(SEED, 0, 10**6))
        assert book(settings).load(report.job_id).counted == (expected, 10**6)
        # Each chunk computed once, and the hosts' table adds up to the job.
        assert len(executor.computed) == report.chunks
        assert {h.host for h in report.hosts} <= set(hosts)
        assert sum(h.darts for h in report.hosts) == 10**6
    assert report.chunking is None and report.view is ESTIMATE  # --chunk-size given


def test_automatic_chunking_sizes_chunks_from_the_declared_capacity(settings: Settings) -> None:
    executor = InProcess({"a": 2, "b": 2}, rate=1e6, task_overhead=0.001)
    report = run(pi_request(4 * 10**6), settings, executor)
    assert report.chunking is not None and report.capacity is not None
    assert report.chunking.bound_by == "balance"
    assert report.chunks == 16  # four slots, four chunks each
    assert executor.calls["prepare"] == 1 and executor.calls["calibrate"] == 1


def test_a_precision_target_takes_the_looks_the_rule_takes(settings: Settings) -> None:
    report = run(pi_request(None, precision=0.01, max_samples=10**9), settings)
    rule = Precision(0.01, 10**9, binary=4.0)
    made = looks(rule, lambda n: dart_sums(count_hits(SEED, 0, n)))
    assert [s.first + s.samples for s in report.stages] == made and len(made) >= 2
    assert report.precision == rule and report.precision_reached
    assert report.outputs[0].half_width <= 0.01
    assert f"precision ±0.01 reached after {len(made)} look(s)" in report.notes
    assert report.trace is not None and report.trace.looks == made


def test_a_precision_bound_reached_first_is_said_and_is_not_success(settings: Settings) -> None:
    report = run(pi_request(None, precision=1e-4, max_samples=50_000), settings)
    assert not report.precision_reached and report.samples == 50_000
    assert "NOT reached: stopped at the bound of 50,000 darts (--max-darts)" in report.notes[-1]


def test_a_precision_no_narrower_than_a_binary_output_s_range_is_refused(
    settings: Settings,
) -> None:
    executor = InProcess()
    with pytest.raises(UsageError, match="output pi: a precision is a half-width, between 0 and 4"):
        run(JobRequest("pi", precision=5.0, max_samples=10**6, sampler="mc"), settings, executor)
    assert executor.computed == [] and book(settings).recent() == []


def test_a_model_job_rounds_up_to_whole_blocks_and_names_its_output(settings: Settings) -> None:
    request = JobRequest(
        "ball", {"d": 4}, samples=100_000, seed=SEED, chunk_size=10_000, sampler="mc"
    )
    report = run(request, settings)
    assert report.samples == 102_400 and report.chunk_size == 12_288
    assert "the job: 100,000 samples rounded up to whole blocks of 4,096: 102,400" in report.notes
    call = ball.call({"d": 4})
    sums = chunk_sums(ball, call, SEED, 0, 102_400)
    (volume,) = report.outputs
    exact = ball.exact_values({"d": 4})["volume"]
    assert volume == output_estimate("volume", 102_400, *sums, exact=exact)
    targeted = run(replace(request, samples=None, precision=0.05, max_samples=10**8), settings)
    assert "precision ±0.05 on volume reached after" in targeted.notes[-1]
    assert all(s.samples % 4096 == 0 for s in targeted.stages)


def test_a_duplicated_result_counts_once(settings: Settings) -> None:
    executor = InProcess(faults=Faults(duplicate={1, 3}))
    report = run(pi_request(chunk_size=10**5), settings, executor)
    assert report.duplicates == 2
    assert report.outputs[0].successes == count_hits(SEED, 0, 10**6)


def test_a_lost_chunk_is_computed_again_and_counted_once(settings: Settings) -> None:
    executor = InProcess(faults=Faults(lose={4}))
    report = run(pi_request(chunk_size=10**5), settings, executor)
    assert [i for _, i in executor.computed].count(4) == 2
    assert report.outputs[0].successes == count_hits(SEED, 0, 10**6)


def test_a_contradicting_copy_fails_the_job_and_the_record_says_why(settings: Settings) -> None:
    executor = InProcess(faults=Faults(contradict={2}))
    with pytest.raises(JobFailed, match="counted twice with different results"):
        run(pi_request(chunk_size=10**5), settings, executor)
    (record,) = book(settings).recent()
    assert record.status == FAILED and "different results" in (record.error or "")


def test_a_failed_job_resumes_recomputing_only_what_it_lacked(settings: Settings) -> None:
    failing = InProcess(faults=Faults(fail={6: "RuntimeError: boom"}))
    with pytest.raises(JobFailed, match="chunk 6 failed: RuntimeError: boom"):
        run(pi_request(chunk_size=10**5), settings, failing)
    (record,) = book(settings).recent()
    assert record.status == FAILED and record.view == "estimate"
    assert [i for _, i in failing.computed] == list(range(6))
    healed = InProcess()
    resumed = run(JobRequest(resume=record.id, view=ESTIMATE), settings, healed)
    assert [i for _, i in healed.computed] == list(range(6, 10))  # the journal's six taken
    assert resumed.resumed and resumed.earlier_samples == 6 * 10**5
    assert resumed.outputs[0].successes == count_hits(SEED, 0, 10**6)
    assert book(settings).load(record.id).status == DONE
    assert not (book(settings).directory / f"{record.id}.chunks").exists()  # type: ignore[operator]


def test_a_stopped_hub_leaves_a_running_record_that_resumes_stage_by_stage(
    settings: Settings,
) -> None:
    request = pi_request(None, precision=0.004, max_samples=10**9, chunk_size=20_000)
    uninterrupted = run(request, Settings(cache_dir=settings.cache_dir / "other"))  # type: ignore[operator]
    stopping = InProcess(faults=Faults(stop_after=7))
    with pytest.raises(HubStopped):
        run(request, settings, stopping)
    (record,) = book(settings).recent()
    assert record.status == RUNNING and len(stopping.computed) == 7
    again = InProcess()
    resumed = run(JobRequest(resume=record.id, view=ESTIMATE), settings, again)
    assert len(again.computed) + 7 == uninterrupted.chunks
    assert [s.samples for s in resumed.stages] == [s.samples for s in uninterrupted.stages]
    assert resumed.outputs == uninterrupted.outputs


def test_a_resume_is_refused_where_it_cannot_finish_the_job(settings: Settings) -> None:
    with pytest.raises(HubStopped):
        run(pi_request(chunk_size=10**5), settings, InProcess(faults=Faults(stop_after=2)))
    (record,) = book(settings).recent()
    with pytest.raises(
        UsageError, match=f"is a π job: finish it with `mcpi-hub estimate --resume {record.id}`"
    ):
        run(JobRequest(resume=record.id, view=RUN), settings)
    run(JobRequest(resume=record.id, view=ESTIMATE), settings)
    with pytest.raises(UsageError, match=r"finished already: π ≈ 3\.14"):
        run(JobRequest(resume=record.id, view=ESTIMATE), settings)


def test_the_deadline_ends_a_job_that_takes_too_long(settings: Settings) -> None:
    slow = InProcess(faults=Faults(delay=dict.fromkeys(range(10), 0.05)))
    with pytest.raises(JobTimeout, match="deadline passed"):
        run(pi_request(chunk_size=10**5), replace(settings, timeout=0.12), slow)
    assert len(slow.computed) < 10


def test_a_model_the_workers_lack_is_refused_before_anything_runs(settings: Settings) -> None:
    executor = InProcess(faults=Faults(missing={"ball"}))
    with pytest.raises(ModelMissing):
        run(JobRequest("ball", samples=4096, seed=1), settings, executor)
    assert executor.computed == [] and executor.calls["run"] == 0


def test_a_binary_output_whose_samples_are_not_0_or_c_fails_the_job(
    settings: Settings, tmp_path: Path
) -> None:
    module = tmp_path / "liar.py"
    module.write_text(
        "import mcpi\n"
        "@mcpi.model('liar', outputs=('x',), binary={'x': 1.0})\n"
        "def liar(rng, n):\n"
        "    return rng.random(n)\n"
    )
    with pytest.raises(JobFailed, match=r"not those of samples that are 0 or 1\.0"):
        run(JobRequest(f"{module}:liar", samples=4096, seed=1), settings)


def test_a_sweep_runs_each_job_as_its_single_run_and_survives_a_failure(
    settings: Settings,
) -> None:
    requests = [
        JobRequest("ball", {"d": d}, samples=40_960, seed=SEED, sampler="mc") for d in (2, 3, 5)
    ]
    alone = [run(r, settings).outputs for r in requests]
    executor = InProcess({"a": 2, "b": 2})
    outcomes = run_sweep(requests, settings, Warm(executor))
    assert [o.report.outputs for o in outcomes if o.report] == alone
    assert executor.calls["prepare"] == 1 and executor.calls["calibrate"] == 1
    # One parameter set the model refuses: nothing runs.
    with pytest.raises(UsageError, match=r"sweep job 2 of 2 .*d=99.*nothing was run"):
        run_sweep([requests[0], replace(requests[0], params={"d": 99})], settings, Warm(executor))
    # A job that fails while running (its chunk 3) does not stop the others (of 1 chunk).
    failing = InProcess(faults=Faults(fail={3: "boom"}))
    mixed = run_sweep(
        [
            replace(requests[0], chunk_size=4096),
            JobRequest("pi", samples=10**5, seed=1, sampler="mc", chunk_size=10**5),
        ],
        settings,
        Warm(failing),
    )
    assert mixed[0].error is not None and mixed[1].report is not None
    assert "chunk 3 failed: boom" in str(mixed[0].error)


def test_a_warm_executor_checks_and_measures_once_for_a_session_s_jobs(
    settings: Settings,
) -> None:
    executor = InProcess()
    warm = Warm(executor)
    reports = [
        run_job(JobRequest("ball", {"d": 3}, samples=40_960, seed=s), settings, NoProgress(), warm)
        for s in range(3)
    ]
    assert executor.calls["prepare"] == 1 and executor.calls["calibrate"] == 1
    assert executor.calls["close"] == 0  # the session's, not a job's, to close
    # Another parameter set is another model's rates: measured once more.
    run_job(JobRequest("ball", {"d": 4}, samples=4096, seed=1), settings, NoProgress(), warm)
    assert executor.calls["calibrate"] == 2 and executor.calls["prepare"] == 1
    warm.close()
    assert executor.calls["close"] == 1
    assert len({r.job_id for r in reports}) == 3


def test_records_are_format_2_with_the_writer_s_version(settings: Settings) -> None:
    from mcpi import __version__

    report = run(pi_request(10**5), settings)
    path = book(settings).path(report.job_id)
    stored = json.loads(path.read_text())
    assert (stored["format"], stored["mcpi"], stored["view"]) == (2, __version__, "estimate")
    assert stored["model"]["name"] == "pi"
    assert stored["request"] == {"samples": 10**5, "sampler": {"kind": "mc"}}
    (stage,) = stored["stages"]
    assert stage["sums"] == [encode_exact(s) for s in dart_sums(count_hits(SEED, 0, 10**5))]


def test_a_user_model_s_exact_sums_match_its_samples(settings: Settings, tmp_path: Path) -> None:
    module = tmp_path / "halves.py"
    module.write_text(
        "import mcpi\n"
        "@mcpi.model('halves', outputs=('x',), block=16)\n"
        "def halves(rng, n):\n"
        "    return rng.random(n) / 2\n"
    )
    report = run(JobRequest(f"{module}:halves", samples=64, seed=3, chunk_size=16), settings)
    samples = np.concatenate([block_generator(3, b).random(16) / 2 for b in range(4)])
    expected = output_estimate("x", 64, exact_sum(samples), exact_sum(samples * samples))
    assert report.outputs == [expected]
