"""The JSON messages: codecs that round-trip, task bodies that refuse what is off the plan."""

from __future__ import annotations

import pytest

from mcpi.core.messages import (
    MalformedMessage,
    count_chunk_message,
    decode_job,
    decode_result,
    encode_job,
    encode_result,
    tally_wave_message,
)
from mcpi.core.tally import MissingChunks
from tests.helpers import JOB, PLAN, result


def test_chord_callback_absorbs_duplicates_and_refuses_gaps() -> None:
    messages = [count_chunk_message(encode_job(JOB), [i, *divmod_bounds(i)]) for i in range(10)]
    totals = tally_wave_message(messages + messages[:3], encode_job(JOB), 0, 10)
    assert totals["duplicates"] == 3
    assert totals["hits"] == sum(m["chunk"]["hits"] for m in messages)
    with pytest.raises(MissingChunks):
        tally_wave_message(messages[:9] + messages[:1], encode_job(JOB), 0, 10)


def divmod_bounds(index: int) -> list[int]:
    chunk = PLAN.chunk(index)
    return [chunk.start, chunk.stop]


@pytest.mark.parametrize(
    "message",
    [
        None,
        {},
        {"chunk": {}},
        {
            "chunk": {"index": 0, "start": 0, "stop": 100, "hits": "5"},
            "telemetry": {"host": "h", "pid": 1, "seconds": 0.1, "version": "x"},
        },
    ],
)
def test_malformed_results_are_refused(message: object) -> None:
    with pytest.raises(MalformedMessage):
        decode_result(message)


def test_result_messages_round_trip() -> None:
    r = result(4)
    assert decode_result(encode_result(r)) == r


@pytest.mark.parametrize(
    ("job", "chunk"),
    [
        ({"id": "j"}, [0, 0, 100]),
        (encode_job(JOB), [0, 0, 99]),
        (encode_job(JOB), "0-100"),
        ({**encode_job(JOB), "seed": -1}, [0, 0, 100]),
    ],
)
def test_chunk_task_refuses_messages_off_the_plan(job: object, chunk: object) -> None:
    with pytest.raises(MalformedMessage):
        count_chunk_message(job, chunk)


def test_job_messages_round_trip_a_full_128_bit_seed() -> None:
    job = JOB.__class__("j", 2**128 - 1, PLAN)
    assert decode_job(encode_job(job)) == job
