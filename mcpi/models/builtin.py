"""The models that ship with mcpi: examples, and correctness tests with exact answers.

Each is an ordinary model, registered through mcpi's own ``mcpi.models`` entry points
exactly as a user's package registers theirs, and each declares its exact answer, so
that a run shows its error against the truth (in standard errors) and the tests can
check every guarantee on a known result. ``pi``, ``ball``, ``call`` and ``ishigami``
have a uniform form too (each sample a function of d uniforms), which randomized QMC
runs; their generator forms stay for plain Monte Carlo, so that a seed's answer under
plain Monte Carlo is what it always was. ``e`` draws a variable number of uniforms per
sample: plain Monte Carlo only.

* ``pi``: π by darts, the dart kernel of ``mcpi-hub estimate`` (same stream, same
  counts for the same seed); output ``pi`` = 4·1{hit}.
* ``ball``: the volume of the unit ball in ``d`` dimensions from points uniform in
  [-1, 1]^d; output ``volume`` = 2^d·1{‖x‖ ≤ 1}; exact π^{d/2}/Γ(d/2+1).
* ``call``: a European call under Black–Scholes, the discounted payoff of one
  lognormal terminal price; exact by the Black–Scholes formula (S=K=100, T=1, r=0.05,
  σ=0.2: 10.450583572185565). Its control ``terminal``, the discounted terminal price,
  has mean S.
* ``e``: the number of U(0,1) draws until their sum first exceeds 1, whose mean is e
  (variance 3e − e²): a model that draws a *variable* number of random numbers per
  sample.
* ``ishigami``: the sensitivity-analysis test function sin x₁ + a sin²x₂ + b x₃⁴ sin x₁,
  xᵢ ~ U(−π, π): mean a/2, variance a²/8 + bπ⁴/5 + b²π⁸/18 + 1/2.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from mcpi.core.kernel import count_hits, dart_sums
from mcpi.core.model import Model, ParamValue, model
from mcpi.core.special import normal_quantile


def _pi_sums(seed: int, start: int, stop: int, params: Mapping[str, ParamValue]) -> tuple[int, ...]:
    # Samples are 4·1{hit}: Σx = 4·hits and Σx² = 16·hits, exactly, from the dart kernel.
    return dart_sums(count_hits(seed, start, stop))


def _darts(rng: np.random.Generator, n: int) -> np.ndarray:
    # Never called for jobs (the chunk_sums fast path counts them); the same geometry
    # on a generator's raw draws, for running the model by hand.
    lanes = rng.bit_generator.random_raw(n).view(np.int32).astype(np.float64)
    squares = lanes * lanes
    return 4.0 * (squares[0::2] + squares[1::2] < float(2**62))


def _dart_points(u: np.ndarray) -> np.ndarray:
    """A dart at (2u₁ − 1, 2u₂ − 1) in the square [−1, 1]²: 4·1{inside the unit circle}."""
    x = 2.0 * u[:, 0] - 1.0
    y = 2.0 * u[:, 1] - 1.0
    return 4.0 * (x * x + y * y < 1.0)


pi = Model(
    name="pi",
    function=_darts,
    outputs=("pi",),
    exact={"pi": math.pi},
    # Darts are addressed by position in one stream: any split is whole "blocks".
    block=1,
    version="1",
    description="π by darts: the dart kernel of `mcpi-hub estimate` (4·1{hit})",
    chunk_sums=_pi_sums,
    # A proportion: reported with Wilson's interval, as `estimate` always has.
    binary={"pi": 4.0},
    # The dart stream and hit test of mcpi.core.kernel, version 1, and the darts of
    # uniforms below: the tests pin their answers (tests/core/data/pinned.json),
    # whatever else this file holds.
    code="darts-1",
    uniform=_dart_points,
    dims=2,
)


def _ball_volume(d: int) -> dict[str, float]:
    return {"volume": math.pi ** (d / 2) / math.gamma(d / 2 + 1)}


def _check_ball(d: int) -> None:
    if not 1 <= d <= 64:
        raise ValueError(f"d must be between 1 and 64, not {d}")


@model(
    "ball",
    outputs=("volume",),
    params={"d": 3},
    exact=_ball_volume,
    version="1",
    check=_check_ball,
)
def ball(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Volume of the unit d-ball: 2^d·1{‖x‖ ≤ 1}, x uniform in [-1, 1]^d."""
    points = rng.random((n, d)) * 2.0 - 1.0
    # Column by column: elementwise IEEE operations only, the same bits on any CPU.
    radius = points[:, 0] * points[:, 0]
    for j in range(1, d):
        radius += points[:, j] * points[:, j]
    return np.where(radius <= 1.0, 2.0**d, 0.0)


