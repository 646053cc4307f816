"""The Python API: run a Monte Carlo model from a notebook or a script.

>>> import mcpi
>>> result = mcpi.run("ball", samples=40_960, seed=1, params={"d": 3}, local=True, processes=1)
>>> result["volume"].exact == 4 / 3 * 3.141592653589793
True
>>> abs(result["volume"].error) < 4 * result["volume"].std_error
True

A sweep runs one model over many parameter sets at once, each its own job:

>>> balls = mcpi.sweep("ball", [{"d": 2}, {"d": 3}], 40_960, seed=1, local=True, processes=1)
>>> [round(r["volume"].exact, 4) for r in balls]
[3.1416, 4.1888]

One call, :func:`run`, takes what ``mcpi-hub run`` takes and returns a :class:`Result`:
each output's mean, standard error and 95 % interval, the seed, the job id and the
per-host table. It runs where the CLI would, with the same settings precedence
(arguments > ``MCPI_*`` environment > config file > defaults): on the configured
cluster, or on the local pool. Errors are the CLI's, as exceptions
(:class:`mcpi.errors.McpiError` subclasses, each with a one-line message).
"""

from __future__ import annotations

import html
import inspect
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcpi import models as registry
from mcpi.core.distribution import ExceedanceEstimate, HistogramResult, QuantileEstimate
from mcpi.core.exact import OutputEstimate
from mcpi.core.model import Model
from mcpi.core.sensitivity import IndexEstimate, Sensitivity
from mcpi.core.stats import HostThroughput
from mcpi.errors import UsageError
from mcpi.hub.executor import choose_executor
from mcpi.hub.progress import NoProgress, NotebookProgress, Progress, in_notebook
from mcpi.hub.report import JobReport
from mcpi.hub.request import RUN, SENSITIVITY, HistogramSpec, JobRequest, View
from mcpi.hub.run import run_job
from mcpi.hub.sweep import SweepOutcome, describe, run_sweep
from mcpi.hub.warm import Warm
from mcpi.settings import Settings, load_settings


@dataclass(frozen=True)
class Finished:
    """What every finished job tells: its model, seed, job id, hosts and notes."""

    report: JobReport

    @property
    def model(self) -> str:
        return str(self.report.model["name"])

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.report.model["params"])

    @property
    def seed(self) -> int:
        return self.report.seed

    @property
    def job_id(self) -> str:
        return self.report.job_id

    @property
    def hosts(self) -> list[HostThroughput]:
        return self.report.hosts

    @property
    def precision_reached(self) -> bool:
        return self.report.precision_reached

    @property
    def notes(self) -> list[str]:
        return self.report.notes


