"""What the dashboard shows, read from the job book: no hub is asked anything.

Every hub process on the control node (the CLI, the API, a sweep's threads) keeps a
record of each job in ``<cache>/jobs/<id>.json`` and journals its chunk results, as it
counts them, in ``<id>.chunks`` next to it (:mod:`mcpi.hub.records`): what ``--resume``
reads. The dashboard reads the same files. A running job's journal is tailed from
where the last look stopped, so each chunk is read once, and the running estimate, its
95 % band and each host's rate come from the chunks' exact sums and telemetry. Watching
a job costs its hub nothing: the hub writes those lines anyway.

A finished job's journal is gone (its record holds the result); a job watched while it
ran keeps the series the dashboard drew, until the dashboard restarts.

The band is the one ``--plot`` draws for plain Monte Carlo, the job's own interval at
each point (:func:`mcpi.core.exact.output_estimate`, Wilson's for a binary output); a
randomized-QMC job's interval comes from its replicates at each stage's end, which the
record holds, so mid-stage it shows progress without a band.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcpi.core.chunk import ChunkResult
from mcpi.core.exact import output_estimate
from mcpi.core.messages import MalformedMessage, decode_result
from mcpi.core.tally import add_sums
from mcpi.hub.binding import bind
from mcpi.hub.live import read_live
from mcpi.hub.records import RUNNING, JobBook, JobRecord

#: Points of a running estimate kept per job: every other one is dropped when full.
MAX_POINTS = 1000
#: Jobs listed: the running ones and the newest finished ones, this many in all.
MAX_JOBS = 50
#: A host is shown as gone when no chunk of it came for this long while its job ran.
STALE_SECONDS = 30.0
#: Seconds over which a host's rate over time is averaged: chunks come in bursts.
RATE_WINDOW = 5.0


@dataclass
class HostSeen:
    """One host's chunks of a job: how many, their samples and seconds, when last."""

    chunks: int = 0
    samples: int = 0
    seconds: float = 0.0
    last: float = 0.0

    def rate(self) -> float:
        """Samples a second per slot (the chunks' own compute seconds)."""
        return self.samples / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Declared:
    """What the dashboard knows of a job's outputs: their names, and for each the
    ``binary`` value (Wilson's interval) and the ``exact`` answer, where declared.

    ``plain``: the job's running sums are each output's Σx and Σx² over independent
    samples, so that a running mean and interval mean what they say -- plain Monte
    Carlo with no design (a randomized-QMC job's sums are its replicates'; a Sobol',
    control or antithetic design's are not one sample per sample).
    """

    outputs: list[str]
    plain: bool = False
    binary: dict[str, float] = field(default_factory=dict)
    exact: dict[str, float] = field(default_factory=dict)


