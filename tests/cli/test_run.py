"""``mcpi-hub run`` and ``mcpi.run`` on the local pool: exact answers, bit-identical splits,
resume, and one clear line for every kind of bad input."""

from __future__ import annotations

import io
import json
import math
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mcpi
from mcpi.cli import main
from mcpi.errors import ExitStatus, UsageError
from mcpi.models.builtin import E_VARIANCE, ishigami_variance
from tests.helpers import kill_once_journaled


def hub(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(args), {**env, "MCPI_DEBUG": "1"}, out, err)
    return status, out.getvalue(), err.getvalue()


def run_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    status, out, err = hub(env, "run", "--json", *args)
    assert status == ExitStatus.OK, err
    report: dict[str, Any] = json.loads(out)
    return report


def statistics(report: dict[str, Any]) -> dict[str, Any]:
    """What must be bit-identical between two runs of the same job."""
    return {"samples": report["samples"], "seed": report["seed"], "outputs": report["outputs"]}


@pytest.mark.parametrize("sampler", ["auto", "mc"])
@pytest.mark.parametrize(
    ("model", "samples", "params"),
    [
        ("pi", "2e8", []),
        ("ball", "4e6", ["--param", "d=5"]),
        ("call", "4e6", []),
        ("e", "4e6", []),
        ("ishigami", "4e6", []),
    ],
)
def test_each_builtin_model_finds_its_exact_answer(
    model: str, samples: str, params: list[str], sampler: str, env: dict[str, str]
) -> None:
    if model == "e" and sampler == "auto":
        pytest.skip("e is plain Monte Carlo only: auto is mc")
    report = run_json(
        env, model, "-n", samples, "--seed", "20261203", "--sampler", sampler, *params
    )
    assert report["sampler"]["kind"] == ("mc" if sampler == "mc" or model == "e" else "rqmc")
    (output,) = report["outputs"].values()
    assert abs(output["mean"] - output["exact"]) < 4 * output["std_error"], output
    assert output["ci95"][0] < output["mean"] < output["ci95"][1]
    if model == "e":
        assert output["variance"] == pytest.approx(E_VARIANCE, rel=0.01)
    if model == "ishigami":
        assert output["variance"] == pytest.approx(ishigami_variance(), rel=0.01)


def test_the_pi_model_counts_the_darts_estimate_counts(env: dict[str, str]) -> None:
    report = run_json(env, "pi", "-n", "1e7", "--seed", "5", "--sampler", "mc")
    status, out, err = hub(env, "estimate", "--json", "-n", "1e7", "--seed", "5")
    assert status == 0, err
    assert report["outputs"]["pi"]["mean"] == json.loads(out)["pi"]


def test_the_result_is_bit_identical_whatever_the_split(env: dict[str, str]) -> None:
    # e draws a variable number of uniforms per sample: streams are per block, not per draw.
    args = ["e", "-n", "245760", "--seed", "99"]
    reports = [
        run_json(env, *args, "--chunk-size", "4096", "--processes", "2"),
        run_json(env, *args, "--chunk-size", "40960", "--processes", "1"),
        run_json(env, *args, "--chunk-size", "245760"),
        run_json(env, *args),
    ]
    assert reports[0]["chunks"] == 60 and reports[2]["chunks"] == 1
    assert all(statistics(r) == statistics(reports[0]) for r in reports)


def test_call_to_a_precision_answers_in_seconds_bit_identical_however_split(
    env: dict[str, str],
) -> None:
    """The RQMC issue's "done when", on the local pool (on Celery: tests/cluster)."""
    args = ["call", "--precision", "1e-4", "--seed", "20261206"]
    report = run_json(env, *args)
    price = report["outputs"]["price"]
    assert price["ci95"][0] <= 10.450583572185565 <= price["ci95"][1]
    assert (price["ci95"][1] - price["ci95"][0]) / 2 <= 1e-4 and report["precision"]["reached"]
    assert report["sampler"]["kind"] == "rqmc" and report["sampler"]["replicates"] == 64
    assert report["wall_seconds"] < 30 and report["samples"] <= 64 * 2**20
    # Plain Monte Carlo would need ~8e10 samples for this half-width.
    assert price["worth_samples"] > 10**9
    for split in (["--chunk-size", "1024", "--processes", "2"], ["--chunk-size", "65536"]):
        assert statistics(run_json(env, *args, *split)) == statistics(report)


