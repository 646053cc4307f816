"""The command line: bad input gets one line and a non-zero exit; good input a report."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mcpi.cli import main
from mcpi.core.kernel import count_hits
from mcpi.errors import ExitStatus
from mcpi.settings import PARSERS as SETTING_PARSERS
from mcpi.testing.servers import free_port


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(args, env, out, err)
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def test_local_estimate_reports_the_kernel_count(env: dict[str, str]) -> None:
    status, out, err = run(["estimate", "-n", "3e6", "--seed", "12", "--json"], env)
    assert status == ExitStatus.OK, err
    report = json.loads(out)
    assert report["hits"] == count_hits(12, 0, 3_000_000)
    assert report["mode"] == "local" and report["darts"] == 3_000_000
    assert report["ci95"][0] < report["pi"] < report["ci95"][1]
    assert sum(h["darts"] for h in report["hosts"]) == 3_000_000
    assert "no cluster configured" in report["notes"][0]


def test_text_report_and_progress_bar(env: dict[str, str]) -> None:
    out, err = io.StringIO(), FakeTTY()
    assert main(["estimate", "-n", "2e6", "--seed", "3", "--chunk-size", "1e5"], env, out, err) == 0
    text = out.getvalue()
    assert text.startswith("π ≈ 3.1")
    assert "2,000,000 darts" in text and "20 chunk(s)" in text and "seed 3" in text
    assert "ran locally" in text
    assert "ETA" in err.getvalue()  # the bar was drawn on the (fake) terminal


def test_same_seed_same_count_whatever_the_chunking(env: dict[str, str]) -> None:
    counts = {
        json.loads(run(["estimate", "-n", "1e6", "--seed", "8", "--json", *extra], env)[1])["hits"]
        for extra in ([], ["--chunk-size", "997"], ["--chunk-size", "33333", "--processes", "1"])
    }
    assert counts == {count_hits(8, 0, 10**6)}


@pytest.mark.parametrize(
    "args",
    [
        ["estimate", "-n", "0"],
        ["estimate", "-n", "-5"],
        ["estimate", "-n", "abc"],
        ["estimate", "-n", "1e30"],
        ["estimate", "-n", "nan"],
        ["estimate", "-n", "inf"],
        ["estimate", "-n", "2.5"],
        ["estimate", "--seed", "-1"],
        ["estimate", "--seed", str(2**128)],
        ["estimate", "--chunk-size", "0"],
        ["estimate", "--timeout", "never"],
        ["estimate", "--broker", "localhost"],
        ["estimate", "--bogus"],
        ["nonsense"],
        [],
        ["estimate", "-n", "1e16", "--chunk-size", "1"],
    ],
)
def test_bad_input_gets_one_line_and_usage_status(args: list[str], env: dict[str, str]) -> None:
    status, out, err = run(args, env)
    assert status == ExitStatus.USAGE
    assert out == ""
    assert err.strip().splitlines()[-1].startswith("mcpi-hub: error: ")
    assert "Traceback" not in err


@settings(
    max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    option=st.sampled_from(
        [
            "-n",
            "--seed",
            "--chunk-size",
            "--timeout",
            "--processes",
            "--broker",
            "--backend",
            "--config",
        ]
    ),
    command=st.sampled_from(["estimate", "tune"]),
    value=st.text(min_size=1, max_size=20).filter(lambda v: not v.startswith("-")),
)
def test_fuzzed_option_values_never_escape_as_tracebacks(
    option: str, value: str, command: str, env: dict[str, str]
) -> None:
    if command == "tune" and option in ("--seed", "--chunk-size", "--timeout"):
        option = "-n"  # tune has no such options; fuzz its job size instead
    args = [command, "-n", "1000", "--local", option, value]
    args += ["--no-progress"] if command == "estimate" else []
    status, _, err = run(args, env)
    assert "Traceback" not in err
    if status != ExitStatus.OK:
        assert status in (
            ExitStatus.USAGE,
            ExitStatus.CONFIG,
            ExitStatus.UNREACHABLE,
            ExitStatus.NO_WORKERS,
        )
        assert len(err.strip().splitlines()) == 1


@settings(
    max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    option=st.sampled_from(["--precision", "--max-darts", "--resume", "--plot"]),
    value=st.text(min_size=1, max_size=20).filter(lambda v: not v.startswith("-")),
)
@example(option="--max-darts", value="1")  # the bound comes first: exit 10, a report
def test_fuzzed_job_options_never_escape_as_tracebacks(
    option: str, value: str, env: dict[str, str], tmp_path: Path
) -> None:
    # Bounded whatever the value: a precision job stops at 1e6 darts at most.
    args = {
        "--precision": ["--max-darts", "1e6", "--precision", value],
        "--max-darts": ["--precision", "0.01", "--max-darts", value],
        "--resume": ["--resume", value],
        # Under tmp_path: a value that happens to be a good name writes nowhere else.
        "--plot": ["-n", "1000", "--plot", str(tmp_path / "plots") + "/" + value],
    }[option]
    (tmp_path / "plots").mkdir(exist_ok=True)
    status, out, err = run(["estimate", "--local", "--no-progress", *args], env)
    assert "Traceback" not in err
    if status == ExitStatus.PRECISION_NOT_REACHED:
        # A bound below the target: the report, saying so, is the answer (stdout).
        assert "NOT reached" in out and err == "", err
    elif status != ExitStatus.OK:
        assert status == ExitStatus.USAGE, err
        assert len(err.strip().splitlines()) == 1, err


@settings(
    max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None
)
@given(
    setting=st.sampled_from(sorted(SETTING_PARSERS)),
    value=st.text(min_size=1, max_size=30).filter(lambda v: "\0" not in v),
)
def test_fuzzed_settings_in_the_environment_are_named_in_one_line(
    setting: str, value: str, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A fuzzed cache directory may be a good relative path: the rate book goes there.
    monkeypatch.chdir(tmp_path)
    name = "MCPI_" + setting.upper()
    status, _, err = run(["tune", "-n", "1000", "--local"], {**env, name: value})
    assert "Traceback" not in err
    if status != ExitStatus.OK:
        assert status in (ExitStatus.CONFIG, ExitStatus.UNREACHABLE, ExitStatus.NO_WORKERS)
        assert len(err.strip().splitlines()) == 1
        if status == ExitStatus.CONFIG:
            assert "MCPI_" in err


def test_the_largest_job_runs_in_bounded_memory(tmp_path: Path) -> None:
    """1e16 darts on the local pool: stopped by its deadline, the hub's peak RSS small."""
    from mcpi.bench.suite import run_for_peak_rss

    argv = [sys.executable, "-m", "mcpi", "estimate", "-n", "1e16", "--local", "--timeout", "3"]
    status, peak_kib, err = run_for_peak_rss(argv, {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert status == ExitStatus.TIMEOUT and "deadline passed" in err
    assert peak_kib < 150 * 1024  # the hub and its lazy plan stay small (~40 MiB)


def test_malformed_config_is_a_config_error(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("broker_url = [1, 2]\n")
    status, _, err = run(["estimate", "-n", "10", "--config", str(bad)], env)
    assert status == ExitStatus.CONFIG
    assert "broker_url" in err and str(bad) in err
    status, _, err = run(["estimate", "-n", "10", "--config", "a\0b"], env)
    assert status == ExitStatus.CONFIG and "not a valid path" in err
    status, _, err = run(["estimate", "-n", "10"], {**env, "MCPI_TIMEOUT": "later"})
    assert status == ExitStatus.CONFIG and "MCPI_TIMEOUT" in err


def test_console_script_runs_and_help_exits_zero() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcpi", "estimate", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "--chunk-size" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "mcpi", "estimate", "-n", "abc"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1


def test_the_command_reuses_the_rates_it_measured_on_this_machine(tmp_path: Path) -> None:
    """The local pool's rates are measured once and kept, as a cluster's are: a small
    job's command does not pay a calibration each time."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    rates = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "mcpi", "estimate", "-n", "3e6", "--seed", "6", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report["hits"] == count_hits(6, 0, 3 * 10**6)
        rates.append(report["chunking"]["rates"])
    assert rates[0] == ["calibrated"] and rates[1] != ["calibrated"], rates
    assert (tmp_path / ".cache" / "mcpi" / "rates.json").is_file()


def test_local_job_of_several_waves_counts_every_chunk_once(env: dict[str, str]) -> None:
    # 6,000 chunks: more than one wave (5,000 chunks), folded as each completes.
    status, out, err = run(
        ["estimate", "-n", "6e4", "--chunk-size", "10", "--seed", "4", "--json"], env
    )
    assert status == ExitStatus.OK, err
    report = json.loads(out)
    assert report["chunks"] == 6000 and report["duplicates"] == 0
    assert report["hits"] == count_hits(4, 0, 60_000)
    assert sum(h["chunks"] for h in report["hosts"]) == 6000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--resume", "0123456789abcdef", "--darts", "5"], "drop --darts"),
        (["--resume", "0123456789abcdef", "--seed", "1", "--local"], "drop --seed, --local"),
        (["--precision", "1e-3", "--darts", "5"], "not both"),
        (["--max-darts", "1e9"], "--max-darts bounds --precision"),
        (["--precision", "0"], "between 0 and 4"),
        (["--precision", "nan"], "between 0 and 4"),
        (["--precision", "x"], "is not a number"),
        (["--resume", "nope"], "not a job id"),
        (["--resume", "0123456789abcdef"], "no job 0123456789abcdef"),
    ],
)
def test_precision_and_resume_options_are_checked(
    args: list[str], message: str, tmp_path: Path
) -> None:
    out, err = io.StringIO(), io.StringIO()
    env = {"XDG_CONFIG_HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    status = main(["estimate", *args], env, out, err)
    assert status == ExitStatus.USAGE
    assert message in err.getvalue() and err.getvalue().count("\n") == 1


def test_precision_not_reached_within_the_bound_is_its_own_exit_status(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    env = {"XDG_CONFIG_HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path)}
    status = main(
        ["estimate", "--precision", "1e-4", "--max-darts", "1e6", "--json"], env, out, err
    )
    assert status == ExitStatus.PRECISION_NOT_REACHED
    report = json.loads(out.getvalue())
    assert report["darts"] == 10**6 and not report["precision"]["reached"]


@pytest.mark.parametrize("debug", ["", "1", "2"])
def test_a_service_away_is_one_line_and_debug_2_shows_where(
    debug: str, env: dict[str, str]
) -> None:
    """An expected error is one line; ``MCPI_DEBUG=2`` adds its traceback and that of the
    error behind it (what the chaos soak needs to find the call a fault reached)."""
    port = free_port()  # nothing listens there
    cluster = {
        "MCPI_BROKER_URL": f"amqp://mcpi:secret@127.0.0.1:{port}//",
        "MCPI_RESULT_BACKEND": f"redis://127.0.0.1:{port}/0",
        "MCPI_SERVICE_WAIT": "0",
        "MCPI_DEBUG": debug,
    }
    status, _, err = run(["estimate", "-n", "1e6", "--no-progress"], {**env, **cluster})
    assert status == ExitStatus.UNREACHABLE, err
    *trace, last = err.strip().splitlines()
    assert last.startswith("mcpi-hub: error: ") and f"127.0.0.1:{port}" in last, last
    if debug == "2":
        text = "\n".join(trace)
        assert text.count("Traceback (most recent call last)") >= 2, text
        assert "ConnectionRefusedError" in text and "raise _unreachable(" in text, text
    else:
        assert not trace, err