def _ball_points(u: np.ndarray, d: int) -> np.ndarray:
    """The same volume from a point 2u − 1 of the cube."""
    x = 2.0 * u - 1.0
    radius = x[:, 0] * x[:, 0]
    for j in range(1, d):
        radius += x[:, j] * x[:, j]
    return np.where(radius <= 1.0, 2.0**d, 0.0)


def _ball_dims(d: int) -> int:
    return d


ball = ball.with_uniform(_ball_points, _ball_dims)


def black_scholes_call(S: float, K: float, T: float, r: float, sigma: float) -> float:
    """The Black–Scholes price of a European call."""
    d1 = (math.log(S / K) + (r + sigma * sigma / 2) * T) / (sigma * math.sqrt(T))
    d2 = d1 - sigma * math.sqrt(T)

    def cdf(x: float) -> float:
        return 0.5 * math.erfc(-x / math.sqrt(2))

    return S * cdf(d1) - K * math.exp(-r * T) * cdf(d2)


def _call_price(S: float, K: float, T: float, r: float, sigma: float) -> dict[str, float]:
    return {"price": black_scholes_call(S, K, T, r, sigma)}


def _check_call(S: float, K: float, T: float, r: float, sigma: float) -> None:
    if S <= 0 or K <= 0 or T <= 0 or sigma <= 0:
        raise ValueError("S, K, T and sigma must be positive")


@model(
    "call",
    outputs=("price",),
    params={"S": 100.0, "K": 100.0, "T": 1.0, "r": 0.05, "sigma": 0.2},
    exact=_call_price,
    version="1",
    check=_check_call,
)
def call(
    rng: np.random.Generator, n: int, S: float, K: float, T: float, r: float, sigma: float
) -> np.ndarray:
    """European call under Black–Scholes: e^{−rT}(S_T − K)⁺ of one lognormal S_T."""
    z = rng.standard_normal(n)
    terminal = S * np.exp((r - sigma * sigma / 2) * T + sigma * math.sqrt(T) * z)
    return math.exp(-r * T) * np.maximum(terminal - K, 0.0)


def _call_payoff(u: np.ndarray, S: float, K: float, T: float, r: float, sigma: float) -> np.ndarray:
    """The same payoff from Z = Φ⁻¹(u): one uniform a sample."""
    z = normal_quantile(u[:, 0])
    terminal = S * np.exp((r - sigma * sigma / 2) * T + sigma * math.sqrt(T) * z)
    return math.exp(-r * T) * np.maximum(terminal - K, 0.0)


def _call_discounted_terminal(
    u: np.ndarray, S: float, K: float, T: float, r: float, sigma: float
) -> np.ndarray:
    """The control of ``run call --control terminal``: e^{−rT}S_T from the same uniform,
    whose mean is S (the discounted price is a martingale). Correlation 0.92 with the
    payoff at the defaults: a variance reduction of 6.9×."""
    z = normal_quantile(u[:, 0])
    value: np.ndarray = S * np.exp(-sigma * sigma / 2 * T + sigma * math.sqrt(T) * z)
    return value


def _spot(S: float, K: float, T: float, r: float, sigma: float) -> float:
    return S


call = call.with_uniform(_call_payoff, 1).with_control("terminal", _call_discounted_terminal, _spot)


#: Uniforms drawn per unfinished sample per round of the e model: a sum of 8 exceeds 1
#: with probability 1 − 1/8! (all but 2.5e-5 of the samples finish in the first round).
_E_ROUND = 8


