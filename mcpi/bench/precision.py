"""Time to precision: the wall time to a 95 % half-width H, mcpi against the peers.

Samples per second is not what a scientist waits for; an answer to a precision is. For
each target (``call`` to ±1e-4, ``ishigami`` to ±1e-4, ``pi`` to ±1e-5):

* **mcpi, auto** (randomized QMC for these models of uniforms), on the local pool and on
  a Celery cluster: ``run MODEL --precision H`` through a warm executor (its pool
  started, or its cluster checked and its rates measured, before the clock, as the
  peers' processes are), **measured**: the median wall time of a few seeds, and whether
  each interval covered the exact answer;
* **the peers**, ``multiprocessing.Pool``, Dask and Ray (:mod:`mcpi.bench.peers`, their
  best documented settings) running plain Monte Carlo on the same cores, each chunk the
  numpy code a user would write (the built-in model's plain function, π's reference
  dart kernel): plain Monte Carlo needs n_H = (1.96·σ/H)² samples, σ the output's exact
  standard deviation, so a peer's time to H is predictable from its rate. The rate is
  measured on a fixed job; the time to H is then **measured** (a job of n_H samples) where
  the prediction is under a minute, else **computed** as n_H over the rate — the row says
  which;
* for ``pi``, mcpi's own compiled dart kernel under plain Monte Carlo (``--sampler mc``),
  the same way;
* the points themselves: scrambled Sobol' doubles per second on one core, in the batches
  a chunk makes them, against numpy's PCG64 doubles (``Generator.random``) in the same
  shapes (target: at least half PCG64's rate).

The ratios are the best peer's time over mcpi's (targets: ≥ 1,000× for ``call``, ≥ 100×
for ``ishigami`` and ``pi``, and ≥ 10× mcpi's compiled plain-MC darts for ``pi``).
"""

from __future__ import annotations

import importlib.util
import math
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mcpi.bench import peers
from mcpi.core import sobol
from mcpi.core.kernel import count_hits_reference
from mcpi.core.sampler import batch_points
from mcpi.core.stats import Z95
from mcpi.models import builtin

SEED = 2026
#: A peer's plain Monte Carlo is measured outright where it would take less than this.
MEASURE_BELOW_SECONDS = 60.0
#: Samples a peer's chunk draws at once (memory bounded whatever the chunk).
BATCH = 1 << 20

MCPI_LOCAL = "mcpi auto, local pool"
MCPI_CELERY = "mcpi auto, Celery"
MCPI_DARTS = "mcpi plain MC, compiled darts"


def call_plain_sum(seed: int, start: int, stop: int) -> float:
    """Σ of the call's discounted payoff over samples [start, stop): plain numpy."""
    return _plain_sum(builtin.call, seed, start, stop)


def ishigami_plain_sum(seed: int, start: int, stop: int) -> float:
    """Σ of the Ishigami function over samples [start, stop): plain numpy."""
    return _plain_sum(builtin.ishigami, seed, start, stop)


def _plain_sum(model: Any, seed: int, start: int, stop: int) -> float:
    rng = np.random.default_rng([seed, start])
    params = model.call({}).kwargs
    total = 0.0
    for first in range(start, stop, BATCH):
        n = min(BATCH, stop - first)
        total += float(np.asarray(model.function(rng, n, **params)).sum())
    return total


@dataclass(frozen=True)
class Target:
    model: str
    half_width: float
    #: The output's exact standard deviation under plain Monte Carlo.
    sd: float
    exact: float
    #: A peer's chunk: (seed, start, stop) -> Σ of its samples (π's: its hits).
    kernel: Callable[[int, int, int], float]
    #: Samples of the job a peer's rate is measured on (full, quick).
    rate_samples: tuple[int, int]
    #: The least of (best peer's time / mcpi's time) the product aims at.
    goal: float

    @property
    def plain_samples(self) -> int:
        """Plain Monte Carlo's samples for the half-width: (1.96·σ/H)²."""
        return math.ceil((Z95 * self.sd / self.half_width) ** 2)


