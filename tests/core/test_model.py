"""Models: declared, checked, and computed as a pure function of (model, params, seed, blocks)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcpi.core.chunk import compute_chunk
from mcpi.core.exact import exact_sum
from mcpi.core.job import Job
from mcpi.core.messages import (
    MalformedMessage,
    count_chunk_message,
    decode_exact,
    decode_result,
    encode_chunk,
    encode_job,
    encode_result,
    tally_wave_message,
)
from mcpi.core.model import (
    Model,
    ModelCall,
    ModelError,
    UnknownModel,
    block_generator,
    block_samples,
    chunk_sums,
    model,
)
from mcpi.core.plan import Plan
from mcpi.core.tally import TallyError, WaveTally
from mcpi.models.builtin import BUILTIN, ball, call, euler, ishigami, pi

BLOCK = 64


@model("walk", outputs=("steps", "end"), params={"limit": 10}, block=BLOCK)
def walk(rng: np.random.Generator, n: int, limit: int) -> dict[str, np.ndarray]:
    """A model with a data-dependent number of draws per sample, and two outputs."""
    steps = np.zeros(n)
    position = np.zeros(n)
    for i in range(n):  # a per-sample loop: the draws depend on the walk itself
        while abs(position[i]) < limit:
            position[i] += rng.choice((-1.0, 1.0))
            steps[i] += 1
    return {"steps": steps, "end": position}


def resolver(*known: Model) -> Any:
    table = {m.name: m for m in known}

    def resolve(name: str) -> Model:
        if name not in table:
            raise UnknownModel(f"no model {name!r} is installed")
        return table[name]

    return resolve


def test_a_block_has_its_own_stream_from_the_seed_and_its_index() -> None:
    a = block_generator(7, 0).random(4)
    assert np.array_equal(a, block_generator(7, 0).random(4))
    assert not np.array_equal(a, block_generator(7, 1).random(4))
    assert not np.array_equal(a, block_generator(8, 0).random(4))
    # Not seed + k: block 1 of seed 7 is not block 0 of seed 8.
    assert not np.array_equal(block_generator(7, 1).random(4), block_generator(8, 0).random(4))


@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 12), max_size=4), seed=st.integers(0, 2**128 - 1))
def test_any_split_into_whole_blocks_equals_the_serial_run(cuts: list[int], seed: int) -> None:
    for m in (walk.call({"limit": 3}), euler.call({}), ball.call({"d": 5})):
        subject = {"walk": walk, "e": euler, "ball": ball}[m.name]
        whole = chunk_sums(subject, m, seed, 0, 12 * m.block)
        bounds = [0, *sorted(cuts), 12]
        parts = [
            chunk_sums(subject, m, seed, a * m.block, b * m.block)
            for a, b in itertools.pairwise(bounds)
        ]
        assert tuple(map(sum, zip(*parts, strict=True))) == whole


def test_sums_are_the_exact_sums_of_the_samples() -> None:
    m = walk.call({"limit": 4})
    values = np.concatenate([block_samples(walk, m.kwargs, 11, b, BLOCK) for b in range(3)], axis=1)
    sums = chunk_sums(walk, m, 11, 0, 3 * BLOCK)
    for j in range(2):
        assert sums[2 * j] == exact_sum(values[j])
        assert sums[2 * j + 1] == exact_sum(values[j] * values[j])


def test_the_pi_model_counts_with_the_dart_kernel() -> None:
    from mcpi.core.exact import SCALE_BITS
    from mcpi.core.kernel import count_hits

    m = pi.call({})
    hits = count_hits(2024, 1000, 51_000)
    assert chunk_sums(pi, m, 2024, 1000, 51_000) == (
        (4 * hits) << SCALE_BITS,
        (16 * hits) << SCALE_BITS,
    )


def test_chunks_must_be_whole_blocks() -> None:
    with pytest.raises(ModelError, match="whole blocks"):
        chunk_sums(walk, walk.call({}), 1, 0, BLOCK + 1)
    with pytest.raises(ValueError, match="whole blocks"):
        Job("j", 1, Plan(100, 64), model=walk.call({}))


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"nope": "1"}, "has no parameter nope"),
        ({"limit": "ten"}, "must be an integer"),
        ({"limit": "2.5"}, "must be an integer"),
        ({"limit": float("inf")}, "finite"),
        ({"limit": True}, "must be an integer"),
    ],
)
def test_bad_parameters_are_named(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        walk.bind(given)


def test_parameters_are_converted_and_required_ones_demanded() -> None:
    assert walk.bind({"limit": "0x10"}) == {"limit": 16}
    assert call.bind({"S": "105"})["S"] == 105.0

    @model("needs", params={"x": float})
    def needs(rng: np.random.Generator, n: int, x: float) -> np.ndarray:
        return np.full(n, x)

    with pytest.raises(ModelError, match="needs --param x=VALUE"):
        needs.bind({})
    assert needs.bind({"x": "2"}) == {"x": 2.0}


def make(function: Any, outputs: tuple[str, ...] = ("y",)) -> Model:
    return model("bad", outputs=outputs, block=8)(function)


@pytest.mark.parametrize(
    ("function", "outputs", "message"),
    [
        (lambda rng, n: np.zeros(n + 1), ("y",), r"shape \(9,\), expected \(8,\)"),
        (lambda rng, n: np.zeros((n, 3)), ("y", "z"), r"expected \(8, 2\)"),
        (lambda rng, n: np.array(["a"] * n), ("y",), "dtype <U1, not numbers"),
        (lambda rng, n: np.full(n, np.nan), ("y",), "output y has NaN or infinite"),
        (lambda rng, n: {"y": np.zeros(n), "z": np.full(n, np.inf)}, ("y", "z"), "output z"),
        (lambda rng, n: {"y": np.zeros(n)}, ("y", "z"), "declared"),
        (lambda rng, n: np.full(n, 1e200), ("y",), "cannot be squared"),
        (lambda rng, n: 1 / 0, ("y",), "raised in block 3: ZeroDivisionError"),
        (lambda rng, n: object(), ("y",), "not numbers"),
    ],
)
def test_bad_model_output_is_refused_naming_model_and_block(
    function: Any, outputs: tuple[str, ...], message: str
) -> None:
    bad = make(function, outputs)
    with pytest.raises(ModelError, match=message) as raised:
        chunk_sums(bad, bad.call({}), 1, 3 * 8, 4 * 8)
    assert "model bad" in str(raised.value) and "\n" not in str(raised.value)


def test_booleans_and_integers_are_samples_too() -> None:
    coin = make(lambda rng, n: rng.random(n) < 0.5)
    assert len(chunk_sums(coin, coin.call({}), 1, 0, 16)) == 2


@pytest.mark.parametrize(
    ("bins", "message"),
    [
        ({"z": (0, 1, 4)}, "bins of 'z': no such output"),
        ({"y": (0, 1)}, r"give \(low, high, bins\)"),
        ({"y": (0, 1, 4, "lin")}, "the fourth item is 'log'"),
        ({"y": (1, 0, 4)}, "LO < HI"),
        ({"y": (0, 1, 4, "log")}, "start above 0"),
    ],
)
def test_declared_bins_are_checked(bins: dict[str, Any], message: str) -> None:
    with pytest.raises(ModelError, match=message):
        model("binned", outputs=("y",), bins=bins)(lambda rng, n: rng.random(n))


def test_declarations_are_checked() -> None:
    with pytest.raises(ModelError, match="lower case"):
        model("Bad Name")(lambda rng, n: np.zeros(n))
    with pytest.raises(ModelError, match="distinct"):
        model("x", outputs=("a", "a"))(lambda rng, n: np.zeros(n))
    with pytest.raises(ModelError, match="block"):
        model("x", block=0)(lambda rng, n: np.zeros(n))


def test_a_model_call_survives_json_and_names_its_code() -> None:
    m = call.call({"K": 110})
    assert ModelCall.from_json(m.to_json()) == m
    assert m.digest == call.digest != "unknown" and m.version == call.version
    assert m.kwargs["K"] == 110.0 and m.width == 2


@pytest.mark.parametrize("name", ["os:system", "subprocess.run(", "../evil", "", "x" * 65, 7, "Os"])
def test_a_call_can_only_name_a_model(name: Any) -> None:
    message = call.call({}).to_json() | {"name": name}
    with pytest.raises(ModelError):
        ModelCall.from_json(message)


def job_of(subject: Model, params: dict[str, Any], samples: int, chunk: int) -> Job:
    return Job("j", 9, Plan(samples, chunk), model=subject.call(params))


def test_the_task_body_runs_only_the_named_installed_model() -> None:
    job = job_of(walk, {"limit": 2}, 4 * BLOCK, BLOCK)
    message = encode_job(job)
    chunk = encode_chunk(job.plan.chunk(1))
    walk_only = resolver(walk)
    result = decode_result(count_chunk_message(message, chunk, walk_only))
    assert job.model is not None
    assert result.sums == chunk_sums(walk, job.model, 9, BLOCK, 2 * BLOCK)
    with pytest.raises(UnknownModel):
        count_chunk_message(message, chunk, resolver(ball))
    # A job that names no model (a hub of mcpi 0.1.0 sent π that way) runs nothing.
    with pytest.raises(MalformedMessage, match="names its model"):
        count_chunk_message({k: v for k, v in message.items() if k != "model"}, chunk, walk_only)
    # The same name with other code (another version or digest) is refused.
    other = model("walk", outputs=("steps", "end"), params={"limit": 10}, block=BLOCK, version="2")(
        walk.function
    )
    with pytest.raises(ModelError, match="version 2"):
        count_chunk_message(message, chunk, resolver(other))
    with pytest.raises(MalformedMessage):
        count_chunk_message(message, [1, 0, BLOCK], resolver(walk))


def test_model_results_round_trip_and_tally_exactly_once() -> None:
    job = job_of(walk, {"limit": 2}, 4 * BLOCK, BLOCK)
    assert job.model is not None
    results = [compute_chunk(walk, job, c) for c in job.plan.chunks()]
    for r in results:
        assert decode_result(encode_result(r)) == r
    messages = [encode_result(r) for r in results]
    totals = tally_wave_message([*messages, messages[2]], encode_job(job), 0, 4)
    assert totals["duplicates"] == 1
    serial = chunk_sums(walk, job.model, 9, 0, 4 * BLOCK)
    assert [decode_exact(s) for s in totals["sums"]] == list(serial)
    # A second copy of a chunk with other sums is a contradiction, not a duplicate.
    tally = WaveTally(job.plan, range(4), job.width)
    tally.add(results[0])
    forged = type(results[0])(results[0].chunk, (1, 2, 3, 4), results[0].telemetry)
    with pytest.raises(TallyError, match="different results"):
        tally.add(forged)
    with pytest.raises(TallyError, match="another kind"):
        tally.add(type(results[1])(results[1].chunk, (5,), results[1].telemetry))


def test_builtin_models_declare_exact_answers() -> None:
    assert {m.name for m in BUILTIN} == {"pi", "ball", "call", "e", "ishigami"}
    assert call.exact_values(call.bind({})) == {"price": 10.450583572185565}
    assert ball.exact_values({"d": 3}) == {"volume": pytest.approx(4 / 3 * math.pi)}
    assert ball.exact_values({"d": 5})["volume"] == pytest.approx(8 * math.pi**2 / 15)
    assert euler.exact_values({}) == {"e": math.e}
    assert ishigami.exact_values(ishigami.bind({})) == {"y": 3.5}
