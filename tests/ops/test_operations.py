"""Operating a cluster: status, version skew, queue depth, precision targets, job records,
resume after a killed hub, and plots — through real RabbitMQ, Redis and workers."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mcpi.cli import main
from mcpi.core.exact import EXACT_PASS
from mcpi.core.kernel import KERNEL, count_hits
from mcpi.errors import ExitStatus
from mcpi.testing.servers import Redis, free_port, wait_for
from tests.helpers import Background, estimate, kill_once_journaled

pytestmark = pytest.mark.integration

# Fault injection from outside the product: a worker that claims an older mcpi.
OLD_VERSION = """
import mcpi
mcpi.__version__ = "0.0.1"
"""


def hub(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(args), env, out, err)
    return status, out.getvalue(), err.getvalue()


def status_json(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = hub(env, "status", "--json", *args)
    assert out, err
    return code, json.loads(out)


def test_status_shows_services_queue_and_workers_by_host(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    start_worker("w1", concurrency=2)
    start_worker("w2", concurrency=1)
    code, status = status_json(cluster_env)
    assert code == ExitStatus.OK
    assert status["broker"]["reachable"] and status["broker"]["product"] == "RabbitMQ"
    assert status["broker"]["version"].count(".") == 2
    assert status["backend"]["reachable"] and status["backend"]["version"].startswith("7.")
    assert status["queue"]["name"] == "mcpi" and status["queue"]["consumers"] == 2
    workers = {w["node"].split("@")[0]: w for w in status["workers"]}
    assert {name: w["slots"] for name, w in workers.items()} == {"w1": 2, "w2": 1}
    for w in workers.values():
        assert w["versions"]["mcpi"] == status["hub_version"]
        assert set(w["versions"]) == {"mcpi", "celery", "numpy", "python"}
        assert len(w["load"]) == 3
        assert w["kernel"] == KERNEL and w["kernel_note"] is None  # this machine's path
        assert w["exact_sums"] == EXACT_PASS and w["exact_sums_note"] is None
    assert status["skew"] == []

    code, text, _ = hub(cluster_env, "status")
    assert code == ExitStatus.OK
    assert "RabbitMQ" in text and "2 worker(s) on 1 host(s), 3 slot(s)" in text
    assert EXACT_PASS in text


def test_status_counts_waiting_and_unacknowledged_chunks_mid_job(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    worker = start_worker("w1", concurrency=1)
    # 16 chunks of about 0.15 s each with the compiled kernel, one at a time.
    job = Background(cluster_env, "-n", "4e9", "--chunk-size", "2.5e8", "--seed", "3")
    wait_for(lambda: " succeeded in " in worker.log(), 60, "a first chunk to finish")
    code, status = status_json(cluster_env)
    assert code == ExitStatus.OK
    (only,) = status["workers"]
    assert only["running"] == 1
    # Acks are late: the running chunk is unacknowledged; the rest of the wave waits.
    assert status["queue"]["unacknowledged"] >= 1
    assert status["queue"]["ready"] >= 1
    code, report, err = job.join(180)
    assert code == 0 and report is not None, err
    assert report["hits"] == count_hits(3, 0, 4 * 10**9)


def test_version_skew_is_a_warning_and_with_strict_an_exit_status(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, tmp_path: Path
) -> None:
    (tmp_path / "inject").mkdir()
    (tmp_path / "inject" / "sitecustomize.py").write_text(OLD_VERSION)
    start_worker("current")
    start_worker("old", PYTHONPATH=str(tmp_path / "inject"))
    code, status = status_json(cluster_env)
    assert code == ExitStatus.OK
    assert len(status["skew"]) == 1 and "mcpi 0.0.1" in status["skew"][0]
    assert "old@" in status["skew"][0] and "current@" not in status["skew"][0]
    code, text, _ = hub(cluster_env, "status", "--strict")
    assert code == ExitStatus.VERSION_SKEW
    assert "warning: version skew: 1 worker(s) run mcpi 0.0.1" in text


def test_status_reports_an_unreachable_broker_and_no_workers(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str],
) -> None:
    code, status = status_json(cluster_env)  # nobody started a worker
    assert code == ExitStatus.NO_WORKERS and status["workers"] == []
    dead = {**cluster_env, "MCPI_BROKER_URL": f"amqps://mcpi:x@127.0.0.1:{free_port()}//"}
    code, text, err = hub({**dead, "MCPI_CONNECT_TIMEOUT": "1"}, "status")
    assert code == ExitStatus.UNREACHABLE, err
    assert "UNREACHABLE (cannot reach the broker" in text
    code, _, err = hub({"XDG_CONFIG_HOME": cluster_env["XDG_CONFIG_HOME"]}, "status")
    assert code == ExitStatus.USAGE and "no cluster configured" in err


def test_precision_target_gives_the_same_stages_and_count_on_cluster_and_locally(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    start_worker("w1")
    code, cluster, err = estimate(cluster_env, "--precision", "3e-4", "--seed", "99")
    assert code == 0 and cluster is not None, err
    code, local, err = estimate(cluster_env, "--precision", "3e-4", "--seed", "99", "--local")
    assert code == 0 and local is not None, err

    # The same looks, whatever the chunking (which differs: other slots, other rates).
    def looks(report: dict[str, Any]) -> list[tuple[int, int, int]]:
        return [(s["first"], s["darts"], s["hits"]) for s in report["stages"]]

    assert looks(cluster) == looks(local)
    assert cluster["hits"] == local["hits"] == count_hits(99, 0, cluster["darts"])
    assert cluster["half_width"] <= 3e-4 and cluster["precision"]["reached"]
    assert len(cluster["stages"]) >= 2  # a pilot, then the look it called for


def test_a_killed_hub_resumes_on_the_cluster_recounting_nothing_counted(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker
) -> None:
    worker = start_worker("w1", concurrency=2)
    seed, darts = 4242, 12 * 10**8
    command = [sys.executable, "-m", "mcpi", "estimate", "-n", str(darts), "--seed", str(seed)]
    killed = subprocess.Popen(
        [*command, "--chunk-size", "1e8"],
        env=cluster_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def chunks_counted() -> int:
        return sum(
            "mcpi.count_chunk[" in line and " succeeded in " in line
            for line in worker.log().splitlines()
        )

    wait_for(lambda: chunks_counted() >= 3, 60, "chunks to finish")
    killed.send_signal(signal.SIGKILL)
    killed.wait(10)

    code, out, err = hub(cluster_env, "jobs", "--json")
    (record,) = json.loads(out)
    assert record["status"] == "running" and record["seed"] == seed
    code, report, err = estimate(cluster_env, "--resume", record["id"])
    assert code == 0 and report is not None, err
    assert report["hits"] == count_hits(seed, 0, darts) and report["job_id"] == record["id"]
    assert report["resumed"]
    (note,) = [n for n in report["notes"] if n.startswith("resumed: ")]
    reused = int(note.split()[1].replace(",", ""))
    assert reused >= 3
    # Rates and host rows are the resumed run's own: the reused chunks are not in them.
    assert report["thrown_darts"] == darts - reused * 10**8
    assert sum(h["darts"] for h in report["hosts"]) == report["thrown_darts"]
    # Nothing counted before is counted again: the worker runs the killed hub's 12
    # queued chunks and the resumed hub's re-sent (uncollected) ones, no more.
    wait_for(lambda: chunks_counted() >= 12 + 12 - reused, 60, "the queue to drain")
    time.sleep(1)
    assert chunks_counted() == 12 + 12 - reused

    code, out, _ = hub(cluster_env, "jobs")
    assert record["id"] in out and " done " in out
    code, _, err = hub(cluster_env, "estimate", "--resume", record["id"])
    assert code == ExitStatus.USAGE and "finished already" in err


def test_a_resume_after_the_result_backend_lost_everything_recounts_no_journaled_chunk(  # type: ignore[no-untyped-def]
    cluster_env: dict[str, str], start_worker, redis_server: Redis
) -> None:
    """The broker host rebuilt: Redis has nothing of the job. The hub's own journal
    has what it counted, and only the rest is computed again."""
    worker = start_worker("w1", concurrency=2)
    seed, darts = 4343, 12 * 10**8
    args = ["estimate", "-n", str(darts), "--seed", str(seed), "--chunk-size", "1e8"]
    journal = kill_once_journaled(args, cluster_env, Path(cluster_env["XDG_CACHE_HOME"]))
    job = journal.stem
    journaled = {
        json.loads(line)["result"]["chunk"]["index"] for line in journal.read_text().splitlines()
    }
    assert len(journaled) >= 3
    # The killed hub's queued chunks run out; then Redis loses every key.
    wait_for(lambda: worker.log().count(" succeeded in ") >= 12, 120, "the queue to drain")
    redis_server.flush()
    log_before = len(worker.log())

    code, report, err = estimate(cluster_env, "--resume", job)
    assert code == 0 and report is not None, err
    assert report["hits"] == count_hits(seed, 0, darts)
    (note,) = [n for n in report["notes"] if n.startswith("resumed: ")]
    assert f"{len(journaled)} from the hub's journal, 0 from the result backend" in note, note
    assert report["thrown_darts"] == darts - len(journaled) * 10**8
    recomputed = worker.log()[log_before:]
    assert not [i for i in journaled if f"[mcpi-{job}-{i}] received" in recomputed]
    assert all(f"[mcpi-{job}-{i}] received" in recomputed for i in set(range(12)) - journaled)


def test_a_killed_local_hub_resumes_from_its_journal(tmp_path: Path) -> None:
    env = {
        "XDG_CONFIG_HOME": str(tmp_path / "no-config"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PATH": "/usr/bin:/bin",
    }
    seed, darts = 17, 16 * 10**8
    journal = kill_once_journaled(
        [
            "estimate",
            "-n",
            str(darts),
            "--seed",
            str(seed),
            "--chunk-size",
            "1e8",
            "--processes",
            "2",
        ],
        env,
        tmp_path / "cache",
    )
    code, report, err = estimate(env, "--resume", journal.stem, "--processes", "2")
    assert code == 0 and report is not None, err
    assert report["hits"] == count_hits(seed, 0, darts) and report["mode"] == "local"
    (note,) = [n for n in report["notes"] if "taken from the journal" in n]
    reused = int(note.split()[1].replace(",", ""))
    assert reused >= 3 and report["thrown_darts"] == darts - reused * 10**8
    assert sum(h["darts"] for h in report["hosts"]) == report["thrown_darts"]
    assert not journal.exists()  # a finished job's journal is removed


def test_plot_draws_a_png_and_bad_paths_are_refused_before_any_work(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_CACHE_HOME": str(tmp_path / "k")}
    target = tmp_path / "run.png"
    code, out, err = hub(env, "estimate", "--precision", "1e-3", "--plot", str(target))
    assert code == 0, err
    assert target.read_bytes().startswith(b"\x89PNG") and target.stat().st_size > 10_000
    assert f"plot: {target}" in out
    for bad, message in (
        (str(tmp_path / "run.jpg"), "does not end in .png"),
        (str(tmp_path / "missing/run.png"), "is not a directory"),
    ):
        code, _, err = hub(env, "estimate", "--plot", bad)
        assert code == ExitStatus.USAGE and message in err and err.count("\n") == 1