_P = math.pi / 4
TARGETS = (
    Target(
        "call",
        1e-4,
        math.sqrt(builtin.call_variance()),
        builtin.black_scholes_call(100.0, 100.0, 1.0, 0.05, 0.2),
        call_plain_sum,
        (1 << 26, 1 << 22),
        1000.0,
    ),
    Target(
        "ishigami",
        1e-4,
        math.sqrt(builtin.ishigami_variance()),
        3.5,
        ishigami_plain_sum,
        (1 << 26, 1 << 22),
        100.0,
    ),
    Target(
        "pi",
        1e-5,
        4 * math.sqrt(_P * (1 - _P)),
        math.pi,
        count_hits_reference,
        (1 << 29, 1 << 24),
        100.0,
    ),
)
#: π to ±1e-5 against mcpi's own compiled plain-MC darts: at least this much sooner.
DARTS_GOAL = 10.0
#: Scrambled Sobol' doubles per second against PCG64's, one core: at least this.
POINTS_GOAL = 0.5


@dataclass(frozen=True)
class GeneratorRates:
    """Coordinates per second on one core: scrambled Sobol' doubles and PCG64's."""

    dims: int
    sobol: float
    pcg64: float


def generator_rates(dims: int = 2, coordinates: int = 1 << 24, rounds: int = 5) -> GeneratorRates:
    """The best of ``rounds`` passes over ``coordinates`` doubles each way, in the batches
    a randomized QMC chunk makes (:func:`mcpi.core.sampler.batch_points`)."""
    batch = batch_points(dims)
    batches = max(1, coordinates // (batch * dims))
    rng = np.random.default_rng(SEED)
    sobol.uniforms(SEED, 0, dims, 0, batch)  # the scramble made (cached), as in a chunk

    def sobol_pass() -> None:
        for k in range(batches):
            sobol.uniforms(SEED, 0, dims, k * batch, (k + 1) * batch)

    def pcg64_pass() -> None:
        for _ in range(batches):
            rng.random((batch, dims))

    done = batches * batch * dims
    rates = []
    for run in (sobol_pass, pcg64_pass):
        best = math.inf
        for _ in range(rounds):
            began = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - began)
        rates.append(done / best)
    return GeneratorRates(dims, rates[0], rates[1])


@dataclass(frozen=True)
class Row:
    model: str
    backend: str
    seconds: float
    #: "measured" or "computed" (n_H over the measured rate).
    how: str
    #: Samples the answer took (measured), or plain Monte Carlo's n_H (computed).
    samples: int
    #: Samples per second measured, for a computed row (and on what job).
    rate: float | None = None
    rate_samples: int | None = None
    #: Of mcpi's measured rows: how many runs' intervals covered the exact answer.
    covered: tuple[int, int] | None = None


@dataclass
class TimeToPrecision:
    processes: int
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    points: GeneratorRates | None = None

    def seconds(self, model: str, backend: str) -> float | None:
        for row in self.rows:
            if row.model == model and row.backend == backend:
                return row.seconds
        return None

    def best_peer(self, model: str) -> Row | None:
        peer_rows = [r for r in self.rows if r.model == model and not r.backend.startswith("mcpi")]
        return min(peer_rows, key=lambda r: r.seconds, default=None)

    def targets(self) -> list[tuple[str, float, float]]:
        """(what, ratio, goal) of every target that could be measured."""
        found = []
        for target in TARGETS:
            best = self.best_peer(target.model)
            for backend in (MCPI_LOCAL, MCPI_CELERY):
                mine = self.seconds(target.model, backend)
                if best is not None and mine:
                    what = f"{target.model}: best peer ({best.backend}) / {backend}"
                    found.append((what, best.seconds / mine, target.goal))
        darts, mine = self.seconds("pi", MCPI_DARTS), self.seconds("pi", MCPI_LOCAL)
        if darts and mine:
            found.append((f"pi: {MCPI_DARTS} / {MCPI_LOCAL}", darts / mine, DARTS_GOAL))
        if self.points is not None:
            what = f"Sobol' doubles / PCG64 doubles per second, one core, d={self.points.dims}"
            found.append((what, self.points.sobol / self.points.pcg64, POINTS_GOAL))
        return found


