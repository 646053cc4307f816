"""The JSON messages: codecs that round-trip, task bodies that refuse what is off the plan."""

from __future__ import annotations

import pytest

from mcpi import models
from mcpi.core.kernel import count_hits, dart_sums
from mcpi.core.messages import (
    MalformedMessage,
    count_chunk_message,
    decode_exact,
    decode_job,
    decode_result,
    decode_sums,
    encode_exact,
    encode_job,
    encode_result,
    tally_wave_message,
)
from mcpi.core.tally import MissingChunks, TallyError
from tests.helpers import JOB, PLAN, result


def count(job: object, chunk: object) -> dict[str, object]:
    """The chunk task's body on a worker with the installed models."""
    return count_chunk_message(job, chunk, models.resolve)


def test_chord_callback_absorbs_duplicates_and_refuses_gaps() -> None:
    messages = [count(encode_job(JOB), [i, *divmod_bounds(i)]) for i in range(10)]
    totals = tally_wave_message(messages + messages[:3], encode_job(JOB), 0, 10)
    assert totals["duplicates"] == 3
    assert decode_sums(totals) == dart_sums(count_hits(JOB.seed, 0, PLAN.darts))
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
        {
            "chunk": {"index": 0, "start": 0, "stop": 100, "sums": []},
            "telemetry": {"host": "h", "pid": 1, "seconds": 0.1, "version": "x"},
        },
    ],
)
def test_malformed_results_are_refused(message: object) -> None:
    with pytest.raises(MalformedMessage):
        decode_result(message)


def test_a_result_of_the_wrong_width_is_refused_by_the_wave_it_claims() -> None:
    # A sums list's length is the job's shape (moments, then tally counts), so the decoder
    # takes any non-empty list and the wave, which knows the job, refuses the wrong one.
    message = count(encode_job(JOB), [0, *divmod_bounds(0)])
    message["chunk"]["sums"] = message["chunk"]["sums"][:1]
    with pytest.raises(TallyError, match="another kind of job"):
        tally_wave_message([message], encode_job(JOB), 0, 1)


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
        count(job, chunk)


def test_job_messages_round_trip_a_full_128_bit_seed() -> None:
    job = JOB.__class__("j", 2**128 - 1, PLAN, JOB.model)
    assert decode_job(encode_job(job)) == job


def test_a_pi_result_of_mcpi_0_1_0_reads_as_the_pi_model_s_sums() -> None:
    # Its hub journals, and results its workers stored, carry "hits".
    old = encode_result(result(4))
    old["chunk"] = {k: v for k, v in old["chunk"].items() if k != "sums"} | {"hits": 50}
    assert decode_result(old) == result(4)
    # ... and decimal sums.
    old["chunk"] = {"index": 4, "start": 400, "stop": 500, "sums": [str(s) for s in dart_sums(50)]}
    assert decode_result(old) == result(4)


def test_exact_sums_travel_short_and_come_back_exact() -> None:
    for value in (0, 1, -1, 3 << 1074, -(12345 << 900), (1 << 2200) - 1, 10**300):
        assert decode_exact(encode_exact(value)) == value
    assert len(encode_result(result(4))["chunk"]["sums"][0]) < 12  # pi's hits, shifted
    for bad in ("", "0x10", "1p99999", "p5", "-", "1e5", 12, None, "9" * 1001):
        with pytest.raises(MalformedMessage):
            decode_exact(bad)
