"""``mcpi-hub sensitivity`` and ``mcpi.sensitivity`` on the local pool: the exact indices
within their intervals, the same indices on any split and from the API, a resumed job,
the plot, and one clear line for every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import mcpi
from mcpi.errors import ExitStatus
from mcpi.models.builtin import ishigami_indices
from tests.cli.test_run import hub

FIRST, TOTAL = ishigami_indices()


def sensitivity_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    status, out, err = hub(env, "sensitivity", "--json", "--local", *args)
    assert status == ExitStatus.OK, err
    report: dict[str, Any] = json.loads(out)
    return report


def test_ishigami_s_exact_indices_are_within_their_intervals_on_any_split(
    env: dict[str, str],
) -> None:
    args = ["ishigami", "-n", str(16 * 2**14), "--seed", "11"]
    report = sensitivity_json(env, *args)
    found = report["sensitivity"]
    assert (found["output"], found["replicates"], found["points"]) == ("y", 16, 16 * 2**14)
    assert found["evaluations"] == 5 * 16 * 2**14 and report["sampler"]["dims"] == 6
    for name, first, total in zip(("x1", "x2", "x3"), FIRST, TOTAL, strict=True):
        low, high = found["inputs"][name]["first"]["ci95"]
        assert low <= first <= high
        low, high = found["inputs"][name]["total"]["ci95"]
        assert low <= total <= high
    split = sensitivity_json(env, *args, "--chunk-size", "4096", "--processes", "2")
    assert split["chunks"] > report["chunks"] and split["sensitivity"] == found
    api = mcpi.sensitivity("ishigami", 16 * 2**14, seed=11, local=True, env=env)
    assert api.first["x2"].value == found["inputs"]["x2"]["first"]["value"]
    assert api.inputs == ("x1", "x2", "x3") and api.evaluations == found["evaluations"]
    assert api.total["x3"].ci_low == found["inputs"]["x3"]["total"]["ci95"][0]


def test_the_text_report_is_a_table_of_the_indices(env: dict[str, str]) -> None:
    status, out, err = hub(env, "sensitivity", "ishigami", "--local", "--seed", "3")
    assert status == ExitStatus.OK, err
    lines = out.splitlines()
    assert lines[0] == "Sobol' indices of y, model ishigami (a=7.0, b=0.1), version 1"
    header = next(line for line in lines if line.startswith("input"))
    assert header.split() == ["input", "first-order", "95%", "CI", "total", "95%", "CI"]
    assert [line.split()[0] for line in lines[lines.index(header) + 1 :][:3]] == [
        "x1",
        "x2",
        "x3",
    ]
    assert "1,048,576 design points × 5 = 5,242,880 model evaluations" in out


def test_a_precision_target_a_resume_and_a_plot(env: dict[str, str], tmp_path: Path) -> None:
    plot = tmp_path / "indices.png"
    args = ["ishigami", "--precision", "2e-3", "--seed", "5", "--plot", str(plot)]
    status, out, err = hub(env, "sensitivity", "--local", *args)
    assert status == ExitStatus.OK, err
    assert "precision ±0.002 on every index reached" in out and plot.stat().st_size > 10_000
    status, out, err = hub(env, "sensitivity", "--local", *args[:-2], "--max-samples", "32768")
    assert status == ExitStatus.PRECISION_NOT_REACHED and "NOT reached" in out, err
    status, out, _ = hub(env, "jobs")
    assert "Sobol' indices of ishigami: x1 leads, ST 0.55" in out  # exactly 0.5576


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "name a model"),
        (["e"], "model e takes a generator (rng, n): Sobol' indices are of a model of uniforms"),
        (["ishigami", "--output", "z"], "model ishigami has no output 'z'"),
        (["ishigami", "--replicates", "4"], "at least 8 replicates"),
        (["ishigami", "--sampler", "mc"], "unrecognized arguments: --sampler"),
        (["ishigami", "--max-samples", "1e6"], "--max-samples bounds --precision"),
        (["ishigami", "-n", "1e6", "--precision", "0.01"], "not both"),
        (["ishigami", "--param", "a=x"], "parameter a must be a number"),
        (["--resume", "0123456789abcdef", "ishigami"], "drop MODEL"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(
    args: list[str], message: str, env: dict[str, str]
) -> None:
    status, _, err = hub(env, "sensitivity", "--local", *args)
    assert status == ExitStatus.USAGE, err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_resumed_job_is_finished_by_the_command_that_started_it(env: dict[str, str]) -> None:
    report = sensitivity_json(env, "ishigami", "-n", "65536", "--seed", "2")
    status, _, err = hub(env, "run", "--resume", report["job_id"])
    assert status == ExitStatus.USAGE and "is finished already" in err


def test_the_model_list_names_each_model_of_uniforms_inputs(env: dict[str, str]) -> None:
    status, out, err = hub(env, "models")
    assert status == ExitStatus.OK, err
    ishigami = out[out.index("ishigami  version") :]
    assert ishigami.splitlines()[4].startswith("  uniforms: x1, x2, x3 (randomized QMC")
    e = out[out.index("e  version") : out.index("ishigami  version")]
    assert "uniforms" not in e
    status, out, err = hub(env, "models", "--json")
    listed = json.loads(out)["models"]
    assert listed["ishigami"]["inputs"] == ["x1", "x2", "x3"] and listed["e"]["inputs"] is None