def measure(
    processes: int,
    settings: Any,
    cluster: Any | None,
    quick: bool = False,
    say: Callable[[str], None] = lambda _: None,
) -> TimeToPrecision:
    """Every row (see the module docstring): mcpi's on the local pool (``settings``) and
    on ``cluster`` (its settings, or None to leave it out), the peers' on ``processes``."""
    result = TimeToPrecision(processes)
    rounds = 1 if quick else 3
    say("time to precision: scrambled Sobol' and PCG64 doubles, one core")
    result.points = generator_rates(coordinates=1 << (20 if quick else 24))
    with _warm(settings, local=processes) as local:
        for target in TARGETS:
            say(f"time to precision: {target.model} to ±{target.half_width:g}, local pool")
            result.rows.append(_mcpi_row(local, target, MCPI_LOCAL, rounds))
        pi = next(t for t in TARGETS if t.model == "pi")
        say("time to precision: pi, mcpi's compiled darts (plain MC)")
        result.rows.append(_darts_row(local, pi, quick))
    if cluster is not None:
        with _warm(cluster) as warm:
            for target in TARGETS:
                say(f"time to precision: {target.model} to ±{target.half_width:g}, Celery")
                result.rows.append(_mcpi_row(warm, target, MCPI_CELERY, rounds))
    for peer_class, module in _PEERS:
        if module is not None and importlib.util.find_spec(module) is None:
            result.skipped[peer_class.name] = "not installed: pip install 'mcpi[bench]'"
            continue
        for target in TARGETS:
            say(f"time to precision: {target.model}, {peer_class.name} (plain MC)")
            with (
                peers.environment_restored(),
                peers.quiet_dask(),
                _closing(peer_class(processes, kernel=target.kernel)) as peer,
            ):
                result.rows.append(_peer_row(peer, target, quick))
    return result


_PEERS: tuple[tuple[Any, str | None], ...] = (
    (peers.PoolPeer, None),
    (peers.DaskPeer, "distributed"),
    (peers.RayPeer, "ray"),
)


@contextmanager
def _closing(peer: Any) -> Iterator[Any]:
    try:
        yield peer
    finally:
        peer.close()


@dataclass(frozen=True)
class _Runner:
    """Jobs through one warm executor (:class:`mcpi.hub.warm.Warm`) and its settings."""

    warm: Any
    settings: Any

    def run(self, request: Any) -> Any:
        from mcpi.hub.progress import NoProgress
        from mcpi.hub.run import run_job

        return run_job(request, self.settings, NoProgress(), self.warm)


@contextmanager
def _warm(settings: Any, local: int | None = None) -> Iterator[_Runner]:
    """A warm executor for ``settings``: the local pool of ``local`` processes, or the
    cluster the settings name."""
    from mcpi.hub.executor import choose_executor
    from mcpi.hub.request import JobRequest
    from mcpi.hub.warm import Warm

    request = JobRequest(samples=1, local=local is not None, processes=local)
    warm = Warm(*choose_executor(request, settings))
    try:
        yield _Runner(warm, settings)
    finally:
        warm.close()


def _mcpi_row(runner: _Runner, target: Target, backend: str, rounds: int) -> Row:
    """The median wall time of ``rounds`` seeds to the target, after one to warm up."""
    from mcpi.hub.request import JobRequest

    def request(seed: int) -> Any:
        return JobRequest(target.model, precision=target.half_width, max_samples=10**12, seed=seed)

    runner.run(request(SEED - 1))  # warm: the model imported, its rate measured
    walls, samples, covered = [], [], 0
    for k in range(rounds):
        began = time.perf_counter()
        report = runner.run(request(SEED + k))
        walls.append(time.perf_counter() - began)
        output = report.outputs[0]
        if output.half_width > target.half_width:
            raise RuntimeError(f"{backend} did not reach ±{target.half_width:g}")
        covered += output.ci_low <= target.exact <= output.ci_high
        samples.append(report.samples)
    return Row(
        target.model,
        backend,
        statistics.median(walls),
        "measured",
        int(statistics.median(samples)),
        covered=(covered, rounds),
    )