@dataclass
class JobWatch:
    """A running job's journal, tailed: its counted samples, sums, hosts and series."""

    journal: Path
    declared: Declared
    offset: int = 0
    samples: int = 0
    chunks: int = 0
    sums: tuple[int, ...] = ()
    hosts: dict[str, HostSeen] = field(default_factory=dict)
    #: (seconds since the watch began, samples, mean, low, high) of the first output.
    series: list[tuple[float, int, float, float, float]] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)
    stride: int = 1
    _since_point: int = 0
    #: Each host's samples a second (all its slots) over the last RATE_WINDOW seconds,
    #: at each look: the looks' times, and per host a value per look (None before its
    #: first chunk).
    rate_times: list[float] = field(default_factory=list)
    rates: dict[str, list[float | None]] = field(default_factory=dict)
    #: (time, samples per host) of the looks within the window.
    _looks: deque[tuple[float, dict[str, int]]] = field(default_factory=deque)

    def read(self, now: float | None = None) -> None:
        """Take the lines journaled since the last read (a torn last line waits)."""
        now = time.monotonic() if now is None else now
        try:
            with self.journal.open("rb") as stream:
                stream.seek(self.offset)
                data = stream.read()
        except FileNotFoundError:  # no chunk counted yet, or the job ended
            return
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].splitlines():
            with contextlib.suppress(ValueError, MalformedMessage, TypeError, KeyError):
                self._count(decode_result(json.loads(line)["result"]), now)
        self._look(now)

    def _look(self, now: float) -> None:
        """A point of each host's rate: its samples counted since the window's first
        look, over the time between. The first look is only where the window starts:
        what it read may have been counted long before (a job watched after it began)."""
        looks = self._looks
        looks.append((now, {host: seen.samples for host, seen in self.hosts.items()}))
        while len(looks) > 2 and now - looks[1][0] >= RATE_WINDOW:
            looks.popleft()
        then, before = looks[0]
        if now - then <= 0:
            return
        self.rate_times.append(now - self.began)
        for host, seen in self.hosts.items():
            series = self.rates.setdefault(host, [None] * (len(self.rate_times) - 1))
            series.append((seen.samples - before.get(host, 0)) / (now - then))
        if len(self.rate_times) > MAX_POINTS:
            self.rate_times = self.rate_times[1::2]
            self.rates = {host: series[1::2] for host, series in self.rates.items()}

    def finish(self, result: dict[str, Any], now: float) -> None:
        """The job ended with ``result`` (its record's): the series ends at its answer,
        whatever chunks the journal, removed at the end, still had unread."""
        samples = result.get("samples")
        outputs = result.get("outputs") or {}
        first = outputs.get(self.declared.outputs[0]) if self.declared.outputs else None
        if not self.declared.plain or first is None or not isinstance(samples, int):
            return
        if self.series and self.series[-1][1] >= samples:
            return
        low, high = first["ci95"]
        self.series.append((now - self.began, samples, first["mean"], low, high))

    def _count(self, result: ChunkResult, now: float) -> None:
        self.samples += result.chunk.darts
        self.chunks += 1
        self.sums = add_sums(self.sums, result.sums)
        host = self.hosts.setdefault(result.telemetry.host, HostSeen())
        host.chunks += 1
        host.samples += result.chunk.darts
        host.seconds += result.telemetry.seconds
        host.last = now
        self._since_point += 1
        if self._since_point >= self.stride:
            self._since_point = 0
            self._point(now)

    def _point(self, now: float) -> None:
        estimate = self.estimate()
        if estimate is None:
            return
        mean, low, high = estimate
        self.series.append((now - self.began, self.samples, mean, low, high))
        if len(self.series) > MAX_POINTS:
            self.series = self.series[1::2]
            self.stride *= 2

    def estimate(self) -> tuple[float, float, float] | None:
        """The first output's mean and 95 % interval from the sums counted so far (None
        where the running sums are not a plain sample mean: see :class:`Declared`)."""
        declared = self.declared
        if not declared.plain or self.samples == 0 or len(self.sums) < 2:
            return None
        name = declared.outputs[0]
        e = output_estimate(
            name, self.samples, self.sums[0], self.sums[1], binary=declared.binary.get(name)
        )
        return e.mean, e.ci_low, e.ci_high