@model("e", outputs=("e",), exact={"e": math.e}, version="1")
def euler(rng: np.random.Generator, n: int) -> np.ndarray:
    """e: the number of U(0,1) draws until their sum first exceeds 1 (variable draws)."""
    draws = np.zeros(n)
    totals = np.zeros(n)
    result = np.empty(n)
    pending = np.arange(n)
    while pending.size:
        running = np.cumsum(rng.random((pending.size, _E_ROUND)), axis=1)
        running += totals[pending, None]
        over = running > 1.0
        done = over.any(axis=1)
        finished = pending[done]
        result[finished] = draws[finished] + over[done].argmax(axis=1) + 1
        waiting = pending[~done]
        totals[waiting] = running[~done, -1]
        draws[waiting] += _E_ROUND
        pending = waiting
    return result


def _ishigami_moments(a: float, b: float) -> dict[str, float]:
    return {"y": a / 2}


@model(
    "ishigami", outputs=("y",), params={"a": 7.0, "b": 0.1}, exact=_ishigami_moments, version="1"
)
def ishigami(rng: np.random.Generator, n: int, a: float, b: float) -> np.ndarray:
    """The Ishigami function of three U(−π, π) inputs (mean a/2)."""
    x = rng.uniform(-math.pi, math.pi, size=(n, 3))
    s1 = np.sin(x[:, 0])
    return s1 + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * s1


def _ishigami_points(u: np.ndarray, a: float, b: float) -> np.ndarray:
    """The same function of x = π(2u − 1), uniform in (−π, π)³."""
    x = math.pi * (2.0 * u - 1.0)
    s1 = np.sin(x[:, 0])
    return s1 + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * s1


ishigami = ishigami.with_uniform(_ishigami_points, 3).with_inputs("x1", "x2", "x3")


def call_variance(
    S: float = 100.0, K: float = 100.0, T: float = 1.0, r: float = 0.05, sigma: float = 0.2
) -> float:
    """The variance of the call's discounted payoff, e^{-rT}(S_T − K)⁺ (14.7194² at the
    defaults): E[S_T^k 1{S_T > K}] = S^k e^{k(r − σ²/2)T + k²σ²T/2} Φ(d + kσ√T) with
    d = (ln(S/K) + (r − σ²/2)T)/(σ√T), so E[((S_T − K)⁺)²] follows from k = 0, 1, 2."""
    root = sigma * math.sqrt(T)
    d = (math.log(S / K) + (r - sigma * sigma / 2) * T) / root

    def moment(k: int) -> float:
        cdf = 0.5 * math.erfc(-(d + k * root) / math.sqrt(2))
        return S**k * math.exp(k * (r - sigma * sigma / 2) * T + k * k * root * root / 2) * cdf

    second = math.exp(-2 * r * T) * (moment(2) - 2 * K * moment(1) + K * K * moment(0))
    return second - black_scholes_call(S, K, T, r, sigma) ** 2


def ishigami_variance(a: float = 7.0, b: float = 0.1) -> float:
    """The Ishigami function's exact variance (13.8446 at a=7, b=0.1)."""
    return a * a / 8 + b * math.pi**4 / 5 + b * b * math.pi**8 / 18 + 0.5


def ishigami_indices(
    a: float = 7.0, b: float = 0.1
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """The Ishigami function's exact Sobol' indices, (first-order, total): its variance
    parts V₁ = ½(1 + bπ⁴/5)², V₂ = a²/8, V₃ = 0 and V₁₃ = 8b²π⁸/225 (Ishigami and Homma
    1990; Sobol' and Levitan 1999), over the variance :func:`ishigami_variance`. At
    a=7, b=0.1: S = (0.3139, 0.4424, 0), ST = (0.5576, 0.4424, 0.2437)."""
    v1 = 0.5 * (1 + b * math.pi**4 / 5) ** 2
    v2 = a * a / 8
    v13 = 8 * b * b * math.pi**8 / 225
    v = ishigami_variance(a, b)
    return (v1 / v, v2 / v, 0.0), ((v1 + v13) / v, v2 / v, v13 / v)


E_VARIANCE = 3 * math.e - math.e**2

BUILTIN: tuple[Model, ...] = (pi, ball, call, euler, ishigami)