@dataclass(frozen=True)
class Result(Finished):
    """A finished model job: ``result["price"].mean``, ``result.seed``, ``result.hosts``."""

    @property
    def outputs(self) -> dict[str, OutputEstimate]:
        return {o.name: o for o in self.report.outputs}

    def __getitem__(self, output: str) -> OutputEstimate:
        return self.outputs[output]

    @property
    def mean(self) -> float:
        """The mean of a one-output model."""
        (only,) = self.report.outputs
        return only.mean

    @property
    def samples(self) -> int:
        return self.report.samples

    @property
    def histograms(self) -> dict[str, HistogramResult]:
        """Each histogram counted, by output: ``edges``, ``counts``, ``under``, ``over``."""
        return {h.output: h for h in self.report.distribution.histograms}

    @property
    def quantiles(self) -> list[QuantileEstimate]:
        """Each quantile asked: ``output``, ``p``, ``value``, ``ci_low``, ``ci_high``."""
        return self.report.distribution.quantiles

    @property
    def exceedances(self) -> list[ExceedanceEstimate]:
        """Each exceedance asked: ``output``, ``threshold``, ``probability``, its interval."""
        return self.report.distribution.exceedances

    def __repr__(self) -> str:
        shown = ", ".join(f"{o.name}={o.mean:.6g}±{o.half_width:.2g}" for o in self.report.outputs)
        return f"<mcpi.Result {self.model}: {shown}; {self.samples:,} samples, seed {self.seed}>"

    def to_frame(self) -> Any:
        """The outputs as a pandas DataFrame, one row each (index ``output``): mean,
        std_error, ci_low, ci_high, exact and error (None where no exact answer is
        declared), samples. Needs pandas (``pip install 'mcpi[notebook]'``)."""
        pandas = _pandas("Result.to_frame")
        rows = [_output_row(o) for o in self.report.outputs]
        return pandas.DataFrame(rows).set_index("output")

    def _repr_html_(self) -> str:
        """A notebook shows a result as a small table (no pandas needed)."""
        head = ("output", "mean", "std error", "95% interval", "exact", "error")
        rows = []
        for o in self.report.outputs:
            exact = "" if o.exact is None else f"{o.exact:.8g}"
            error = "" if o.error is None else f"{o.error:.3g}"
            interval = f"[{o.ci_low:.8g}, {o.ci_high:.8g}]"
            cells = (o.name, f"{o.mean:.8g}", f"{o.std_error:.3g}", interval, exact, error)
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        caption = html.escape(
            f"mcpi {self.model} {self.params or ''}: {self.samples:,} samples, seed "
            f"{self.seed}, job {self.job_id}"
        )
        header = "".join(f"<th>{h}</th>" for h in head)
        return (
            f"<table><caption>{caption}</caption><thead><tr>{header}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )


class Results(list[Result]):
    """A sweep's results, in the order of its parameter sets (a list of :class:`Result`)."""

    def to_frame(self) -> Any:
        """One row per job: its parameters, each output's mean, std_error, ci_low and
        ci_high (columns ``price``, ``price_std_error``, ...), seed, job_id and
        wall_seconds. Needs pandas (``pip install 'mcpi[notebook]'``)."""
        pandas = _pandas("sweep results' to_frame")
        rows = []
        for result in self:
            row: dict[str, Any] = dict(result.params)
            for o in result.report.outputs:
                row[o.name] = o.mean
                row[f"{o.name}_std_error"] = o.std_error
                row[f"{o.name}_ci_low"] = o.ci_low
                row[f"{o.name}_ci_high"] = o.ci_high
            row.update(
                seed=result.seed, job_id=result.job_id, wall_seconds=result.report.wall_seconds
            )
            rows.append(row)
        return pandas.DataFrame(rows)


def _output_row(o: OutputEstimate) -> dict[str, Any]:
    return {
        "output": o.name,
        "mean": o.mean,
        "std_error": o.std_error,
        "ci_low": o.ci_low,
        "ci_high": o.ci_high,
        "exact": o.exact,
        "error": o.error,
        "samples": o.samples,
    }


def _progress(show: bool) -> Progress:
    """The progress a job shows: a line in a Jupyter cell where this runs in a notebook
    (and ``show``), else none (a script's output stays its own)."""
    return NotebookProgress() if show and in_notebook() else NoProgress()


def _sweep_line(show: bool) -> NotebookProgress | None:
    """A sweep's progress line in a Jupyter cell (its jobs ended, its samples), as
    :func:`_progress` shows one job's."""
    return NotebookProgress() if show and in_notebook() else None


def _pandas(what: str) -> Any:
    try:
        import pandas
    except ImportError:
        raise UsageError(
            f"{what} needs pandas, which is not installed (pip install 'mcpi[notebook]')"
        ) from None
    return pandas


@dataclass(frozen=True)
class Indices(Finished):
    """A finished job of Sobol' indices: ``indices.first["x1"].value``, its ``ci_low``
    and ``ci_high``; ``indices.total``; ``indices.inputs`` in the model's order."""

    @property
    def found(self) -> Sensitivity:
        assert self.report.sensitivity is not None
        return self.report.sensitivity

    @property
    def output(self) -> str:
        return self.found.output

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.found.inputs)

    @property
    def first(self) -> dict[str, IndexEstimate]:
        """Each input's first-order index S_j, with its 95 % interval."""
        return {i.name: i.first for i in self.found.inputs}

    @property
    def total(self) -> dict[str, IndexEstimate]:
        """Each input's total index ST_j, with its 95 % interval."""
        return {i.name: i.total for i in self.found.inputs}

    @property
    def points(self) -> int:
        return self.found.points

    @property
    def evaluations(self) -> int:
        """Model evaluations in all: the points times d + 2."""
        return self.found.evaluations

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{i.name}: S={i.first.value:.3g} ST={i.total.value:.3g}" for i in self.found.inputs
        )
        return f"<mcpi.Indices {self.model} {self.output}: {shown}; seed {self.seed}>"


