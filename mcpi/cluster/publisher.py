"""Putting a job's waves on the broker: as chords, as lone tasks, or (resuming) in part.

For each wave the hub publishes one chord: a header of ``mcpi.count_chunk`` tasks and a
``mcpi.tally_wave`` callback that tallies them, which the hub checks against its own
tally (:mod:`mcpi.cluster.chords`). A wave of one chunk goes out as that chunk's task
alone. A resumed job first takes what was counted before: the hub's journal, then the
results the backend still holds from the earlier run (a hub died after they were
counted), and sends only the rest, as plain tasks (a chord of part of a wave would
have a callback that cannot see the chunks counted before).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from celery import states

from mcpi.cluster.arrivals import Arrivals
from mcpi.cluster.chunks import chunk_result, chunk_task_id, send_chunks, wave_task_id
from mcpi.cluster.client import ClusterClient
from mcpi.cluster.tasks import TALLY_WAVE
from mcpi.core.chunk import ChunkResult
from mcpi.core.job import Job
from mcpi.core.messages import encode_job
from mcpi.core.tally import WaveTally


@dataclass
class WaveRun:
    """A published wave: its chunks' task ids, its callback's, and what has come back."""

    ids: dict[str, int]
    #: None for a wave of one chunk, published alone: its tally is its one result.
    callback_id: str | None
    tally: WaveTally
    #: The chord's header group, whose state the backend keeps (None: no chord).
    group_id: str | None = None
    collected: bool = False
    #: The backend lost the chord's state (or the wave was resumed in part): its
    #: callback will not come.
    callback_lost: bool = False
    #: Of a resumed job: the wave's results found counted before it was sent.
    counted_before: list[ChunkResult] = field(default_factory=list)

    def missing(self) -> dict[str, int]:
        """Task ids (and chunk indices) whose results the hub has not counted."""
        return {t: i for t, i in self.ids.items() if not self.tally.has(i)}

    def outstanding(self) -> list[str]:
        """Task ids whose results nobody has collected yet."""
        if self.collected:
            return []
        return [*self.missing(), *([self.callback_id] if self.callback_id else [])]


class Publisher:
    """Publishes the waves of ``job`` through ``client``, listened for by ``arrivals``.

    ``earlier`` is None for a fresh run; a resumed run's results from the hub's journal.
    """

    def __init__(
        self,
        client: ClusterClient,
        job: Job,
        arrivals: Arrivals,
        earlier: Sequence[ChunkResult] | None,
    ) -> None:
        self.client = client
        self.job = job
        self.arrivals = arrivals
        #: Chunks of a resumed job found counted already (None: not resuming), from
        #: the hub's journal and from the backend.
        self.resumed: int | None = 0 if earlier is not None else None
        self.from_journal = 0
        self._journaled = {r.chunk.index: r for r in earlier or ()}

    def wave(self, wave: range) -> WaveRun:
        """The chunks ``wave``, expected and ready to send (:meth:`send`).

        A resumed job's wave first takes the results counted before (the hub's journal,
        then the backend): only the rest will be sent, as plain tasks.
        """
        job = self.job
        run = WaveRun(
            ids={chunk_task_id(job.id, i): i for i in wave},
            callback_id=wave_task_id(job.id, wave.start, wave.stop) if len(wave) > 1 else None,
            tally=WaveTally(job.plan, wave, job.width, job.shape),
        )
        if self.resumed is not None:
            counted = self._counted_before(run)
            if counted:
                self.resumed += len(counted)
                run.counted_before = counted
                run.callback_lost = True
        self.arrivals.expect(run.outstanding())
        return run

    def send(self, run: WaveRun) -> None:
        """Publish ``run``'s chunks: a chord, a lone task, or a resumed wave's rest."""
        if run.callback_lost:
            self.resend(run)
            return
        callback = None
        if run.callback_id is not None:
            callback = self.client.app.tasks[TALLY_WAVE].signature(
                (encode_job(self.job), run.tally.indices.start, run.tally.indices.stop),
                task_id=run.callback_id,
            )
        run.group_id = send_chunks(self.client, self.job, run.ids, callback)

    def resend(self, run: WaveRun) -> int:
        """Publish the chunks ``run`` lacks again, as plain tasks (same task ids); how many.

        Its chord callback, if it had one, is not awaited any more.
        """
        missing = run.missing()
        if missing:
            send_chunks(self.client, self.job, missing)
        run.callback_lost = True
        return len(missing)

    def _counted_before(self, run: WaveRun) -> list[ChunkResult]:
        """Results the hub's journal, or else the backend, holds for ``run``'s chunks,
        added to its tally."""
        counted = []
        for index in run.tally.indices:
            result = self._journaled.get(index)
            if result is not None and run.tally.add(result, earlier=True):
                counted.append(result)
        from_journal = len(counted)
        ids = [t for t, i in run.ids.items() if not run.tally.has(i)]
        backend = self.client.results
        values: list[bytes | None] = []
        if ids:
            values = backend.client.mget([backend.get_key_for_task(t) for t in ids])
        # Taken from the journal only now: a backend that failed the read above makes
        # the hub try the wave again, which must find them there still.
        for index in run.tally.indices:
            self._journaled.pop(index, None)
        self.from_journal += from_journal
        for task_id, value in zip(ids, values, strict=True):
            if value is None:
                continue
            meta = backend.decode_result(value)
            if meta.get("status") != states.SUCCESS:
                continue  # failed or unknown: sent again
            result = chunk_result(run.ids[task_id], meta)
            if run.tally.add(result, earlier=True):
                counted.append(result)
        return counted

    def note(self) -> str | None:
        """The report's line about a resumed run's chunks, if any were counted before."""
        if not self.resumed:
            return None
        return (
            f"resumed: {self.resumed:,} chunk(s) counted before were taken, not "
            f"recomputed: {self.from_journal:,} from the hub's journal, "
            f"{self.resumed - self.from_journal:,} from the result backend"
        )
