"""Observers of a running job: the progress bar, a notebook's, the trace, or nobody.

The hub tells its observer when a stage starts and finishes; the executor tells it of
each chunk it counts, through :meth:`Progress.counted`, the one callable it is given.
"""

from __future__ import annotations

import html
import sys
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


class NotebookProgress:
    """A job's progress in a Jupyter cell: one line of HTML (a progress bar, the samples
    done, the rate and the time left), updated in place through an IPython display
    handle at most ``fps`` times a second; the last update says how the job ended."""

    def __init__(self, unit: str = "samples", fps: float = 4.0) -> None:
        from IPython.display import HTML, display

        self._html: Any = HTML
        self._display: Any = display
        self.unit = unit
        self.interval = 1.0 / fps
        self.handle: Any = None
        self.total = self.done = 0
        self.began = self.drawn_at = 0.0

    def start(self, total: int) -> None:
        # A precision target's next stage: the same line goes on, with the new total.
        self.total, self.done = total, 0
        if self.handle is None:
            self.began = time.monotonic()
        self._draw(force=True)

    def counted(self, result: ChunkResult) -> None:
        self.done += result.chunk.darts
        self._draw(force=self.done >= self.total)

    def finish(self) -> None:
        self._draw(force=True)

    def _draw(self, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self.drawn_at < self.interval:
            return
        self.drawn_at = now
        shown = self._html(progress_html(self.done, self.total, now - self.began, self.unit))
        if self.handle is None:
            self.handle = self._display(shown, display_id=True)
        else:
            self.handle.update(shown)


def progress_html(done: int, total: int, elapsed: float, unit: str = "samples") -> str:
    """One line: ``<progress> 52%  5.2e+08/1e+09 samples  2.1e+08/s  ETA 2s`` (or, done,
    the samples and seconds it took).

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
    return f'<div class="mcpi-progress">{bar} {html.escape(text)}</div>'