@pytest.mark.parametrize("sampler", ["mc", "rqmc"])
def test_histograms_quantiles_and_exceedances_are_reported_and_split_free(
    env: dict[str, str], sampler: str
) -> None:
    args = ["call", "-n", str(16 * 2**14), "--seed", "9", "--sampler", sampler]
    args += ["--hist", "price=log:0.01:400:200", "--quantile", "0.99", "--quantile", "price=0.5"]
    args += ["--exceed", "price>20", "--exceed", "price>100"]
    report = run_json(env, *args)
    price = report["outputs"]["price"]
    histogram = price["histogram"]
    assert len(histogram["counts"]) == 200 and len(histogram["edges"]) == 201 and histogram["log"]
    assert histogram["under"] + sum(histogram["counts"]) + histogram["over"] == report["samples"]
    tail, median = price["quantiles"]
    assert (tail["p"], median["p"]) == (0.99, 0.5)
    assert tail["ci95"][0] <= tail["value"] <= tail["ci95"][1]
    above20, above100 = price["exceedances"]
    assert above20["ci95"][0] <= above20["probability"] <= above20["ci95"][1] < 0.25
    assert above100["threshold"] == 100.0
    again = run_json(env, *args, "--chunk-size", str(2**14), "--processes", "2")
    assert statistics(again) == statistics(report)
    plot = Path(env["HOME"]) / f"{sampler}.png"
    status, out, err = hub(env, "run", *args, "--plot", str(plot))
    assert status == 0, err
    assert "  P(price > 20) ≈ " in out and "  99% quantile ≈ " in out and "  50% quantile" in out
    assert "  histogram: 200 log-spaced bins in [0.01, 400)" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the histogram's panel beside


def test_an_rqmc_report_names_its_sampler_and_variance_reduction(env: dict[str, str]) -> None:
    status, out, err = hub(env, "run", "ishigami", "-n", "32768", "--seed", "4")
    assert status == 0, err
    assert (
        "32,768 samples (randomized QMC, scrambled Sobol': 16 replicates of 2,048 points, " in out
    )
    assert "3 dimension(s)); seed 4" in out and "blocks of" not in out
    assert "variance reduction against plain Monte Carlo: " in out
    report = run_json(env, "ishigami", "-n", "32768", "--seed", "4", "--replicates", "32")
    assert report["sampler"] == {
        "kind": "rqmc",
        "replicates": 32,
        "points_per_replicate": 1024,
        "dims": 3,
    }
    y = report["outputs"]["y"]
    assert y["variance_reduction"] > 100 and y["worth_samples"] == 32768 * y["variance_reduction"]
    assert run_json(env, "e", "-n", "4096")["sampler"] == {"kind": "mc"}


def test_sizes_are_rounded_up_to_whole_blocks_and_the_report_says_so(env: dict[str, str]) -> None:
    report = run_json(
        env, "call", "-n", "10000", "--chunk-size", "5000", "--seed", "1", "--sampler", "mc"
    )
    assert report["samples"] == 12_288 and report["chunk_size"] == 8192 and report["block"] == 4096
    rounded = "10,000 samples rounded up to whole blocks of 4,096: 12,288"
    assert any(rounded in n for n in report["notes"])
    assert any("5,000 samples rounded up" in n for n in report["notes"])


def test_text_report_names_outputs_exact_answers_and_hosts(env: dict[str, str]) -> None:
    args = ["call", "-n", "1e5", "--seed", "3", "--param", "K=90", "--sampler", "mc"]
    status, out, err = hub(env, "run", *args)
    assert status == 0, err
    assert out.startswith("model call (K=90.0, S=100.0, T=1.0, r=0.05, sigma=0.2), version 1\n")
    assert "price ≈ " in out and "exact 16.699" in out and "standard errors" in out
    assert "samples/s" in out and "blocks of 4,096" in out


def test_a_precision_target_on_a_chosen_output_stops_in_whole_blocks(env: dict[str, str]) -> None:
    mc = ("--sampler", "mc")
    report = run_json(env, "call", "--precision", "0.05", "--output", "price", "--seed", "8", *mc)
    price = report["outputs"]["price"]
    assert (price["ci95"][1] - price["ci95"][0]) / 2 <= 0.05
    assert report["precision"]["reached"] and report["precision"]["output"] == "price"
    assert all(s["samples"] % 4096 == 0 for s in report["stages"])
    again = run_json(env, "call", "--precision", "0.05", "--seed", "8", "--chunk-size", "4096", *mc)
    # The looks depend on the exact sums only: the same stages, whatever the chunking.
    assert [s["samples"] for s in again["stages"]] == [s["samples"] for s in report["stages"]]
    assert statistics(again) == statistics(report)
    status, out, _ = hub(
        env, "run", "call", "--precision", "1e-4", "--max-samples", "20000", "--json", *mc
    )
    assert status == ExitStatus.PRECISION_NOT_REACHED
    assert json.loads(out)["samples"] == 20_480


