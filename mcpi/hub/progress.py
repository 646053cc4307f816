"""Observers of a running job: the progress bar, a notebook's, the trace, or nobody.

The hub tells its observer when a stage starts and finishes; the executor tells it of
each chunk it counts, through :meth:`Progress.counted`, the one callable it is given.
"""

from __future__ import annotations

import html
import sys
import threading
import time
from typing import Any, Protocol

from mcpi.core.chunk import ChunkResult


class Progress(Protocol):
    """What the hub and its executor tell an observer while a job (stage) runs."""

    def start(self, total: int) -> None: ...
    def counted(self, result: ChunkResult) -> None: ...
    def finish(self) -> None: ...


class Tee:
    """Tells several observers the same thing."""

    def __init__(self, *observers: Progress) -> None:
        self.observers = observers

    def start(self, total: int) -> None:
        for observer in self.observers:
            observer.start(total)

    def counted(self, result: ChunkResult) -> None:
        for observer in self.observers:
            observer.counted(result)

    def finish(self) -> None:
        for observer in self.observers:
            observer.finish()


class NoProgress:
    """For pipes, ``--json`` and tests: shows nothing."""

    def start(self, total: int) -> None:
        pass

    def counted(self, result: ChunkResult) -> None:
        pass

    def finish(self) -> None:
        pass


def in_notebook() -> bool:
    """This process is a Jupyter kernel (IPython with a kernel), where a terminal bar
    printed to a cell's output would pile up a line per redraw."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


class Throttled:
    """An observer that counts a job's samples against its total and shows them (its
    :meth:`show`) at most ``fps`` times a second, and at once when a stage starts or
    ends: what the terminal bar and the notebook's line share.

    ``clock_per_stage``: whether each stage's rate and time left are timed from that
    stage's start (a terminal bar, redrawn per stage) or from the job's (a notebook's
    line, which goes on across a precision target's stages).
    """

    clock_per_stage = True

    def __init__(self, fps: float) -> None:
        self.interval = 1.0 / fps
        self.total = self.done = 0
        self.began: float | None = None
        self.drawn_at = 0.0
        #: Shown before the counts (a sweep's jobs ended).
        self.label = ""

    def start(self, total: int) -> None:
        self.total, self.done = total, 0
        if self.began is None or self.clock_per_stage:
            self.began = time.monotonic()
        self.draw(force=True)

    def counted(self, result: ChunkResult) -> None:
        self.add(result.chunk.darts)

    def add(self, samples: int) -> None:
        self.done += samples
        self.draw(force=self.done >= self.total)

    def finish(self) -> None:
        self.draw(force=True)

    def draw(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self.drawn_at < self.interval:
            return
        self.drawn_at = now
        self.show(self.done, self.total, now - (self.began or now))

    def show(self, done: int, total: int, elapsed: float) -> None:
        """Show ``done`` of ``total`` samples, ``elapsed`` seconds in."""
        raise NotImplementedError


class NotebookProgress(Throttled):
    """A job's progress in a Jupyter cell: one line of HTML (a progress bar, the samples
    done, the rate and the time left), updated in place through an IPython display
    handle; the last update says how the job ended. ``label`` goes before the bar (a
    sweep's jobs done)."""

    clock_per_stage = False

    def __init__(self, unit: str = "samples", fps: float = 4.0) -> None:
        super().__init__(fps)
        from IPython.display import HTML, display

        self._html: Any = HTML
        self._display: Any = display
        self.unit = unit
        self.handle: Any = None

    def show(self, done: int, total: int, elapsed: float) -> None:
        shown = self._html(progress_html(done, total, elapsed, self.unit, self.label))
        if self.handle is None:
            self.handle = self._display(shown, display_id=True)
        else:
            self.handle.update(shown)


class SweepProgress:
    """A sweep's jobs on one line: each job's observer (:meth:`job`) adds its samples to
    the sweep's, and the line's label counts the jobs ended. The line's total is each
    job's planned samples: as asked (a precision target's bound) until its stages say
    more (a size rounded up), and what it counted once it ended. The jobs run on
    threads of their own: what they tell the line is told under a lock."""

    def __init__(self, line: Throttled, planned: list[int]) -> None:
        self.line = line
        self.planned = list(planned)
        self.jobs: dict[int, _SweepJob] = {}
        self.ended = 0
        self.lock = threading.Lock()
        line.label = self._label()
        line.start(sum(self.planned))

    def job(self, k: int) -> Progress:
        """The observer of the sweep's job ``k``."""
        self.jobs[k] = _SweepJob(self, k)
        return self.jobs[k]

    def job_ended(self, k: int) -> None:
        """Job ``k`` ended (done or failed): what it counted is all it will."""
        with self.lock:
            self.ended += 1
            self.planned[k] = self.jobs[k].done if k in self.jobs else 0
            self.line.total = sum(self.planned)
            self.line.label = self._label()
            self.line.draw(force=True)

    def finish(self) -> None:
        with self.lock:
            self.line.finish()

    def _label(self) -> str:
        return f"{self.ended}/{len(self.planned)} jobs"


class _SweepJob:
    """Job ``k`` of a sweep, as its hub tells it: its chunks go to the sweep's line."""

    def __init__(self, sweep: SweepProgress, k: int) -> None:
        self.sweep, self.k = sweep, k
        self.done = 0

    def start(self, total: int) -> None:
        sweep = self.sweep
        with sweep.lock:
            if self.done + total > sweep.planned[self.k]:
                sweep.planned[self.k] = self.done + total
                sweep.line.total = sum(sweep.planned)

    def counted(self, result: ChunkResult) -> None:
        self.done += result.chunk.darts
        with self.sweep.lock:
            self.sweep.line.add(result.chunk.darts)

    def finish(self) -> None:
        pass


def progress_html(
    done: int, total: int, elapsed: float, unit: str = "samples", label: str = ""
) -> str:
    """One line: ``<progress> 52%  5.2e+08/1e+09 samples  2.1e+08/s  ETA 2s`` (or, done,
    the samples and seconds it took), after ``label`` if any.

    >>> "50%  5/10 samples  5/s  ETA 1s</div>" in progress_html(5, 10, 1.0)
    True
    >>> "done: 10 samples in 2.00 s (5/s)" in progress_html(10, 10, 2.0)
    True
    """
    rate = done / elapsed if elapsed > 0 else 0.0
    if total and done >= total:
        text = f"done: {done:.3g} {unit} in {elapsed:.2f} s ({rate:.3g}/s)"
    else:
        eta = f"{(total - done) / rate:.0f}s" if rate > 0 else "?"
        fraction = done / total if total else 0.0
        text = f"{fraction:.0%}  {done:.3g}/{total:.3g} {unit}  {rate:.3g}/s  ETA {eta}"
    bar = f'<progress value="{done}" max="{max(total, 1)}"></progress>'
    if label:
        text = f"{label}  {text}"
    return f'<div class="mcpi-progress">{bar} {html.escape(text)}</div>'
