"""What a job's and a sweep's observers are told, and what their lines show."""

from __future__ import annotations

import io

from mcpi.cli.progress import ProgressBar
from mcpi.hub.progress import Throttled, progress_html
from mcpi.hub.request import JobRequest
from mcpi.hub.sweep import run_sweep
from mcpi.hub.warm import Warm
from mcpi.settings import Settings
from mcpi.testing.inprocess import InProcess


class Shown(Throttled):
    """Keeps what it would show: (label, done, total)."""

    def __init__(self, fps: float = 1e9) -> None:
        super().__init__(fps)
        self.lines: list[tuple[str, int, int]] = []

    def show(self, done: int, total: int, elapsed: float) -> None:
        self.lines.append((self.label, done, total))


def test_a_line_is_drawn_at_most_fps_times_a_second_and_at_each_stage_edge() -> None:
    line = Shown(fps=1e-6)  # never redrawn by time: only the forced draws
    line.start(30)
    for _ in range(3):
        line.add(10)  # the last reaches the total: drawn
    line.finish()
    assert line.lines == [("", 0, 30), ("", 30, 30), ("", 30, 30)]


def test_a_sweep_shows_one_line_of_its_jobs_and_samples(settings: Settings) -> None:
    requests = [
        JobRequest("ball", {"d": d}, samples=40_960, seed=7, sampler="mc", chunk_size=4096)
        for d in (2, 3, 4)
    ]
    # A size rounded up to whole blocks or replicates: the line's total follows.
    requests.append(JobRequest("ball", {"d": 2}, samples=40_000, seed=7, chunk_size=4096))
    line = Shown()
    outcomes = run_sweep(requests, settings, Warm(InProcess({"a": 2})), line)
    assert all(o.report is not None for o in outcomes)
    counted = sum(o.report.samples for o in outcomes if o.report is not None)
    assert line.lines[0] == ("0/4 jobs", 0, 3 * 40_960 + 40_000)
    assert line.lines[-1] == ("4/4 jobs", counted, counted)
    assert all(done <= total for _, done, total in line.lines)
    done = [d for _, d, _ in line.lines]
    chunks = sum(o.report.chunks for o in outcomes if o.report is not None)
    assert done == sorted(done) and len(set(done)) == chunks + 1  # each chunk, once
    labels = [label for label, _, _ in line.lines]
    assert labels == sorted(labels, key=lambda s: int(s.split("/")[0]))


def test_the_terminal_bar_and_the_notebook_line_say_the_label_and_the_end() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, width=10, fps=1e9, unit="samples")
    bar.label = "1/2 jobs"
    bar.start(100)
    bar.add(50)
    last = stream.getvalue().split("\r\x1b[2K")[-1]
    assert last.startswith("1/2 jobs  [#####-----]  50%  50/100 samples  ")
    bar.finish()
    assert stream.getvalue().endswith("\r\x1b[2K")
    assert "2/2 jobs  done: 100 samples in 2.00 s" in progress_html(100, 100, 2.0, label="2/2 jobs")