def run(
    model: str | Model,
    samples: int | None = None,
    *,
    seed: int | None = None,
    params: Mapping[str, Any] | None = None,
    precision: float | None = None,
    output: str | None = None,
    max_samples: int | None = None,
    chunk_size: int | None = None,
    sampler: str | None = None,
    replicates: int | None = None,
    hist: Mapping[str, Sequence[Any]] | None = None,
    quantiles: Sequence[float | tuple[str, float]] | None = None,
    exceed: Mapping[str, float | Sequence[float]] | None = None,
    control: str | None = None,
    antithetic: bool = False,
    refine: bool = False,
    progress: bool = True,
    local: bool = False,
    processes: int | None = None,
    timeout: float | None = None,
    resume: str | None = None,
    broker: str | None = None,
    backend: str | None = None,
    config: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Result:
    """Run ``model`` (a name, ``FILE.py:NAME``, ``MODULE:NAME``, or a :class:`Model`).

    ``samples`` (default 1e6) or ``precision`` (the 95 % half-width of ``output``,
    bounded by ``max_samples``); ``sampler`` ``"auto"`` (randomized QMC for a model of
    uniforms, else plain Monte Carlo), ``"mc"`` or ``"rqmc"`` with ``replicates``;
    ``hist={"price": (0, 100, 50)}`` (or ``(1, 1e4, 40, "log")``), ``quantiles=[0.99]``
    (or ``[("price", 0.99)]``) and ``exceed={"price": 20.0}`` (or a list of thresholds)
    as ``--hist``, ``--quantile`` and ``--exceed`` (the answers: :attr:`Result.histograms`,
    :attr:`Result.quantiles`, :attr:`Result.exceedances`); ``control="terminal"`` regresses
    a control variate the model declares out of each output (``--control``), and
    ``antithetic=True`` makes each sample an antithetic pair (``--antithetic``), and
    ``refine=True`` gives a quantile the bins held back a second pass (``--refine``); in a
    Jupyter notebook the job's progress shows in the cell, updated in place, unless
    ``progress=False``; the rest as ``mcpi-hub run``'s options. Many jobs in a row are
    quicker in a :class:`Session`.
    """
    settings = _settings(broker, backend, config, timeout, env)
    request = _request(
        model, samples, seed, params, precision, output, max_samples, chunk_size, resume,
        local=local, processes=processes, sampler=sampler, replicates=replicates,
        beyond=_beyond(hist, quantiles, exceed)
        | {"control": control, "antithetic": antithetic, "refine": refine},
    )  # fmt: skip
    return Result(run_job(request, settings, _progress(progress)))


def sensitivity(
    model: str | Model,
    samples: int | None = None,
    *,
    seed: int | None = None,
    params: Mapping[str, Any] | None = None,
    output: str | None = None,
    precision: float | None = None,
    max_samples: int | None = None,
    chunk_size: int | None = None,
    replicates: int | None = None,
    local: bool = False,
    processes: int | None = None,
    timeout: float | None = None,
    resume: str | None = None,
    broker: str | None = None,
    backend: str | None = None,
    config: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Indices:
    """The Sobol' indices of a model of uniforms' ``output`` (default: its first), as
    ``mcpi-hub sensitivity``: ``samples`` design points (default 2^20; each d + 2
    evaluations) or ``precision`` (every index's 95 % half-width, bounded by
    ``max_samples``), under randomized QMC with ``replicates`` (default 16, or 64 with a
    ``precision``).

    >>> import mcpi
    >>> found = mcpi.sensitivity("ishigami", 2**14, seed=1, local=True, processes=1)
    >>> s2 = found.first["x2"]
    >>> s2.ci_low <= 0.4424 <= s2.ci_high, found.evaluations
    (True, 81920)
    """
    settings = _settings(broker, backend, config, timeout, env)
    request = _request(
        model, samples, seed, params, precision, output, max_samples, chunk_size, resume,
        local=local, processes=processes, replicates=replicates, view=SENSITIVITY,
    )  # fmt: skip
    return Indices(run_job(request, settings, NoProgress()))


def sweep(
    model: str | Model,
    params: Sequence[Mapping[str, Any]],
    samples: int | None = None,
    *,
    seed: int | None = None,
    precision: float | None = None,
    output: str | None = None,
    max_samples: int | None = None,
    chunk_size: int | None = None,
    sampler: str | None = None,
    replicates: int | None = None,
    hist: Mapping[str, Sequence[Any]] | None = None,
    quantiles: Sequence[float | tuple[str, float]] | None = None,
    exceed: Mapping[str, float | Sequence[float]] | None = None,
    control: str | None = None,
    antithetic: bool = False,
    progress: bool = True,
    local: bool = False,
    processes: int | None = None,
    timeout: float | None = None,
    broker: str | None = None,
    backend: str | None = None,
    config: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Results:
    """Run ``model`` once per parameter set in ``params``, all at once; the results in order.

    Each is its own job (record, seed, result), bit for bit the result of the same job
    run alone with :func:`run`. All share ``seed`` (one fresh seed if None): common
    random numbers, so that the points differ by their parameters, not by their noise.
    Nothing runs if any parameter set is invalid; if a job fails while running, the
    others finish and the first failure is raised. ``hist``, ``quantiles``, ``exceed``,
    ``control`` and ``antithetic`` ask every job what :func:`run` asks one. In a
    Jupyter notebook one line shows the sweep's progress (jobs ended, samples counted),
    unless ``progress=False``.
    """
    settings = _settings(broker, backend, config, timeout, env)
    beyond = _beyond(hist, quantiles, exceed) | {"control": control, "antithetic": antithetic}
    requests = _points(
        model, params, samples, seed, precision, output, max_samples, chunk_size, local,
        processes, sampler, replicates, beyond,
    )  # fmt: skip
    return _results(run_sweep(requests, settings, line=_sweep_line(progress)))


class Session:
    """Where a script's or a notebook's jobs run, kept warm between them::

        with mcpi.Session() as session:
            prices = [session.run("call", 10**6, params={"K": k}, seed=1) for k in (90, 100)]

    The cluster is checked and measured once (the check again after a minute), the
    local pool's processes stay up: each job then costs its own work and a few
    milliseconds. Every job is recorded and reported as with :func:`run`, and gives the
    same answer bit for bit. Close it (or use ``with``) to stop the pool.
    """

    def __init__(
        self,
        *,
        local: bool = False,
        processes: int | None = None,
        timeout: float | None = None,
        broker: str | None = None,
        backend: str | None = None,
        config: str | Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = _settings(broker, backend, config, timeout, env)
        self.local, self.processes = local, processes
        executor, why = choose_executor(
            JobRequest(samples=1, local=local, processes=processes), self.settings
        )
        self._warm: Warm | None = Warm(executor, why)

    def run(
        self,
        model: str | Model,
        samples: int | None = None,
        *,
        seed: int | None = None,
        params: Mapping[str, Any] | None = None,
        precision: float | None = None,
        output: str | None = None,
        max_samples: int | None = None,
        chunk_size: int | None = None,
        resume: str | None = None,
        sampler: str | None = None,
        replicates: int | None = None,
        hist: Mapping[str, Sequence[Any]] | None = None,
        quantiles: Sequence[float | tuple[str, float]] | None = None,
        exceed: Mapping[str, float | Sequence[float]] | None = None,
        control: str | None = None,
        antithetic: bool = False,
        refine: bool = False,
        progress: bool = True,
    ) -> Result:
        """Run ``model`` as :func:`run` does, on this session's cluster or pool."""
        if self._warm is None:
            raise UsageError("this session is closed")
        request = _request(
            model, samples, seed, params, precision, output, max_samples, chunk_size, resume,
            local=self.local, processes=self.processes, sampler=sampler, replicates=replicates,
            beyond=_beyond(hist, quantiles, exceed)
            | {"control": control, "antithetic": antithetic, "refine": refine},
        )  # fmt: skip
        return Result(run_job(request, self.settings, _progress(progress), self._warm))

    def sensitivity(
        self,
        model: str | Model,
        samples: int | None = None,
        *,
        seed: int | None = None,
        params: Mapping[str, Any] | None = None,
        output: str | None = None,
        precision: float | None = None,
        max_samples: int | None = None,
        chunk_size: int | None = None,
        replicates: int | None = None,
        resume: str | None = None,
    ) -> Indices:
        """The Sobol' indices of ``model`` as :func:`sensitivity` finds them, here."""
        if self._warm is None:
            raise UsageError("this session is closed")
        request = _request(
            model, samples, seed, params, precision, output, max_samples, chunk_size, resume,
            local=self.local, processes=self.processes, replicates=replicates,
            view=SENSITIVITY,
        )  # fmt: skip
        return Indices(run_job(request, self.settings, NoProgress(), self._warm))

    def sweep(
        self,
        model: str | Model,
        params: Sequence[Mapping[str, Any]],
        samples: int | None = None,
        *,
        seed: int | None = None,
        precision: float | None = None,
        output: str | None = None,
        max_samples: int | None = None,
        chunk_size: int | None = None,
        sampler: str | None = None,
        replicates: int | None = None,
        hist: Mapping[str, Sequence[Any]] | None = None,
        quantiles: Sequence[float | tuple[str, float]] | None = None,
        exceed: Mapping[str, float | Sequence[float]] | None = None,
        control: str | None = None,
        antithetic: bool = False,
        progress: bool = True,
    ) -> Results:
        """Run ``model`` once per parameter set, all at once, as :func:`sweep` does."""
        if self._warm is None:
            raise UsageError("this session is closed")
        beyond = _beyond(hist, quantiles, exceed) | {"control": control, "antithetic": antithetic}
        requests = _points(
            model, params, samples, seed, precision, output, max_samples, chunk_size,
            self.local, self.processes, sampler, replicates, beyond,
        )  # fmt: skip
        return _results(run_sweep(requests, self.settings, self._warm, _sweep_line(progress)))

    @property
    def where(self) -> str:
        """``"local"``, or the cluster's broker address."""
        if self._warm is None:
            raise UsageError("this session is closed")
        return self._warm.where

    def close(self) -> None:
        if self._warm is not None:
            self._warm.close()
            self._warm = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _points(
    model: str | Model,
    params: Sequence[Mapping[str, Any]],
    samples: int | None,
    seed: int | None,
    precision: float | None,
    output: str | None,
    max_samples: int | None,
    chunk_size: int | None,
    local: bool,
    processes: int | None,
    sampler: str | None,
    replicates: int | None,
    beyond: Mapping[str, Any],
) -> list[JobRequest]:
    """A sweep's requests: one per parameter set, each asking ``beyond`` (histograms,
    quantiles, exceedances, a variance reduction) too."""
    if isinstance(params, Mapping) or not all(isinstance(p, Mapping) for p in params):
        raise UsageError("a sweep's params are a list of parameter sets (dicts), one per job")

    def one(point: Mapping[str, Any]) -> JobRequest:
        bounds = (precision, output, max_samples, chunk_size, None)
        return _request(
            model, samples, seed, point, *bounds, local=local, processes=processes,
            sampler=sampler, replicates=replicates, beyond=beyond,
        )  # fmt: skip

    return [one(point) for point in params]


def _results(outcomes: list[SweepOutcome]) -> Results:
    """The sweep's results, or its first failure (naming the job) raised."""
    for k, outcome in enumerate(outcomes, 1):
        if outcome.error is not None:
            error = outcome.error
            raise type(error)(
                f"sweep job {k} of {len(outcomes)} ({describe(outcome.request)}) failed: {error}"
            ) from error
    return Results(Result(o.report) for o in outcomes if o.report is not None)


def _settings(
    broker: str | None,
    backend: str | None,
    config: str | Path | None,
    timeout: float | None,
    env: Mapping[str, str] | None,
) -> Settings:
    return load_settings(
        {
            "broker_url": broker,
            "result_backend": backend,
            "config": None if config is None else str(config),
            "timeout": timeout,
        },
        os.environ if env is None else env,
    )


def _request(
    model: str | Model,
    samples: int | None,
    seed: int | None,
    params: Mapping[str, Any] | None,
    precision: float | None,
    output: str | None,
    max_samples: int | None,
    chunk_size: int | None,
    resume: str | None,
    *,
    local: bool,
    processes: int | None,
    sampler: str | None = None,
    replicates: int | None = None,
    beyond: Mapping[str, Any] | None = None,
    view: View = RUN,
) -> JobRequest:
    if isinstance(samples, float) and samples.is_integer():
        samples = int(samples)  # 1e6
    return JobRequest.asked(
        source_of(model) if resume is None else "",
        view,
        params=dict(params or {}),
        samples=samples,
        precision=precision,
        output=output,
        max_samples=max_samples,
        seed=seed,
        chunk_size=chunk_size,
        local=local,
        processes=processes,
        resume=resume,
        sampler=sampler,
        replicates=replicates,
        **(beyond or {}),
    )


def _beyond(
    hist: Mapping[str, Sequence[Any]] | None,
    quantiles: Sequence[float | tuple[str, float]] | None,
    exceed: Mapping[str, float | Sequence[float]] | None,
) -> dict[str, Any]:
    """The request's histograms, quantiles and exceedances from the API's arguments."""
    histograms = []
    for output, spec in (hist or {}).items():
        if not isinstance(spec, Sequence) or len(spec) not in (3, 4):
            raise UsageError(f"hist of {output}: (low, high, bins) or (low, high, bins, 'log')")
        if len(spec) == 4 and spec[3] != "log":
            raise UsageError(f"hist of {output}: the fourth item is 'log', for log-spaced bins")
        histograms.append(
            HistogramSpec(output, float(spec[0]), float(spec[1]), int(spec[2]), len(spec) == 4)
        )
    levels = tuple(q if isinstance(q, tuple) else (None, q) for q in quantiles or ())
    thresholds = tuple(
        (output, float(t))
        for output, given in (exceed or {}).items()
        for t in (given if isinstance(given, Sequence) else [given])
    )
    return {"histograms": tuple(histograms), "quantiles": levels, "exceed": thresholds}


def source_of(model: str | Model) -> str:
    """How the hub names ``model``: its installed name, or where its module lives."""
    if isinstance(model, str):
        return model
    if not isinstance(model, Model):
        raise UsageError(f"a model is a name or an @mcpi.model, not {type(model).__name__}")
    if registry.installed().get(model.name) is model:
        return model.name
    module = inspect.getmodule(model.function)
    if module is not None:
        for attribute, value in vars(module).items():
            if value is model:
                if module.__name__ != "__main__":
                    return f"{module.__name__}:{attribute}"
                path = getattr(module, "__file__", None)
                if path:
                    return f"{Path(path).resolve()}:{attribute}"
    raise UsageError(
        f"model {model.name} must be installed, or defined at the top of a module or file "
        "(pool processes load it from there)"
    )