MODELS_FILE = textwrap.dedent(
    """
    import numpy as np
    import mcpi

    @mcpi.model("square", outputs=("x2",), exact={"x2": 1 / 3}, block=512)
    def square(rng, n):
        return rng.random(n) ** 2

    @mcpi.model("raises", block=8)
    def raises(rng, n):
        raise RuntimeError("the model broke")

    @mcpi.model("raises_at", params={"at": -1}, block=8)
    def raises_at(rng, n, at):
        if at >= 0:
            raise RuntimeError(f"the model broke at {at}")
        return rng.random(n)

    @mcpi.model("slow", block=8)
    def slow(rng, n):
        import time
        time.sleep(0.2)  # a costly model: 25 ms a sample
        return rng.random(n)

    @mcpi.model("shape", block=8)
    def shape(rng, n):
        return np.zeros(n - 1)

    @mcpi.model("nan", block=8)
    def nan(rng, n):
        return np.full(n, np.nan)

    @mcpi.model("square_u", outputs=("x2",), exact={"x2": 1 / 3}, dims=1)
    def square_u(u):
        return u[:, 0] ** 2

    @mcpi.model("raises_u", dims=2)
    def raises_u(u):
        raise RuntimeError("the model broke")

    @mcpi.model("shape_u", dims=2)
    def shape_u(u):
        return u

    # E[e^u] = e − 1, with u itself (mean 1/2) as a control, and one whose mean is not a
    # number.
    exp_u = mcpi.model("exp_u", outputs=("y",), exact={"y": np.e - 1}, dims=1)(
        lambda u: np.exp(u[:, 0])
    ).with_control("u", lambda u: u[:, 0], 0.5).with_control("bad", lambda u: u[:, 0], np.inf)

    not_a_model = 3
    """
)


@pytest.fixture
def models_file(tmp_path: Path) -> Path:
    path = tmp_path / "my_models.py"
    path.write_text(MODELS_FILE)
    return path


def test_a_model_in_a_file_runs_on_the_local_pool(env: dict[str, str], models_file: Path) -> None:
    spec = f"{models_file}:square"
    report = run_json(env, spec, "-n", "1e5", "--seed", "1", "--processes", "2")
    x2 = report["outputs"]["x2"]
    assert report["model"] == "square" and abs(x2["mean"] - 1 / 3) < 4 * x2["std_error"]
    serial = run_json(
        env, spec, "-n", "1e5", "--seed", "1", "--processes", "1", "--chunk-size", "512"
    )
    assert statistics(serial) == statistics(report)


@pytest.mark.parametrize("sampler", ["mc", "rqmc"])
def test_a_control_variate_is_reported_and_split_free(
    env: dict[str, str], models_file: Path, sampler: str
) -> None:
    """A user's model and its control (u for e^u: ρ = 0.99, a cut of about 60× under plain
    Monte Carlo), in the text report and --json, the same on one process as on two with
    small chunks. Under randomized QMC the control gains nothing, rightly: a replicate's
    2^m points are a net, on which the mean of u is exactly ½."""
    args = [f"{models_file}:exp_u", "-n", "65536", "--seed", "4", "--sampler", sampler]
    report = run_json(env, *args, "--control", "u", "--processes", "2")
    y = report["outputs"]["y"]
    assert y["control"]["name"] == "u" and y["ci95"][0] <= math.e - 1 <= y["ci95"][1]
    serial = run_json(env, *args, "--control", "u", "--processes", "1", "--chunk-size", "4096")
    assert statistics(serial) == statistics(report)
    plain = run_json(env, *args)["outputs"]["y"]
    if sampler == "mc":
        assert y["control"]["variance_reduction"] > 20
        assert y["std_error"] < plain["std_error"] / 4
    else:
        assert y["control"]["variance_reduction"] == pytest.approx(1, abs=0.01)
    status, out, _ = hub(env, "run", *args, "--control", "u")
    assert status == 0 and "control variate u: coefficient " in out


def test_a_precision_on_a_quantile_from_the_command_line(env: dict[str, str]) -> None:
    args = ["call", "--hist", "price=55:65:200", "--precision", "0.25", "--output", "price@0.99"]
    report = run_json(env, *args, "--seed", "6", "--sampler", "mc")
    assert report["precision"]["quantile"] == 0.99 and report["precision"]["reached"]
    (q,) = report["outputs"]["price"]["quantiles"]
    assert q["p"] == 0.99 and (q["ci95"][1] - q["ci95"][0]) / 2 <= 0.25
    status, out, _ = hub(env, "run", *args, "--seed", "6", "--sampler", "mc")
    assert status == 0 and "precision ±0.25 on price@0.99 reached" in out


def test_refine_narrows_a_quantile_the_bins_held_back(env: dict[str, str]) -> None:
    args = ["call", "-n", "65536", "--seed", "5", "--hist", "price=0:100:20", "--quantile"]
    coarse = run_json(env, *args, "0.99")["outputs"]["price"]["quantiles"][0]
    refined = run_json(env, *args, "0.99", "--refine")["outputs"]["price"]["quantiles"][0]
    assert coarse["bin_limited"] and not coarse["refined"] and refined["refined"]
    assert coarse["ci95"][0] <= refined["ci95"][0] < refined["ci95"][1] <= coarse["ci95"][1]
    status, out, _ = hub(env, "run", *args, "0.99", "--refine")
    assert status == 0 and "refined by a second pass with finer bins" in out
    assert "quantile(s) refined by a second pass over the same samples" in out


