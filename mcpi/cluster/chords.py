"""The chord verdict: does a wave's callback agree with the hub's tally, and will it come?

The callback of a wave's chord tallies the wave's chunks on a worker; the hub compares
its totals with its own tally of the same chunks (:func:`verdict`): two independent
counts that must agree.

Whether a wave's chord callback is still to come is read from Celery's Redis backend.

A chunk's task stores its result, then counts itself as a part of its wave's chord; the
part that completes the chord claims the callback, publishes it and marks the chord
done. A pool process lost between storing its result and counting it (SIGKILL, the OOM
killer) leaves the result stored, so its worker acknowledges the chunk and rightly does
not run it again, and the chord a part short for ever. One lost between claiming the
callback and publishing it leaves a claim that expires with nothing sent. Either way
the chord keeps its size and has neither a claim nor a done mark: what
:meth:`ChordWatch.stalled` looks for, once the hub has counted every chunk of the wave
and a grace has passed (a live process counts its part a moment after storing its
result).

The key suffixes are those of the Redis backend of celery 5.7, the version pinned:
``.s`` the chord's size, ``.c`` the callback's claim or ``done``, ``.d`` the parts
counted (``<task id>:<index>``). A later version that renamed them would make
:meth:`ChordWatch.stalled` false: the hub would wait for the callback, as it did
before.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from celery import states

from mcpi.cluster.chunks import describe_failure
from mcpi.core.messages import MalformedMessage, decode_sums
from mcpi.core.tally import WaveTally
from mcpi.errors import JobFailed

#: Seconds after the hub counted a wave's last chunk before its chord may be judged
#: stalled: far longer than a live pool process takes from storing a result to
#: counting it in the chord, which is a few Redis round trips.
GRACE_SECONDS = 3.0


class ChordWatch:
    """A wave's chord, looked at while the hub waits for its callback, every chunk of
    the wave counted (from when the watch is made)."""

    def __init__(self, backend: Any, group_id: str) -> None:
        self.backend = backend
        self.group_id = group_id
        self.grace_ends = time.monotonic() + GRACE_SECONDS
        #: The chord fired (its callback was sent): nothing more to look at. A callback
        #: queued behind the next wave's chunks is waited for without a look a poll.
        self.fired = False

    def stalled(self) -> bool:
        """The chord's callback will not come: it is neither claimed nor sent, yet the
        chord is still there (not cleaned up, as one that fired is)."""
        if self.fired or time.monotonic() < self.grace_ends:
            return False
        claim, size = self.backend.client.mget([self._key(".c"), self._key(".s")])
        self.fired = claim == b"done"
        return size is not None and claim is None

    def uncounted(self, chunks: Mapping[str, int]) -> list[int]:
        """The chunks (of ``chunks``: task id -> index) that the chord has not counted."""
        members = self.backend.client.smembers(self._key(".d"))
        counted = {bytes(m).decode().rpartition(":")[0] for m in members}
        return sorted(i for task_id, i in chunks.items() if task_id not in counted)

    def _key(self, suffix: str) -> bytes:
        key: bytes = self.backend.get_key_for_group(self.group_id, suffix)
        return key


def verdict(tally: WaveTally, meta: dict[str, Any]) -> str | None:
    """The hub's judgement of a wave's callback result ``meta``, given its own complete
    ``tally`` of the wave: None if they agree, a note if the hub's tally stands in for a
    callback that fired early; :class:`JobFailed` if they disagree or the callback failed.
    """
    wave = tally.indices
    chunks = f"chunks {wave.start}-{wave.stop - 1}"
    if meta["status"] == states.SUCCESS:
        totals = meta["result"]
        try:
            agree = (decode_sums(totals), totals.get("darts")) == (tally.sums, tally.darts)
        except MalformedMessage:
            agree = False
        if not agree:
            raise JobFailed(
                f"the chord callback of {chunks} does not agree with the hub's own tally of them"
            )
        return None
    failure = meta.get("result") or {}
    if failure.get("exc_type") == "MissingChunks" and tally.complete:
        # A duplicated delivery made the chord fire before its last chunk: the
        # callback saw the gap and refused; the hub's own tally has every chunk.
        return (
            f"the chord callback of {chunks} fired early (a chunk was delivered twice); "
            "the hub's own complete tally was used"
        )
    raise JobFailed(f"the chord callback of {chunks} failed: " + describe_failure(meta))


def lost(wave: range, watch: ChordWatch, ids: Mapping[str, int]) -> str:
    """The note for a wave whose callback will not come (``ids``: its chunks' task ids)."""
    uncounted = watch.uncounted(ids)
    why = (
        f"chunk(s) {', '.join(map(str, uncounted))} stored a result that the chord never "
        "counted (a worker process lost in between)"
        if uncounted
        else "the worker process that completed the chord was lost before sending it"
    )
    return (
        f"the chord callback of chunks {wave.start}-{wave.stop - 1} will not come: "
        f"{why}; the hub's own tally of the wave was used"
    )
