"""Model jobs on real RabbitMQ, Redis and workers: the local pool's answer bit for bit, through
faults, and only with models the workers have installed."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pika
import pytest

import mcpi
from mcpi.cli import main
from mcpi.errors import ExitStatus
from mcpi.models.builtin import call, ishigami_indices
from mcpi.testing.servers import RabbitMQ, wait_for
from tests.helpers import (
    Background,
    hub_json,
    install_user_models,
    kill_once_journaled,
    publish_task,
    run_model,
)

pytestmark = pytest.mark.integration


def hub_process(env: dict[str, str], *args: str, pythonpath: Path | None = None) -> Any:
    """``mcpi-hub run --json ARGS`` in its own process (with a user's package on its path)."""
    full = {**env, "PYTHONPATH": str(pythonpath)} if pythonpath else env
    return subprocess.run(
        [sys.executable, "-m", "mcpi", "run", "--json", "--no-progress", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def statistics(report: dict[str, Any]) -> dict[str, Any]:
    return {"samples": report["samples"], "seed": report["seed"], "outputs": report["outputs"]}


def test_every_builtin_model_on_the_cluster_equals_the_local_pool(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    start_worker("w1", concurrency=2)
    # Half a job per chunk, at least: the split is what must not matter (the tuner
    # would give these small jobs one chunk when a task's overhead is their work).
    for args in (
        ["pi", "-n", "2e7", "--chunk-size", "1e7"],
        ["ball", "-n", "2e5", "--chunk-size", "1e5", "--param", "d=4"],
        ["call", "-n", "2e5", "--chunk-size", "1e5", "--param", "K=95"],
        ["call", "--sampler", "mc", "-n", "2e5", "--chunk-size", "1e5", "--param", "K=95"],
        ["ball", "--sampler", "mc", "-n", "2e5", "--chunk-size", "1e5"],
        ["e", "-n", "2e5", "--chunk-size", "1e5"],
        ["ishigami", "-n", "2e5", "--chunk-size", "1e5"],
    ):
        status, cluster, err = run_model(cluster_env, *args, "--seed", "41")
        assert status == 0 and cluster is not None, err
        assert cluster["mode"] == "cluster" and cluster["chunks"] >= 2
        status, local, err = run_model(cluster_env, *args, "--seed", "41", "--local")
        assert status == 0 and local is not None, err
        assert statistics(cluster) == statistics(local), args
    out, err_stream = io.StringIO(), io.StringIO()
    assert main(["models", "--json"], cluster_env, out, err_stream) == 0, err_stream.getvalue()
    listed = json.loads(out.getvalue())
    assert listed["models"]["call"]["workers"] == {
        node: f"{call.version}:{call.digest}" for node in listed["workers"]
    }


def test_call_to_a_precision_on_the_cluster_is_the_local_pool_s_answer(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    """The RQMC issue's "done when": seconds, an interval that covers the price, the
    same bits as ``--local`` and as another chunking."""
    start_worker("w1", concurrency=2)
    args = ["call", "--precision", "1e-4", "--seed", "20261206"]
    status, cluster, err = run_model(cluster_env, *args)
    assert status == 0 and cluster is not None, err
    price = cluster["outputs"]["price"]
    assert cluster["mode"] == "cluster" and cluster["sampler"]["kind"] == "rqmc"
    assert price["ci95"][0] <= 10.450583572185565 <= price["ci95"][1]
    assert cluster["wall_seconds"] < 60 and cluster["precision"]["reached"]
    for more in (["--local"], ["--chunk-size", "2048"]):
        status, other, err = run_model(cluster_env, *args, *more)
        assert status == 0 and other is not None, err
        assert statistics(other) == statistics(cluster), more


@pytest.mark.parametrize(
    ("sampler", "reduction"),
    [("mc", "control"), ("rqmc", "control"), ("mc", "antithetic"), ("rqmc", "antithetic")],
)
def test_a_variance_reduction_on_the_cluster_is_the_local_pool_s_answer(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, sampler: str, reduction: str
) -> None:
    """The workers build the design (a control's, antithetic pairs') from the job's model
    call: the same bits as ``--local`` and as another chunking, to a precision."""
    start_worker("w1", concurrency=2)
    asked = ["--control", "terminal"] if reduction == "control" else ["--antithetic"]
    args = ["call", *asked, "--sampler", sampler, "--seed", "7"]
    args += ["--precision", "0.01" if sampler == "mc" else "2e-4"]
    status, cluster, err = run_model(cluster_env, *args)
    assert status == 0 and cluster is not None, err
    price = cluster["outputs"]["price"]
    assert cluster["mode"] == "cluster" and cluster["precision"]["reached"]
    assert price[reduction]["variance_reduction"] > 1
    for more in (["--local"], ["--chunk-size", "8192"]):
        status, other, err = run_model(cluster_env, *args, *more)
        assert status == 0 and other is not None, err
        assert statistics(other) == statistics(cluster), more


def test_histograms_quantiles_and_exceedances_on_the_cluster_are_the_local_pool_s(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    start_worker("w1", concurrency=2)
    for sampler in ("mc", "rqmc"):
        args = ["call", "--sampler", sampler, "-n", str(16 * 2**15), "--seed", "7"]
        args += ["--chunk-size", str(2**15), "--hist", "price=log:0.01:400:100"]
        args += ["--quantile", "0.99", "--exceed", "price>20"]
        status, cluster, err = run_model(cluster_env, *args)
        assert status == 0 and cluster is not None, err
        assert cluster["mode"] == "cluster" and cluster["chunks"] >= 2
        status, local, err = run_model(cluster_env, *args, "--local")
        assert status == 0 and local is not None, err
        assert statistics(cluster) == statistics(local), sampler
        assert "histogram" in cluster["outputs"]["price"]


def test_a_wave_of_wide_results_is_cut_to_keep_every_message_under_1_mib(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    # 4,096 bins: each chunk's result is some 25 KB, so 64 chunks (the wave two slots
    # would get) would make a 1.6 MB chord callback. The hub cuts its waves by size.
    start_worker("w1", concurrency=2)
    args = ["call", "--sampler", "mc", "-n", str(400 * 4096), "--seed", "3"]
    args += ["--chunk-size", "4096", "--hist", "price=0:200:4096"]
    status, cluster, err = run_model(cluster_env, *args)
    assert status == 0 and cluster is not None, err
    assert cluster["chunks"] == 400
    assert 0 < cluster["largest_message_bytes"] < 2**20
    status, local, err = run_model(cluster_env, *args, "--local")
    assert status == 0 and local is not None, err
    assert statistics(cluster) == statistics(local)
    assert local["largest_message_bytes"] is None  # the local pool sends none


def test_sobol_indices_on_the_cluster_are_the_local_pool_s(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    start_worker("w1", concurrency=2)
    args = ["ishigami", "-n", str(16 * 2**13), "--seed", "7", "--chunk-size", "4096"]
    status, cluster, err = hub_json("sensitivity", cluster_env, *args)
    assert status == 0 and cluster is not None, err
    assert cluster["mode"] == "cluster" and cluster["chunks"] == 32
    status, local, err = hub_json("sensitivity", cluster_env, *args, "--local")
    assert status == 0 and local is not None, err
    assert cluster["sensitivity"] == local["sensitivity"]
    first = cluster["sensitivity"]["inputs"]["x2"]["first"]["ci95"]
    assert first[0] <= ishigami_indices()[0][1] <= first[1]


KILL_ONCE = """
import os, signal
from celery.signals import task_prerun

@task_prerun.connect
def _crash(task=None, args=None, **_):
    marker = os.environ["MCPI_TEST_KILLED_MARKER"]
    if task is not None and task.name == "mcpi.count_chunk" and args[1][0] == 2:
        if not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["e", "-n", str(8 * 4096 * 4), "--chunk-size", str(4 * 4096)],
        # Randomized QMC: chunk 2 is points [2048, 3072) of replicate 0.
        ["call", "-n", str(16 * 4096), "--chunk-size", "1024"],
    ],
    ids=["mc", "rqmc"],
)
def test_a_model_job_survives_a_killed_pool_process(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, tmp_path: Path, args: list[str]
) -> None:
    (tmp_path / "inject").mkdir()
    (tmp_path / "inject" / "sitecustomize.py").write_text(KILL_ONCE)
    marker = tmp_path / "killed"
    start_worker(
        "w1",
        concurrency=2,
        PYTHONPATH=str(tmp_path / "inject"),
        MCPI_TEST_KILLED_MARKER=str(marker),
    )
    args = [*args, "--seed", "5"]
    status, cluster, err = run_model(cluster_env, *args, "--timeout", "120")
    assert status == 0 and cluster is not None, err
    assert marker.exists(), "the pool process was not killed"
    status, local, err = run_model(cluster_env, *args, "--local")
    assert status == 0 and local is not None, err
    assert statistics(cluster) == statistics(local)


@pytest.mark.parametrize(
    ("sampler", "samples", "chunk", "chunks"),
    [
        # Chunks of about 0.15 s: several still wait in the queue when the first is done.
        ("mc", 8 * 8_192_000, 8_192_000, 8),
        # 16 replicates of 2^22 points, a replicate a chunk.
        ("rqmc", 16 * 2**22, 2**22, 16),
    ],
)
def test_a_model_chunk_delivered_twice_counts_once(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str],
    start_worker,
    rabbitmq: RabbitMQ,
    sampler: str,
    samples: int,
    chunk: int,
    chunks: int,
) -> None:
    worker = start_worker("w1", concurrency=1)
    job = Background(
        cluster_env,
        "call",
        "--sampler",
        sampler,
        "-n",
        str(samples),
        "--chunk-size",
        str(chunk),
        command="run",
    )
    wait_for(lambda: " succeeded in " in worker.log(), 120, "a first chunk to finish")
    connection = pika.BlockingConnection(rabbitmq.pika_parameters())
    try:
        ch = connection.channel()
        method, properties, body = None, None, None
        deadline = time.monotonic() + 30
        while method is None and time.monotonic() < deadline:
            method, properties, body = ch.basic_get("mcpi")
        assert method is not None, "no waiting chunk to duplicate"
        duplicated = properties.headers["id"]
        for _ in range(2):
            ch.basic_publish("", "mcpi", body, properties)
        ch.basic_ack(method.delivery_tag)
    finally:
        connection.close()
    status, cluster, err = job.join(300)
    assert status == 0 and cluster is not None, err
    assert worker.log().count(f"[{duplicated}] received") == 2
    assert sum(h["chunks"] for h in cluster["hosts"]) == cluster["chunks"] == chunks
    seed = str(cluster["seed"])
    status, local, err = run_model(
        cluster_env, "call", "--sampler", sampler, "-n", str(samples), "--seed", seed, "--local"
    )
    assert status == 0 and local is not None, err
    assert statistics(cluster) == statistics(local)


def test_only_installed_models_run_and_the_hub_names_workers_without_them(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, tmp_path: Path
) -> None:
    hub_site = install_user_models(tmp_path / "hub-site")
    args = ["cosine", "-n", "4e5", "--seed", "77"]
    # A worker without the user's package: refused before anything runs, naming it.
    start_worker("bare", concurrency=1)
    done = hub_process(cluster_env, *args, pythonpath=hub_site)
    assert done.returncode == ExitStatus.MODEL_MISSING, done.stderr
    assert "lacking it: bare@" in done.stderr and done.stderr.count("\n") == 1


def test_a_worker_with_other_model_code_is_named(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, tmp_path: Path
) -> None:
    hub_site = install_user_models(tmp_path / "hub-site")
    start_worker("new", concurrency=1, PYTHONPATH=str(hub_site))
    old = install_user_models(tmp_path / "old-site", version="0")
    start_worker("old", concurrency=1, PYTHONPATH=str(old))
    done = hub_process(cluster_env, "cosine", "-n", "4e5", pythonpath=hub_site)
    assert done.returncode == ExitStatus.MODEL_MISSING, done.stderr
    assert "with other code: old@" in done.stderr and "new@" not in done.stderr


def test_a_user_model_on_the_cluster_equals_the_local_pool(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, tmp_path: Path
) -> None:
    site = install_user_models(tmp_path / "site")
    start_worker("w1", concurrency=2, PYTHONPATH=str(site))
    args = ["cosine", "--precision", "2e-3", "--seed", "77"]
    cluster = hub_process(cluster_env, *args, pythonpath=site)
    assert cluster.returncode == 0, cluster.stderr
    local = hub_process(cluster_env, *args, "--local", pythonpath=site)
    assert local.returncode == 0, local.stderr
    on_cluster, here = json.loads(cluster.stdout), json.loads(local.stdout)
    assert on_cluster["mode"] == "cluster" and statistics(on_cluster) == statistics(here)
    cos = on_cluster["outputs"]["cos"]
    assert abs(cos["mean"] - cos["exact"]) < 4 * cos["std_error"]
    assert on_cluster["precision"]["reached"] and len(on_cluster["stages"]) >= 2


def test_messages_naming_anything_but_an_installed_model_are_refused(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, rabbitmq: RabbitMQ, tmp_path: Path
) -> None:
    worker = start_worker("w1", concurrency=1)
    marker = tmp_path / "pwned"
    model = call.call({}).to_json()
    job = {"id": "hostile", "seed": 1, "darts": 4096, "chunk_size": 4096, "first": 0}
    hostile = [
        job | {"model": model | {"name": "os"}},  # a module, not an installed model
        job | {"model": model | {"name": "os:system"}},  # not even a model name
        job | {"model": model | {"params": {"S": f"$(touch {marker})"}}},
    ]
    for message in hostile:
        publish_task(rabbitmq, "mcpi.count_chunk", [message, [0, 0, 4096]])
    connection = pika.BlockingConnection(rabbitmq.pika_parameters())
    try:
        ch = connection.channel()
        wait_for(
            lambda: ch.queue_declare("mcpi", passive=True).method.message_count == 0,
            60,
            "the worker to take every hostile message",
        )
    finally:
        connection.close()
    wait_for(lambda: worker.log().count("raised unexpected") >= 3, 60, "a refusal logged for each")
    log = worker.log()
    assert "UnknownModel" in log and "no model 'os' is installed" in log
    assert log.count("MalformedMessage") >= 2
    assert not marker.exists()
    # Still the same worker, and it still runs installed models.
    assert worker.process.poll() is None
    status, report, err = run_model(cluster_env, "e", "-n", "8192", "--seed", "3")
    assert status == 0 and report is not None, err


def test_a_warm_session_on_the_cluster_equals_single_runs(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    start_worker("w1", concurrency=2)
    jobs = [("pi", 4 * 10**7, {}, 1), ("call", 4096 * 40, {"K": 95.0}, 2), ("pi", 4 * 10**7, {}, 3)]
    with mcpi.Session(env=cluster_env) as session:
        assert session.where != "local"
        warm = [session.run(name, n, seed=s, params=p) for name, n, p, s in jobs]
    for (name, n, params, seed), hot in zip(jobs, warm, strict=True):
        args = [name, "-n", str(n), "--seed", str(seed)]
        args += [f"--param={k}={v}" for k, v in params.items()]
        status, local, err = run_model(cluster_env, *args, "--local")
        assert status == 0 and local is not None, err
        assert {k: (o.mean, o.std_error) for k, o in hot.outputs.items()} == {
            k: (o["mean"], o["std_error"]) for k, o in local["outputs"].items()
        }
        assert {h.host for h in hot.hosts} and hot.report.mode == "cluster"


def test_a_sweep_on_the_cluster_runs_its_jobs_at_once_each_as_alone(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    # No worker yet: the whole sweep is refused at once, as a single job would be.
    status, _, err = run_model(
        {**cluster_env, "MCPI_SERVICE_WAIT": "0"}, "call", "--sweep", "K=90,110", "-n", "4096"
    )
    assert status == ExitStatus.NO_WORKERS and err.count("\n") == 1, err
    start_worker("w1", concurrency=2)
    strikes = ["80", "90", "100", "110", "120", "130"]
    status, sweep, err = run_model(
        cluster_env, "call", "--sweep", "K=" + ",".join(strikes), "-n", "4e5", "--seed", "9"
    )
    assert status == 0 and sweep is not None, err
    jobs = sweep["jobs"]
    assert [j["params"]["K"] for j in jobs] == [float(k) for k in strikes]
    assert {j["mode"] for j in jobs} == {"cluster"} and len({j["job_id"] for j in jobs}) == 6
    for job, strike in zip(jobs, strikes, strict=True):
        args = ["call", "-n", "4e5", "--seed", "9", f"--param=K={strike}"]
        status, alone, err = run_model(cluster_env, *args, "--local")
        assert status == 0 and alone is not None, err
        assert statistics(job) == statistics(alone)
    # At once, not one after another: each job ran while another did.
    spans = [(j["started_seconds"], j["ended_seconds"]) for j in jobs]
    for k, (start, end) in enumerate(spans):
        others = spans[:k] + spans[k + 1 :]
        assert any(s < end and start < e for s, e in others), spans
    # A warm session's sweep: the same jobs, the same bits.
    with mcpi.Session(env=cluster_env) as session:
        hot = session.sweep("call", [{"K": float(k)} for k in strikes], 4 * 10**5, seed=9)
    for result, job in zip(hot, jobs, strict=True):
        assert {k: (o.mean, o.std_error) for k, o in result.outputs.items()} == {
            k: (o["mean"], o["std_error"]) for k, o in job["outputs"].items()
        }


@pytest.mark.parametrize(
    ("size", "chunks"),
    [
        (["--sampler", "mc", "-n", str(4096 * 1600), "--chunk-size", str(4096 * 8)], 200),
        # 16 replicates of 2^16 points of 64 dimensions, in chunks of 2^12 points.
        (["--sampler", "rqmc", "-n", str(16 * 2**16), "--chunk-size", str(2**12)], 256),
    ],
    ids=["mc", "rqmc"],
)
def test_a_killed_hub_s_model_job_resumes_on_the_cluster(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, tmp_path: Path, size: list[str], chunks: int
) -> None:
    """Killed mid-job, the hub resumes from its journal and the backend, recomputing no
    counted chunk, and the result is the local pool's bit for bit."""
    start_worker("w1", concurrency=2)
    # About 1.5 s of work in 200 chunks (the 64-ball draws 64 numbers a sample): the
    # hub is killed early, with most of the job still to do.
    args = ["ball", "--param", "d=64", *size, "--seed", "5"]
    journal = kill_once_journaled(["run", "--no-progress", *args], cluster_env, tmp_path / "cache")
    status, resumed, err = run_model(cluster_env, "--resume", journal.stem)
    assert status == 0 and resumed is not None, err
    (note,) = [n for n in resumed["notes"] if n.startswith("resumed: ")]
    taken = int(note.split()[1].replace(",", ""))
    assert taken >= 3 and resumed["resumed"] and resumed["mode"] == "cluster"
    sent = sum(h["chunks"] for h in resumed["hosts"])
    assert taken + sent == resumed["chunks"] == chunks and taken < chunks
    status, local, err = run_model(cluster_env, *args, "--local")
    assert status == 0 and local is not None, err
    assert statistics(resumed) == statistics(local)


def test_model_rates_are_kept_per_model_and_parameters(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, tmp_path: Path
) -> None:
    start_worker("w1", concurrency=2)
    sources = []
    for params in (["--param", "K=90"], ["--param", "K=90"], ["--param", "K=110"], []):
        status, report, err = run_model(cluster_env, "call", "-n", "2e5", *params)
        assert status == 0 and report is not None, err
        sources.append(report["chunking"]["rates"])
    # Measured for the first job of each (model, parameters), then taken from the book.
    assert sources == [["calibrated"], ["learnt"], ["calibrated"], ["calibrated"]]
    book = json.loads((tmp_path / "cache/mcpi/rates.json").read_text())
    keyed = [k for k in book if " model call@1:" in k]
    ninety = "K=90.0,S=100.0,T=1.0,r=0.05,sigma=0.2"
    assert len(keyed) == 3 and any(k.endswith(ninety) for k in keyed)


def test_a_huge_model_job_keeps_the_hub_s_memory_bounded(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    """The hub's peak RSS for 1e14 samples (2.5 million chunks) is within 1.5x of 1e7's: chunk
    results are sums, and the hub holds two waves at a time."""
    from mcpi.bench.suite import run_for_peak_rss

    start_worker("w1", concurrency=2)
    peaks = {}
    for samples in ("1e7", "1e14"):
        argv = [sys.executable, "-m", "mcpi", "run", "call", "-n", samples, "--json",
                "--no-progress", "--timeout", "6", "--chunk-size", "4e7"]  # fmt: skip
        status, peaks[samples], err = run_for_peak_rss(argv, cluster_env)
        assert status in (0, ExitStatus.TIMEOUT), err
    assert peaks["1e14"] <= 1.5 * peaks["1e7"], peaks