@pytest.mark.parametrize("sampler", ["mc", "rqmc"])
def test_antithetic_pairs_are_reported_and_split_free(
    env: dict[str, str], models_file: Path, sampler: str
) -> None:
    """e^u is monotone, so under plain Monte Carlo its pairs gain (ρ = −0.97: a cut of
    about 30 per evaluation); under randomized QMC a replicate's mirrored net gains
    nothing on this one-dimensional integrand, and the report says that too."""
    args = [f"{models_file}:exp_u", "-n", "65536", "--seed", "4", "--sampler", sampler]
    report = run_json(env, *args, "--antithetic", "--processes", "2")
    y = report["outputs"]["y"]
    assert y["ci95"][0] <= math.e - 1 <= y["ci95"][1]
    assert y["antithetic"]["variance_reduction"] > (10 if sampler == "mc" else 0.5)
    serial = run_json(env, *args, "--antithetic", "--processes", "1", "--chunk-size", "4096")
    assert statistics(serial) == statistics(report)
    assert any("131,072 model evaluations" in note for note in report["notes"])
    status, out, _ = hub(env, "run", *args, "--antithetic")
    assert status == 0 and "antithetic pairs: variance cut " in out


def test_a_model_of_uniforms_in_a_file_runs_either_sampler(
    env: dict[str, str], models_file: Path
) -> None:
    spec = f"{models_file}:square_u"
    report = run_json(env, spec, "-n", "65536", "--seed", "1", "--processes", "2")
    x2 = report["outputs"]["x2"]
    assert report["sampler"]["kind"] == "rqmc" and x2["ci95"][0] <= 1 / 3 <= x2["ci95"][1]
    # A smooth integrand in one dimension: RQMC's error falls like n^-3/2.
    assert x2["variance_reduction"] > 10**5
    serial = run_json(env, spec, "-n", "65536", "--seed", "1", "--chunk-size", "512")
    assert statistics(serial) == statistics(report)
    plain = run_json(env, spec, "-n", "65536", "--seed", "1", "--sampler", "mc")
    assert plain["sampler"] == {"kind": "mc"} and "variance_reduction" not in plain["outputs"]["x2"]
    assert abs(plain["outputs"]["x2"]["mean"] - 1 / 3) < 4 * plain["outputs"]["x2"]["std_error"]


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["nope"], ExitStatus.USAGE, "no model 'nope' is installed"),
        (["call", "--param", "Q=1"], ExitStatus.USAGE, "model call has no parameter Q"),
        (["ball", "--param", "d=three"], ExitStatus.USAGE, "parameter d must be an integer"),
        (["call", "--param", "S"], ExitStatus.USAGE, "is not NAME=VALUE"),
        (["call", "--param", "S=1", "--param", "S=2"], ExitStatus.USAGE, "more than once"),
        (["call", "--precision", "0.1", "-n", "5"], ExitStatus.USAGE, "not both"),
        (["call", "--output", "price"], ExitStatus.USAGE, "--output names the output"),
        (["call", "--precision", "1", "--output", "vol"], ExitStatus.USAGE, "no output 'vol'"),
        (["call", "--precision", "-1"], ExitStatus.USAGE, "positive number"),
        (["call", "--max-samples", "9"], ExitStatus.USAGE, "--max-samples bounds"),
        ([], ExitStatus.USAGE, "name a model"),
        (["call", "-n", "0"], ExitStatus.USAGE, "at least 1"),
        (["ball", "--param", "d=0"], ExitStatus.USAGE, "model ball: d must be between 1 and 64"),
        (["call", "--sweep", "K=90,abc"], ExitStatus.USAGE, "sweep job 2 of 2 (K='abc'): param"),
        (["ball", "--sweep", "d=2,0,3"], ExitStatus.USAGE, "sweep job 2 of 3 (d='0'): model"),
        (["call", "--sweep", "K=1", "--param", "K=2"], ExitStatus.USAGE, "both --param and"),
        (["call", "--sweep", "K=1", "--sweep", "K=2"], ExitStatus.USAGE, "more than once"),
        (["call", "--sweep", "K=1,"], ExitStatus.USAGE, "is not NAME=VALUE,VALUE,..."),
        (["call", "--sweep", "K=1,2", "--plot", "p.png"], ExitStatus.USAGE, "--plot draws one"),
        (["{file}:raises"], ExitStatus.JOB_FAILED, "model raises raised in block"),
        (["{file}:shape"], ExitStatus.JOB_FAILED, "returned shape (7,), expected (8,)"),
        (["{file}:nan"], ExitStatus.JOB_FAILED, "output value has NaN or infinite samples"),
        (["{file}:not_a_model"], ExitStatus.USAGE, "is not a model"),
        (["{file}:missing"], ExitStatus.USAGE, "is not a model"),
        (["/no/such.py:m"], ExitStatus.USAGE, "no model file /no/such.py"),
        (["no_such_module:m"], ExitStatus.USAGE, "cannot load no_such_module"),
        (["--resume", "0123456789abcdef", "call"], ExitStatus.USAGE, "drop MODEL"),
        (["e", "--sampler", "rqmc"], ExitStatus.USAGE, "model e takes a generator (rng, n)"),
        (["call", "--replicates", "4"], ExitStatus.USAGE, "at least 8 replicates"),
        (["call", "--replicates", "2000"], ExitStatus.USAGE, "replicates"),
        (["call", "--sampler", "qmc"], ExitStatus.USAGE, "invalid choice: 'qmc'"),
        (["call", "--sampler", "mc", "--replicates", "16"], ExitStatus.USAGE, "drop it"),
        # With a chunk size, nothing is calibrated: the first chunk is the job's own.
        (["{file}:raises_u", "--chunk-size", "4"], 5, "raised in points [0, 4) of replicate "),
        (["{file}:shape_u", "--chunk-size", "4"], 5, "returned shape (4, 2), expected (4,)"),
        (["call", "--hist", "price=0:100"], ExitStatus.USAGE, "is not OUTPUT=LO:HI:BINS"),
        (["call", "--hist", "price=9:1:10"], ExitStatus.USAGE, "range is LO < HI"),
        (["call", "--hist", "price=log:0:1:10"], ExitStatus.USAGE, "start above 0"),
        (["call", "--quantile", "1.2"], ExitStatus.USAGE, "between 0 and 1, not 1.2"),
        (["call", "--quantile", "0.9"], ExitStatus.USAGE, "--hist price=LO:HI:BINS"),
        (["call", "--exceed", "price20"], ExitStatus.USAGE, "is not OUTPUT>T"),
        (["call", "--exceed", "vol>1"], ExitStatus.USAGE, "no output 'vol'"),
        (["pi", "--sampler", "mc", "--exceed", "pi>1"], ExitStatus.USAGE, "--sampler rqmc"),
        (["call", "--control", "nope"], ExitStatus.USAGE, "no control 'nope' (its controls: "),
        (["e", "--control", "x"], ExitStatus.USAGE, "model e has no control 'x' (its controls: n"),
        (["{file}:exp_u", "--control", "bad"], ExitStatus.USAGE, "its mean must be finite"),
        (["e", "--antithetic"], ExitStatus.USAGE, "antithetic pairs mirror its uniforms"),
        (["call", "--refine"], ExitStatus.USAGE, "--refine refines quantiles: ask for one"),
        (["call", "--precision", "0.1", "--output", "price@2"], ExitStatus.USAGE, "NAME@P names"),
        (["call", "--output", "price@0.9"], ExitStatus.USAGE, "the output --precision applies"),
        (["call", "--antithetic", "--control", "terminal"], ExitStatus.USAGE, "one variance"),
        (["call", "--antithetic", "--exceed", "price>20"], ExitStatus.USAGE, "drop --antithetic"),
        # Calibrating, the pool measures the model under plain Monte Carlo's uniforms.
        (["{file}:shape_u"], ExitStatus.JOB_FAILED, "model shape_u, block 0: returned shape"),
    ],
)
def test_bad_input_gets_one_line_and_a_status(
    args: list[str], status: int, message: str, env: dict[str, str], models_file: Path
) -> None:
    args = [a.replace("{file}", str(models_file)) for a in args]
    if not {"--resume", "--precision", "--max-samples", "-n"} & set(args):
        args += ["-n", "64", "--local"]
    code, _, err = hub(env, "run", *args)
    assert code == status, err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_failed_model_job_is_recorded_and_resumable(
    env: dict[str, str], models_file: Path
) -> None:
    code, _, err = hub(env, "run", f"{models_file}:raises", "-n", "64")
    assert code == ExitStatus.JOB_FAILED and "RuntimeError: the model broke" in err
    _, out, _ = hub(env, "jobs", "--json")
    (record,) = json.loads(out)
    assert record["status"] == "failed" and record["model"]["name"] == "raises"
    assert "the model broke" in record["error"]