def _darts_row(runner: _Runner, target: Target, quick: bool) -> Row:
    """mcpi's compiled plain-MC darts: its rate on a fixed job, then the time to n_H."""
    from mcpi.hub.request import JobRequest

    def darts(n: int) -> float:
        began = time.perf_counter()
        runner.run(JobRequest("pi", samples=n, seed=SEED, sampler="mc"))
        return time.perf_counter() - began

    size = 1 << (26 if quick else 31)
    darts(size // 8)  # warm
    return _predicted_or_measured(target, MCPI_DARTS, size, darts, quick)


def _peer_row(peer: Any, target: Target, quick: bool) -> Row:
    def job(n: int) -> float:
        began = time.perf_counter()
        peer.count(n, SEED)
        return time.perf_counter() - began

    job(peer.processes * 4 * 1024)  # warm: imports in fresh processes
    size = target.rate_samples[1 if quick else 0]
    return _predicted_or_measured(target, peer.name, size, job, quick)


def _predicted_or_measured(
    target: Target, backend: str, size: int, job: Callable[[int], float], quick: bool
) -> Row:
    """Time to n_H: measured outright if the rate on ``size`` predicts under a minute
    (and not ``quick``), else computed from that rate."""
    seconds = job(size)
    rate = size / seconds
    needed = target.plain_samples
    if not quick and needed / rate < MEASURE_BELOW_SECONDS:
        return Row(target.model, backend, job(needed), "measured", needed)
    return Row(target.model, backend, needed / rate, "computed", needed, rate, size)


def as_text(result: TimeToPrecision) -> list[str]:
    lines = [
        "",
        f"Time to precision: wall seconds to a 95% half-width H, on {result.processes} "
        "processes (peers: plain MC with numpy)",
        f"{'model':9} {'H':6} {'backend':34} {'seconds':>10}  how",
    ]
    for row in result.rows:
        target = next(t for t in TARGETS if t.model == row.model)
        if row.how == "measured" and row.covered is not None:
            covered, runs = row.covered
            how = f"measured: {row.samples:,} samples, covered {covered}/{runs}"
        elif row.how == "measured":
            how = f"measured: {row.samples:.3g} samples"
        else:
            how = (
                f"computed: {row.samples:.3g} samples at {row.rate:.3g}/s "
                f"(measured on {row.rate_samples:.3g})"
            )
        lines.append(
            f"{row.model:9} {target.half_width:<6g} {row.backend:34} {row.seconds:>10.4g}  {how}"
        )
    for name, why in result.skipped.items():
        lines.append(f"  {name}: skipped ({why})")
    if result.points is not None:
        rates = result.points
        lines.append(
            f"points, one core, d={rates.dims}: scrambled Sobol' {rates.sobol:.3g} doubles/s, "
            f"PCG64 {rates.pcg64:.3g} doubles/s"
        )
    for what, ratio, goal in result.targets():
        verdict = "met" if ratio >= goal else "NOT met"
        lines.append(f"  {what}: {_times(ratio)} (target >= {_times(goal)}: {verdict})")
    return lines


def _times(ratio: float) -> str:
    """``10,597x``, ``34x``, ``0.92x``."""
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2g}x"


def as_json(result: TimeToPrecision) -> dict[str, Any]:
    return {
        "processes": result.processes,
        "rows": [
            {
                "model": r.model,
                "half_width": next(t.half_width for t in TARGETS if t.model == r.model),
                "backend": r.backend,
                "seconds": r.seconds,
                "how": r.how,
                "samples": r.samples,
                "rate": r.rate,
                "rate_samples": r.rate_samples,
                "covered": list(r.covered) if r.covered else None,
            }
            for r in result.rows
        ],
        "skipped": result.skipped,
        "points": (
            {
                "dims": result.points.dims,
                "sobol_per_second": result.points.sobol,
                "pcg64_per_second": result.points.pcg64,
            }
            if result.points
            else None
        ),
        "targets": [
            {"what": what, "ratio": ratio, "goal": goal, "met": ratio >= goal}
            for what, ratio, goal in result.targets()
        ],
    }
