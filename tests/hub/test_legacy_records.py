"""Records written by mcpi 0.1.0 (``tests/data/records-0.1.0``, made by that release) still
list, resume and report as they did: π jobs as jobs of the ``pi`` model, with their hits."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from mcpi.cli import main
from mcpi.core.kernel import count_hits
from mcpi.core.runtime import numeric_runtime
from mcpi.errors import ExitStatus
from mcpi.hub.records import FORMAT, JobBook

OLD = Path(__file__).parents[1] / "data" / "records-0.1.0"
REPOSITORY = Path(__file__).parents[2]
PI_DONE, PI_PRECISION, PI_KILLED = "2817d2a3d6eec029", "1d77044f95543497", "82478b1816570a7c"
MODEL_KILLED = "ae24799abac7b32b"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    jobs = tmp_path / "cache" / "mcpi" / "jobs"
    jobs.mkdir(parents=True)
    for path in OLD.glob("*"):
        if path.suffix in (".json", ".chunks") and len(path.stem) == 16:
            shutil.copy(path, jobs / path.name)
    # The killed model job names its model by a path relative to the repository.
    monkeypatch.chdir(REPOSITORY)
    return {
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "no-config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }


def hub(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(args), env, out, err)
    return status, out.getvalue(), err.getvalue()


def report(env: dict[str, str], *args: str) -> dict[str, Any]:
    status, out, err = hub(env, *args, "--json")
    assert status == ExitStatus.OK, err
    parsed: dict[str, Any] = json.loads(out)
    return parsed


def test_old_records_list_as_they_did(env: dict[str, str]) -> None:
    status, out, err = hub(env, "jobs")
    assert status == ExitStatus.OK, err
    assert out == (OLD / "jobs.txt").read_text()


def test_old_records_read_as_format_2_pi_jobs_of_the_pi_model(env: dict[str, str]) -> None:
    book = JobBook(Path(env["XDG_CACHE_HOME"]) / "mcpi" / "jobs")
    old = {r["id"]: r for r in json.loads((OLD / "jobs.json").read_text())}
    done = book.load(PI_PRECISION)
    assert (done.format, done.mcpi, done.view, done.model["name"]) == (
        FORMAT,
        "0.1.0",
        "estimate",
        "pi",
    )
    assert done.request == {"precision": 0.002, "max_samples": 10**12, "output": "pi"}
    stages = old[PI_PRECISION]["stages"]
    assert [(s.first, s.samples) for s in done.stages] == [(s["first"], s["darts"]) for s in stages]
    # The sums are the hits' (4·1{hit}), and the result is the one 0.1.0 reported.
    hits = sum(s["hits"] for s in stages)
    assert done.counted[0][0] == (4 * hits) << 1074
    assert (
        done.result is not None
        and done.result["outputs"]["pi"]["mean"] == old[PI_PRECISION]["result"]["pi"]
    )
    model = book.load("7f0a2a55b82c5b2f")
    assert model.view == "run" and model.model == old["7f0a2a55b82c5b2f"]["model"]
    assert model.counted[0] == tuple(int(s) for s in old["7f0a2a55b82c5b2f"]["stages"][0]["sums"])


def test_a_killed_pi_job_of_0_1_0_resumes_from_its_journal_to_the_uninterrupted_count(
    env: dict[str, str],
) -> None:
    resumed = report(env, "estimate", "--resume", PI_KILLED)
    assert resumed["hits"] == count_hits(15, 0, 2 * 10**9)
    assert resumed["darts"] == 2 * 10**9 and resumed["resumed"]
    taken = "resumed: 3 chunk(s) counted before were taken from the journal, not recomputed"
    assert taken in resumed["notes"]
    # It is a π job: `run` refuses it, naming the command that finishes it.
    status, _, err = hub(env, "run", "--resume", PI_DONE)
    assert status == ExitStatus.USAGE
    assert "finished already: π ≈ 3.14149 from 2,000,000 darts" in err


def test_a_killed_model_job_of_0_1_0_resumes_to_its_uninterrupted_result(
    env: dict[str, str],
) -> None:
    expected = json.loads((OLD / f"{MODEL_KILLED}.expected.json").read_text())
    status, _, err = hub(env, "estimate", "--resume", MODEL_KILLED)
    assert status == ExitStatus.USAGE
    assert f"is a cosine job: finish it with `mcpi-hub run --resume {MODEL_KILLED}`" in err
    if numeric_runtime() != expected["runtime"]:
        pytest.skip("computed on another numeric runtime: cos may differ in the last bits")
    resumed = report(env, "run", "--resume", MODEL_KILLED)
    assert resumed["samples"] == expected["samples"]
    assert resumed["outputs"] == expected["outputs"]