def test_a_local_file_model_is_refused_on_a_cluster(env: dict[str, str], models_file: Path) -> None:
    cluster = {
        **env,
        "MCPI_BROKER_URL": "amqp://u:p@127.0.0.1:9/v",
        "MCPI_RESULT_BACKEND": "redis://127.0.0.1:9/0",
    }
    code, _, err = hub(cluster, "run", f"{models_file}:square", "-n", "64")
    assert code == ExitStatus.USAGE and "runs on the local pool only (--local)" in err


def test_a_killed_hub_s_model_job_resumes_from_its_journal(tmp_path: Path) -> None:
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "no-config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PATH": "/usr/bin:/bin",
    }
    args = ["call", "-n", str(64 * 4096 * 25), "--seed", "31", "--chunk-size", str(25 * 4096)]
    journal = kill_once_journaled(["run", *args, "--processes", "2"], env, tmp_path / "cache")
    status, _, err = hub(env, "estimate", "--resume", journal.stem)
    assert status == ExitStatus.USAGE and "mcpi-hub run --resume" in err
    resumed = run_json(env, "--resume", journal.stem, "--processes", "2")
    (note,) = [n for n in resumed["notes"] if "taken from the journal" in n]
    assert int(note.split()[1].replace(",", "")) >= 3 and resumed["resumed"]
    whole = run_json(env, *args)
    assert statistics(resumed) == statistics(whole)
    assert not journal.exists()


