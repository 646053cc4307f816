"""A running job's chunks and notes, beside its record, for whoever watches it.

The job's record says what was asked and what each finished stage counted; its journal
holds the chunks counted. Neither says what is out meanwhile: chunks queued or running,
backup copies sent, nor the remarks the hub has made so far (a size rounded up, a
resumed job, hosts whose runtimes differ). The hub writes those here,
``<cache>/jobs/<id>.live``: at each stage's start and end, and as its executor tells it
what is out, at most once a second -- a small file replaced whole, so that a reader
(the dashboard) never sees half of one, and so that a hub writes nothing more for a
longer job. A job's first second writes nothing: a small job (a sweep's hundred) is
over before anyone could look, and pays nothing; its notes are in its record. The last
state of a longer job stays after it ends, with the report's notes, and goes with its
record when the book is pruned.

The file describes the hub's view, not the truth: a killed hub's last state stays
until the job is resumed, which is why it says when it was written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mcpi.core.tally import Busy
from mcpi.hub.records import write_json_atomically

#: Seconds between two writes while a stage runs (its start and end are written at once).
INTERVAL = 1.0


class LiveState:
    """What is out of job ``path``'s stage now; written to ``path`` (None: nowhere)."""

    def __init__(self, path: Path | None, interval: float = INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self.began = time.monotonic()
        self.written_at: float | None = None
        #: Backups of the stages ended: an executor counts a stage's own.
        self.backups_before = 0
        self.state: dict[str, Any] = {
            "stage": 0,
            "chunks": 0,
            "counted": 0,
            "out": 0,
            "running": 0,
            "backups": 0,
            "notes": [],
            "ended": False,
        }

    def stage(self, index: int, chunks: int, notes: list[str]) -> None:
        """Stage ``index``, of ``chunks`` chunks, starts (a resumed stage's chunks counted
        before are counted again, from the journal)."""
        self.state.update(stage=index, chunks=chunks, counted=0, out=0, running=0, notes=notes)
        self.write()

    def counted(self) -> None:
        """One more chunk of the stage is counted: one fewer out, till the executor's
        next word (a chunk taken from the journal was not out)."""
        state = self.state
        state["counted"] += 1
        state["out"] = max(0, state["out"] - 1)
        state["running"] = min(state["running"], state["out"])
        self.write(force=False)

    def busy(self, busy: Busy) -> None:
        """The executor says what is out."""
        backups = self.backups_before + busy.backups
        self.state.update(out=busy.out, running=busy.running, backups=backups)
        self.write(force=False)

    def stage_ended(self) -> None:
        self.state.update(out=0, running=0)
        self.backups_before = self.state["backups"]
        self.write()

    def ended(self, notes: list[str]) -> None:
        """The job ended: the report's notes, and nothing out any more (written only
        over a state written before: a job of less than a second leaves no file)."""
        self.state.update(out=0, running=0, notes=notes, ended=True)
        if self.written_at is not None:
            self.write()

    def write(self, force: bool = True) -> None:
        """Replace the file with the state now (best effort: a full disk must not fail
        the job), unless it was written less than ``interval`` ago and not ``force``, or
        the job began less than ``interval`` ago."""
        now = time.monotonic()
        if self.path is None or now - self.began < self.interval:
            return
        if not force and self.written_at is not None and now - self.written_at < self.interval:
            return
        self.written_at = now
        write_json_atomically(self.path, self.state | {"written": time.time()})


def read_live(path: Path) -> dict[str, Any] | None:
    """The state last written to ``path``, if there is one to read."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
