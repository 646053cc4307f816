"""The dashboard in a real browser (Debian's chromium, headless, driven by Selenium):
what a person sees while a job runs. Screenshots of each state go to
``build/screenshots/`` for a person to look at."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.conftest import REPOSITORY, Dashboard, hub_env, running_dashboard

pytestmark = pytest.mark.browser

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = REPOSITORY / "build" / "screenshots"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (Path(CHROMIUM).exists() and shutil.which("chromedriver")):
        pytest.skip("no chromium and chromium-driver (scripts/test installs them)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # Headless, and quiet: without the background-networking flags Chromium's own
    # outgoing connections fail by the hundred on a machine with no way out.
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'chromium'}",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def shot(driver: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"dashboard-{name}.png"))


def until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"the page did not show {what} within {timeout:.0f}s")


def texts(driver: Any, selector: str) -> list[str]:
    """The text of what ``selector`` finds, read at once (the page redraws every second)."""
    script = "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText);"
    return list(driver.execute_script(script, selector))


def test_a_running_job_is_seen_converging_and_ends_at_the_cli_s_answer(
    dashboard: Dashboard, browser: Any
) -> None:
    browser.get(f"{dashboard.base}/?token={dashboard.token}")
    until(lambda: texts(browser, "#connection") == ["live"], 15, "a live stream")
    assert browser.current_url == f"{dashboard.base}/"  # the token left the address bar
    until(lambda: "No job is running." in browser.page_source, 5, "an idle page")
    shot(browser, "idle")

    job = subprocess.Popen(
        [sys.executable, "-m", "mcpi", "estimate", "-n", "8e9", "--seed", "11", "--local",
         "--processes", "1", "--chunk-size", "1e8", "--json"],
        env=hub_env(dashboard.cache), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        estimates: list[str] = []
        intervals: list[str] = []

        def advanced() -> bool:
            value = texts(browser, ".job .estimate")
            if value and value[0] != "–" and (not estimates or estimates[-1] != value[0]):
                estimates.append(value[0])
                intervals.append(texts(browser, ".job .interval")[0])
                if len(estimates) == 2:
                    shot(browser, "running")
            return len(estimates) >= 3

        until(advanced, 60, "the estimate advancing")
        assert texts(browser, ".job h3")[0].startswith("π job ")
        assert texts(browser, "tr.host td")[:1]  # the host computing it
        assert texts(browser, ".job .chart .u-legend")  # the uPlot chart
        # The stage's chunks as the hub sees them, and the host's rate over time.
        chunks = until(lambda: [t for t in texts(browser, ".job .chunks") if "running" in t],
                       10, "the job's chunks")  # fmt: skip
        counts = re.search(r"(\d+) of 80 counted · (\d+) running · (\d+) queued · "
                           r"(\d+) not sent yet", chunks[0])  # fmt: skip
        assert counts and sum(map(int, counts.groups())) == 80, chunks
        # One process: one chunk on it, one more in the pool's queue at most.
        assert int(counts[2]) <= 1 and int(counts[3]) <= 1, chunks
        rates = until(lambda: texts(browser, ".job .rates .u-legend"), 10, "the rates chart")
        assert "local" in rates[0] or "@" in rates[0] or rates[0].strip(), rates
        assert "ran locally (--local)" in texts(browser, ".job ul.notes")[0]
    finally:
        out, _ = job.communicate(timeout=120)
    assert job.returncode == 0
    answer = json.loads(out)

    # The band narrows as the samples come.
    widths = [float(b) - float(a) for a, b in (i.strip("[]").split(", ") for i in intervals)]
    assert widths[-1] < widths[0]
    # The job's row, done, with the CLI's own answer.
    row = until(lambda: texts(browser, "tr.row td.status-done") and texts(browser, "tr.row"), 15,
                "the finished job")  # fmt: skip
    assert f"{answer['pi']:.7f}"[:9] in row[0]
    assert "No job is running." in browser.page_source
    # Its notes, folded under the result; unfolded, they stay open as the table redraws.
    browser.find_element("css selector", "tr.row details.notes summary").click()
    time.sleep(1.5)
    assert "ran locally (--local)" in texts(browser, "tr.row details.notes")[0]
    assert browser.execute_script("return document.querySelector('tr.row details.notes').open")
    shot(browser, "done")
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], severe


def test_a_wrong_or_missing_token_is_refused_in_the_browser(
    dashboard: Dashboard, browser: Any
) -> None:
    browser.get(f"{dashboard.base}/")
    assert "open the URL with the token" in browser.page_source
    browser.get(f"{dashboard.base}/?token=not-the-token")
    assert "open the URL with the token" in browser.page_source
    shot(browser, "refused")


@pytest.mark.integration
def test_a_cluster_job_and_a_host_going_away_as_a_person_sees_them(
    tmp_path: Path, browser: Any
) -> None:
    from mcpi.testing.servers import Sandbox, Worker

    with Sandbox(tmp_path / "cluster", workers=0) as box:
        hosts = {}
        for name in ("lab-1", "lab-2"):
            hosts[name] = Worker(
                "mcpi", box.rabbitmq.url, box.redis.url, tmp_path / f"{name}.log",
                concurrency=1, extra_env=box.rabbitmq.client_env(), host=name,
            ).start()  # fmt: skip
        box.workers += hosts.values()
        with running_dashboard(tmp_path / "cache", box.env()) as board:
            browser.get(f"{board.base}/?token={board.token}")
            up = "tr.cluster-host td.state"
            until(lambda: texts(browser, up) == ["up", "up"], 20, "both hosts up")
            assert texts(browser, "tr.cluster-host td:first-child") == ["lab-1", "lab-2"]
            assert "TLS" in texts(browser, "#cluster-summary")[0]

            job = subprocess.Popen(
                [sys.executable, "-m", "mcpi", "estimate", "-n", "2e10", "--seed", "7",
                 "--chunk-size", "2e8", "--json"],
                env=hub_env(board.cache) | box.env(), stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                computing = "tr.host td:first-child"
                until(lambda: sorted(texts(browser, computing)) == ["lab-1", "lab-2"],
                      60, "both hosts computing the job")  # fmt: skip
                first = until(lambda: [t for t in texts(browser, ".job .estimate") if t != "–"],
                              30, "a running estimate")  # fmt: skip
                # Each host's rate over time, and the stage's chunks, out and running.
                legend = "#running-jobs .rates .u-legend"
                until(lambda: set(re.findall(r"lab-\d", " ".join(texts(browser, legend))))
                      == {"lab-1", "lab-2"}, 20, "both hosts' rates")  # fmt: skip
                chunks = texts(browser, ".job .chunks")[0]
                counts = re.search(r"(\d+) of 100 counted · (\d+) running · (\d+) queued · "
                                   r"(\d+) not sent yet", chunks)  # fmt: skip
                assert counts and sum(map(int, counts.groups())) == 100, chunks
                assert int(counts[2]) <= 2, chunks  # two slots
                shot(browser, "cluster-running")
                hosts["lab-2"].kill()  # the whole worker, as a machine switched off
                until(lambda: texts(browser, up) == ["up", "gone"], 20, "lab-2 gone")
                until(lambda: texts(browser, ".job .estimate") not in ([], first), 30,
                      "the estimate advancing without lab-2")  # fmt: skip
                shot(browser, "cluster-host-gone")
            finally:
                out, _ = job.communicate(timeout=300)
            assert job.returncode == 0
            answer = json.loads(out)
            done = "tr.row td.status-done"
            row = until(lambda: texts(browser, done) and texts(browser, "tr.row"),
                        15, "the finished job")  # fmt: skip
            assert f"{answer['pi']:.7f}"[:9] in row[0]
            assert answer["duplicates"] == 0 and answer["darts"] == 2 * 10**10