class Watcher:
    """The job book of one control node, looked at again at each :meth:`snapshot`."""

    def __init__(self, book: JobBook, clock: Any = time.monotonic) -> None:
        self.book = book
        self.clock = clock
        self.watches: dict[str, JobWatch] = {}
        #: The last live state of each ended job (read once: it no longer changes).
        self.ended: dict[str, dict[str, Any] | None] = {}

    def snapshot(self) -> dict[str, Any]:
        """Every recent job as the page shows it (JSON-ready), the running ones first.

        A job that finished while watched keeps its series (its journal read to the
        end first); one no longer among the recent jobs is forgotten.
        """
        now = self.clock()
        records = self.book.recent(MAX_JOBS)
        jobs = []
        for record in records:
            watch = self._watch(record)
            if watch is not None:
                watch.read(now)
                if record.result is not None:
                    watch.finish(record.result, now)
            jobs.append(describe(record, watch, now, self._live(record)))
        listed = {r.id for r in records}
        self.watches = {k: w for k, w in self.watches.items() if k in listed}
        self.ended = {k: v for k, v in self.ended.items() if k in listed}
        jobs.sort(key=lambda j: j["status"] != RUNNING)  # stable: newest first within
        return {"jobs": jobs}

    def _live(self, record: JobRecord) -> dict[str, Any] | None:
        """What the job's hub last said is out, and its notes (:mod:`mcpi.hub.live`)."""
        if record.id in self.ended:
            return self.ended[record.id]
        path = self.book.live(record.id)
        live = read_live(path) if path is not None else None
        if record.status != RUNNING and (live is None or live.get("ended")):
            self.ended[record.id] = live
        return live

    def _watch(self, record: JobRecord) -> JobWatch | None:
        watch = self.watches.get(record.id)
        if watch is None and record.status == RUNNING:
            journal = self.book.journal(record.id)
            if journal is None:
                return None
            watch = JobWatch(journal.path, declared_of(record))
            self.watches[record.id] = watch
        return watch


def declared_of(record: JobRecord) -> Declared:
    """The outputs of ``record``'s model, with their binary values and exact answers
    where the model declares them (found as the hub found it; else names only)."""
    model = record.model
    sampler = record.request.get("sampler") or {}
    declared = Declared(
        outputs=[str(o) for o in model.get("outputs") or []],
        plain="design" not in model and sampler.get("kind", "mc") == "mc",
    )
    try:
        bound = bind(str(model.get("source", "")), recorded=model)
        declared.binary = dict(bound.model.binary)
        declared.exact = bound.model.exact_values(bound.call.kwargs)
    except Exception:  # noqa: BLE001 - a model gone or changed since: progress only
        # Without its declaration a binary output's interval (Wilson's) cannot be told
        # from a normal one: no band rather than a wrong one.
        declared.plain = False
    return declared


def describe(
    record: JobRecord, watch: JobWatch | None, now: float, live: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One job, as the page shows it (``live``: its hub's last word on what is out)."""
    total = record.request.get("samples") or record.request.get("max_samples") or 0
    done = watch.samples if watch is not None else record.counted[1]
    if record.result is not None:
        done = record.result.get("samples", done)
    job: dict[str, Any] = {
        "id": record.id,
        "kind": record.kind,
        "params": dict(record.model.get("params") or {}),
        "seed": record.seed,
        "mode": record.mode,
        "where": record.where,
        "status": record.status,
        "created": record.created,
        "updated": record.updated,
        "error": record.error,
        "samples": done,
        "total": total,
        "result": record.result,
    }
    if live is not None:
        job["chunks"] = {
            k: live.get(k) for k in ("stage", "chunks", "counted", "out", "running", "backups")
        }
        job["notes"] = [str(n) for n in live.get("notes") or []]
        written = live.get("written")
        job["live_age"] = time.time() - written if isinstance(written, int | float) else None
    if record.result is not None and isinstance(record.result.get("notes"), list):
        job["notes"] = [str(n) for n in record.result["notes"]]  # the report's, kept
    if watch is not None:
        job["estimate"] = watch.estimate()
        outputs = watch.declared.outputs
        job["output"] = outputs[0] if outputs else None
        job["exact"] = watch.declared.exact.get(outputs[0]) if outputs else None
        job["series"] = watch.series
        job["hosts"] = [
            {
                "host": host,
                "chunks": seen.chunks,
                "rate": seen.rate(),
                "last_seen": now - seen.last,
                "gone": record.status == RUNNING and now - seen.last > STALE_SECONDS,
            }
            for host, seen in sorted(watch.hosts.items())
        ]
        job["rates"] = {"t": watch.rate_times, "hosts": dict(sorted(watch.rates.items()))}
    return job
