"""The live progress bar: darts (or samples) done, rate and ETA on one refreshed line."""

from __future__ import annotations

from typing import TextIO

from mcpi.hub.progress import Throttled


class ProgressBar(Throttled):
    """A one-line bar on a terminal, redrawn at most ``fps`` times a second, and cleared
    when the stage ends (the report follows)."""

    def __init__(
        self, stream: TextIO, width: int = 30, fps: float = 8.0, unit: str = "darts"
    ) -> None:
        super().__init__(fps)
        self.stream = stream
        self.unit = unit
        self.width = width

    def show(self, done: int, total: int, elapsed: float) -> None:
        line = render_line(done, total, elapsed, self.width, self.unit)
        self.stream.write("\r\x1b[2K" + (f"{self.label}  {line}" if self.label else line))
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\r\x1b[2K")
        self.stream.flush()


def render_line(done: int, total: int, elapsed: float, width: int = 30, unit: str = "darts") -> str:
    """``[########--------]  52%  5.2e+08/1e+09 darts  2.1e+08/s  ETA 2s``."""
    fraction = done / total if total else 1.0
    filled = int(fraction * width)
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = format_seconds((total - done) / rate) if rate > 0 else "?"
    return (
        f"[{'#' * filled}{'-' * (width - filled)}] {fraction:4.0%}  "
        f"{done:.3g}/{total:.3g} {unit}  {rate:.3g}/s  ETA {eta}"
    )


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