@settings(
    max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    option=st.sampled_from(
        [
            "-n",
            "--seed",
            "--chunk-size",
            "--param",
            "--precision",
            "--output",
            "--max-samples",
            "--timeout",
            "--processes",
            "--resume",
            "--sweep",
            "MODEL",
        ]
    ),
    value=st.text(min_size=1, max_size=20).filter(lambda v: not v.startswith("-")),
)
def test_fuzzed_run_options_never_escape_as_tracebacks(
    option: str, value: str, env: dict[str, str]
) -> None:
    args = {
        "MODEL": [value, "-n", "64"],
        "--precision": ["call", "--max-samples", "1e5", "--precision", value],
        "--output": ["call", "--max-samples", "1e5", "--precision", "0.5", "--output", value],
        "--max-samples": ["call", "--precision", "0.5", "--max-samples", value],
        "--resume": ["--resume", value],
    }.get(option, ["e", "-n", "4096", option, value])
    status, out, err = hub({**env, "MCPI_DEBUG": ""}, "run", "--local", "--no-progress", *args)
    assert "Traceback" not in err
    if status == ExitStatus.PRECISION_NOT_REACHED:
        assert "NOT reached" in out and err == ""
    elif status != ExitStatus.OK:
        assert status in (ExitStatus.USAGE, ExitStatus.CONFIG, ExitStatus.JOB_FAILED), err
        assert len(err.strip().splitlines()) == 1, err


def test_the_python_api_gives_the_cli_s_answer(env: dict[str, str], models_file: Path) -> None:
    args = ["call", "-n", "81920", "--seed", "12", "--param", "sigma=0.3", "--sampler", "mc"]
    report = run_json(env, *args)
    result = mcpi.run(
        "call", samples=81920, seed=12, params={"sigma": 0.3}, env=env, processes=2, sampler="mc"
    )
    price = result["price"]
    assert [price.mean, price.std_error, [price.ci_low, price.ci_high]] == [
        report["outputs"]["price"][k] for k in ("mean", "std_error", "ci95")
    ]
    assert result.mean == price.mean and result.seed == 12 and len(result.job_id) == 16
    assert result.samples == 81920 and result.params["sigma"] == 0.3
    assert sum(h.darts for h in result.hosts) == 81920 and "call" in repr(result)
    # A model declared in a module is run by its module's name.
    sys.path.insert(0, str(models_file.parent))
    try:
        import my_models  # type: ignore[import-not-found]

        square = mcpi.run(my_models.square, samples=4096, seed=1, env=env, processes=1)
        assert square.model == "square" and square["x2"].exact == 1 / 3
    finally:
        sys.path.remove(str(models_file.parent))
    with pytest.raises(UsageError, match="no model 'nope'"):
        mcpi.run("nope", env=env)
    with pytest.raises(UsageError, match="not both"):
        mcpi.run("call", samples=10, precision=0.1, env=env)
    assert math.isfinite(mcpi.run("e", precision=0.05, seed=2, env=env).mean)


def test_a_warm_session_gives_every_job_its_single_run_s_answer(env: dict[str, str]) -> None:
    jobs = [("call", 40960, {"K": 90.0}, 3), ("call", 40960, {"K": 110.0}, 4), ("e", 8192, {}, 5)]
    singles = [
        mcpi.run(name, samples=n, seed=seed, params=params, env=env, processes=2)
        for name, n, params, seed in jobs
    ]
    with mcpi.Session(env=env, processes=2) as session:
        assert session.where == "local"
        warm = [session.run(name, n, seed=seed, params=params) for name, n, params, seed in jobs]
        pool = session._warm.inner._pool  # type: ignore[union-attr]
        again = session.run("call", 40960, seed=3, params={"K": 90.0})
        assert session._warm.inner._pool is pool  # type: ignore[union-attr]
        with pytest.raises(UsageError, match="no model 'nope'"):
            session.run("nope", 10)
        after_an_error = session.run("e", 8192, seed=5)
    for single, hot in zip(singles, warm, strict=True):
        assert hot.outputs == single.outputs and hot.seed == single.seed
        assert hot.job_id != single.job_id
        assert hot.notes == single.notes, (hot.notes, single.notes)
    assert again.outputs == warm[0].outputs
    assert after_an_error.outputs == warm[2].outputs
    assert pool._state != "RUN"  # the session's end stopped its processes
    with pytest.raises(UsageError, match="closed"):
        session.run("e", 10)


TWO_OUTPUTS = textwrap.dedent(
    """
    import time
    import numpy as np
    import mcpi

    @mcpi.model("two", outputs=("flat", "noisy"), block=256)
    def two(rng, n):
        time.sleep(0.05)  # slow enough to kill the hub mid-job
        return np.stack([np.zeros(n), rng.standard_normal(n)], axis=1)
    """
)


def test_a_resumed_precision_job_targets_the_output_it_started_with(tmp_path: Path) -> None:
    # "flat" has no spread: a rule looking at it would stop at the pilot; "noisy" needs
    # about 38,000 samples for ±0.01.
    (tmp_path / "two.py").write_text(TWO_OUTPUTS)
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "no-config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PATH": "/usr/bin:/bin",
    }
    args = [f"{tmp_path / 'two.py'}:two", "--precision", "0.01", "--output", "noisy"]
    journal = kill_once_journaled(
        ["run", *args, "--seed", "3", "--chunk-size", "256"], env, tmp_path / "cache"
    )
    resumed = run_json(env, "--resume", journal.stem)
    assert resumed["precision"]["output"] == "noisy" and resumed["precision"]["reached"]
    noisy = resumed["outputs"]["noisy"]
    assert (noisy["ci95"][1] - noisy["ci95"][0]) / 2 <= 0.01 < 1.96 / 10_240**0.5


@pytest.mark.parametrize(
    "asked",
    [
        ["--control", "terminal", "--sampler", "mc"],
        ["--antithetic"],
        ["--hist", "price=0:100:50", "--quantile", "0.9", "--exceed", "price>20"],
    ],
    ids=["control", "antithetic", "distribution"],
)
def test_a_sweep_asks_each_job_what_a_single_run_asks(
    env: dict[str, str], asked: list[str]
) -> None:
    """The answers beyond the mean and the variance reductions hold in a sweep: each job
    is its single run, bit for bit (from Python too); --refine is refused in one line
    (it runs a second job after the first)."""
    args = ["call", "-n", "65536", "--seed", "9", "--local", "--processes", "2", *asked]
    status, out, err = hub(env, "run", *args, "--sweep", "K=90,110", "--json")
    assert status == ExitStatus.OK, err
    jobs = json.loads(out)["jobs"]
    for job, strike in zip(jobs, (90, 110), strict=True):
        alone = run_json(env, *args, f"--param=K={strike}")
        assert alone["outputs"] == job["outputs"] and alone["samples"] == job["samples"]
    by_api = mcpi.sweep(
        "call", [{"K": 90}], 65536, seed=9, local=True, processes=2,
        **({"control": "terminal", "sampler": "mc"} if "--control" in asked else {}),
        **({"antithetic": True} if "--antithetic" in asked else {}),
        **({"hist": {"price": (0, 100, 50)}, "quantiles": [0.9], "exceed": {"price": 20.0}}
           if "--hist" in asked else {}),
    )  # fmt: skip
    assert by_api[0]["price"].mean == jobs[0]["outputs"]["price"]["mean"]
    if "--quantile" in asked:
        status, _, err = hub(env, "run", *args, "--sweep", "K=90,110", "--refine")
        assert status == ExitStatus.USAGE and "run the point alone" in err


def test_a_sweep_runs_each_job_as_its_single_run(env: dict[str, str]) -> None:
    """Each job of a sweep: its own record, the common seed, its single run's bits."""
    args = ["-n", "40960", "--seed", "17", "--local", "--processes", "2"]
    status, out, err = hub(env, "run", "call", "--sweep", "K=90,110", "--sweep", "r=0,0.05",
                           "--param", "sigma=0.3", "--json", *args)  # fmt: skip
    assert status == ExitStatus.OK, err
    sweep = json.loads(out)
    assert sweep["sweep"] == ["K", "r"] and sweep["done"] == 4 and sweep["failed"] == 0
    jobs = sweep["jobs"]
    assert [(j["params"]["K"], j["params"]["r"]) for j in jobs] == [
        (90.0, 0.0), (90.0, 0.05), (110.0, 0.0), (110.0, 0.05)
    ]  # fmt: skip
    assert len({j["job_id"] for j in jobs}) == 4 and {j["seed"] for j in jobs} == {17}
    assert sweep["samples"] == sum(j["samples"] for j in jobs)
    for job in jobs:
        p = job["params"]
        alone = run_json(env, "call", *args, f"--param=K={p['K']}", f"--param=r={p['r']}",
                         "--param", "sigma=0.3")  # fmt: skip
        assert statistics(alone) == statistics(job)
        assert job["params"] == alone["params"] and job["outputs"]["price"]["exact"] > 0
    # Every job is recorded, as done, like any other job.
    _, out, _ = hub(env, "jobs", "--json")
    done = {r["id"]: r["status"] for r in json.loads(out)}
    assert all(done[j["job_id"]] == "done" for j in jobs)
    # The text report: one row per job, in order.
    status, out, err = hub(env, "run", "ball", "--sweep", "d=2,3,4", *args)
    assert status == ExitStatus.OK, err
    rows = [line.split() for line in out.splitlines() if line[:1].isdigit()]
    assert [r[0] for r in rows[:3]] == ["2", "3", "4"] and "3 of 3 job(s) done" in out


def test_a_sweep_with_one_bad_job_runs_nothing(env: dict[str, str]) -> None:
    status, _, err = hub(env, "run", "ball", "--sweep", "d=2,3,99", "-n", "64", "--local")
    assert status == ExitStatus.USAGE and "sweep job 3 of 3 (d='99')" in err
    assert "nothing was run" in err and err.count("\n") == 1
    _, out, _ = hub(env, "jobs", "--json")
    assert json.loads(out) == []
    with pytest.raises(UsageError, match=r"sweep job 1 of 2 \(K=-1.0\)"):
        mcpi.sweep("call", [{"K": -1.0}, {"K": 1.0}], 4096, env=env)
    with pytest.raises(UsageError, match="a list of parameter sets"):
        mcpi.sweep("call", {"K": 1.0}, 4096, env=env)  # type: ignore[arg-type]


def test_a_failed_job_does_not_stop_its_sweep(env: dict[str, str], models_file: Path) -> None:
    """One job failing as it runs: the others finish, the row says why, exit is its status."""
    status, out, err = hub(env, "run", f"{models_file}:raises_at", "--sweep", "at=-1,2,-1",
                           "-n", "64", "--seed", "3", "--local", "--json")  # fmt: skip
    assert status == ExitStatus.JOB_FAILED, err
    sweep = json.loads(out)
    assert sweep["done"] == 2 and sweep["failed"] == 1
    failed = sweep["jobs"][1]
    assert failed["exit_status"] == ExitStatus.JOB_FAILED and "broke at 2" in failed["error"]
    assert sweep["jobs"][0]["outputs"] == sweep["jobs"][2]["outputs"]


def test_a_session_sweeps_on_its_warm_pool(env: dict[str, str]) -> None:
    points = [{"d": d} for d in range(2, 8)]
    with mcpi.Session(env=env, processes=2) as session:
        first = session.sweep("ball", points, 40960, seed=5)
        pool = session._warm.inner._pool  # type: ignore[union-attr]
        again = session.sweep("ball", points[:2], 40960, seed=5)
        assert session._warm.inner._pool is pool  # type: ignore[union-attr]
    alone = mcpi.sweep("ball", points, 40960, seed=5, env=env, processes=2)
    for hot, cold, point in zip(first, alone, points, strict=True):
        assert hot.params == cold.params == point and hot.outputs == cold.outputs
        single = mcpi.run("ball", 40960, seed=5, params=point, env=env, processes=1)
        assert hot.outputs == single.outputs and hot.job_id != single.job_id
    assert [r.outputs for r in again] == [r.outputs for r in first[:2]]
    # With no seed, the jobs share one fresh seed (common random numbers).
    unseeded = mcpi.sweep("call", [{"K": 95.0}, {"K": 105.0}], 4096, env=env, processes=2)
    assert unseeded[0].seed == unseeded[1].seed


def test_a_slow_model_gets_small_chunks_and_its_deadline_holds(
    env: dict[str, str], models_file: Path
) -> None:
    """Seconds per block, not nanoseconds: chunks of a block or two, and --timeout holds."""
    spec = f"{models_file}:slow"
    report = run_json(env, spec, "-n", "64", "--seed", "2", "--processes", "2")
    assert report["block"] == 8 and report["chunk_size"] <= 16 and report["chunks"] >= 4
    assert report["chunking"]["bound_by"] == "balance"
    status, _, err = hub(env, "run", spec, "-n", "4096", "--processes", "2", "--timeout", "1")
    assert status == ExitStatus.TIMEOUT and "deadline passed" in err and err.count("\n") == 1
    _, out, _ = hub(env, "jobs", "--json")
    timed_out = [r for r in json.loads(out) if r["status"] == "failed"]
    assert len(timed_out) == 1 and "deadline" in timed_out[0]["error"]
