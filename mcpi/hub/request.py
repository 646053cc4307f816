"""What a user asks the hub for: a model, its size or precision target, seed, and where.

One request type for every job: π is the model ``pi``, which ``mcpi-hub estimate``
asks for in darts and reports as π (its :data:`ESTIMATE` view); ``mcpi-hub run``, the
API and sweeps ask for any model in samples (:data:`RUN`). The view changes the words
of the report, never what is computed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mcpi.core.tallies import Histogram
from mcpi.errors import UsageError


@dataclass(frozen=True)
class View:
    """How a job is asked for and reported: ``estimate`` (π, in darts and hits) or ``run``."""

    name: str
    #: What a sample is called: ``darts`` or ``samples``.
    unit: str
    #: The options that size a job, and bound a precision target.
    size_flag: str
    bound_flag: str
    #: A job's size when neither it nor a precision is given, and a precision's bound.
    default_samples: int
    default_max_samples: int
    #: The sampler unless the request names one: π's darts are plain Monte Carlo's
    #: positional stream; ``auto`` is randomized QMC wherever the model allows it.
    default_sampler: str

    @property
    def names_output(self) -> bool:
        """Whether the report names the output a precision applies to (π has one)."""
        return self.name == "run"

    @property
    def sensitivity(self) -> bool:
        """Whether the job estimates Sobol' indices (its samples: design points)."""
        return self.name == "sensitivity"


#: π in darts: 1e8 by default; a precision target bounded by about an hour of 2e8 darts/s.
ESTIMATE = View("estimate", "darts", "--darts", "--max-darts", 10**8, 10**12, "mc")
RUN = View("run", "samples", "--samples", "--max-samples", 10**6, 10**10, "auto")
#: Sobol' indices: 2^20 design points by default (16 replicates of 2^16), each d + 2
#: evaluations of the model; always randomized QMC, whose replicates give the intervals.
SENSITIVITY = View("sensitivity", "points", "--samples", "--max-samples", 1 << 20, 1 << 30, "rqmc")
VIEWS = {view.name: view for view in (ESTIMATE, RUN, SENSITIVITY)}


@dataclass(frozen=True)
class HistogramSpec:
    """A histogram the user asked for: ``bins`` bins of ``output`` in [low, high), of
    equal width or (``log``) ratio."""

    output: str
    low: float
    high: float
    bins: int
    log: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "low": self.low,
            "high": self.high,
            "bins": self.bins,
            "log": self.log,
        }


@dataclass(frozen=True)
class JobRequest:
    """What the user asked for; None means "choose for me".

    ``model`` is an installed model's name, or ``FILE.py:NAME`` / ``MODULE:NAME`` for
    the local pool. The job is ``samples`` samples (rounded up to whole blocks, or to
    the replicates times a power of two under randomized QMC), or with ``precision``
    runs until ``output``'s 95 % half-width (default: the first output's) is at most
    ``precision``, bounded by ``max_samples``. ``resume`` finishes a recorded job
    instead, as it was started: the rest is then unused.
    """

    model: str = "pi"
    params: Mapping[str, Any] = field(default_factory=dict)
    samples: int | None = None
    precision: float | None = None
    output: str | None = None
    max_samples: int | None = None
    seed: int | None = None
    chunk_size: int | None = None
    local: bool = False
    processes: int | None = None
    resume: str | None = None
    view: View = RUN
    #: ``auto`` (randomized QMC for a model of uniforms, else plain Monte Carlo), ``mc``
    #: or ``rqmc``, with its ``replicates`` (default 16, 64 with a precision); None: the
    #: view's default.
    sampler: str | None = None
    replicates: int | None = None
    #: Answers beyond the mean (:mod:`mcpi.core.distribution`): histograms, quantiles
    #: (output, p) — output None: ``output``'s, or the first — and exceedance
    #: probabilities (output, threshold).
    histograms: tuple[HistogramSpec, ...] = ()
    quantiles: tuple[tuple[str | None, float], ...] = ()
    exceed: tuple[tuple[str, float], ...] = ()
    #: A control variate the model declares, regressed out of every output's estimate
    #: (:mod:`mcpi.core.control`).
    control: str | None = None
    #: Whether each sample is an antithetic pair, u and 1 − u (:mod:`mcpi.core.antithetic`).
    antithetic: bool = False
    #: Whether a quantile the bins held back gets a second pass with finer bins inside
    #: its interval (:mod:`mcpi.hub.refine`).
    refine: bool = False
    #: The level P of the quantile of ``output`` a precision targets (``--output NAME@P``),
    #: or None: its mean.
    quantile_target: float | None = None

    @classmethod
    def asked(
        cls,
        model: str,
        view: View = RUN,
        *,
        samples: int | None = None,
        precision: float | None = None,
        max_samples: int | None = None,
        **fields: Any,
    ) -> JobRequest:
        """The request a user makes: the view's default size unless a precision is
        given, and then its default bound unless one is."""
        if precision is None and samples is None:
            samples = view.default_samples
        if precision is not None and max_samples is None:
            max_samples = view.default_max_samples
        if precision is None:
            max_samples = None  # a bound of nothing: ignored, as the CLI's checker says
        return cls(
            model,
            samples=samples,
            precision=precision,
            max_samples=max_samples,
            view=view,
            **fields,
        )

    def __post_init__(self) -> None:
        if self.output is not None and "@" in self.output:
            self._target_a_quantile(self.output)
        if self.view is SENSITIVITY and self.sampler not in (None, "auto", "rqmc"):
            raise UsageError(
                "Sobol' indices take their intervals from randomized QMC's replicates: "
                "drop --sampler mc"
            )
        if self.view is SENSITIVITY and (self.histograms or self.quantiles or self.exceed):
            raise UsageError(
                "Sobol' indices are of a mean: histograms, quantiles and "
                "exceedances are `mcpi-hub run`'s"
            )
        if self.view is ESTIMATE and self.sampler not in (None, "mc"):
            raise UsageError(
                "estimate counts π's darts by plain Monte Carlo: for randomized QMC, "
                "`mcpi-hub run pi --sampler rqmc`"
            )
        for _, p in self.quantiles:
            if not (isinstance(p, float | int) and 0 < p < 1):
                raise UsageError(f"a quantile's level is between 0 and 1, not {p!r}")
        for spec in self.histograms:
            try:
                Histogram(0, spec.low, spec.high, spec.bins, spec.log)
            except ValueError as exc:
                raise UsageError(f"--hist {spec.output}: {exc}") from None
        for _, threshold in self.exceed:
            if not math.isfinite(threshold):
                raise UsageError(f"an exceedance threshold is a finite number, not {threshold}")
        if self.quantile_target is not None and self.precision is None:
            raise UsageError(
                f"--output {self.output}@{self.quantile_target:g} names what --precision "
                "targets: give --precision H"
            )
        if self.refine and self.resume is not None:
            raise UsageError("--refine refines a new job's quantiles: drop it with --resume")
        if self.refine and not self.quantiles:
            raise UsageError("--refine refines quantiles: ask for one with --quantile")
        if self.resume is not None:
            return
        if self.precision is not None and self.samples is not None:
            raise UsageError("give samples or precision, not both")
        if self.precision is None and self.samples is None:
            raise UsageError("give the job's samples, or a precision")
        if self.precision is not None and self.max_samples is None:
            raise UsageError("a precision target needs its bound, max_samples")
        for name in ("samples", "max_samples", "chunk_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise UsageError(f"{name} must be a positive whole number, not {value!r}")
            if value is not None and value < 1:
                raise UsageError(f"{name} must be a positive whole number, not {value!r}")

    def _target_a_quantile(self, named: str) -> None:
        """``--output NAME@P``: a precision targets NAME's P quantile's interval, which the
        job reports with its histogram (added to the quantiles asked if not there)."""
        name, _, level = named.partition("@")
        try:
            p = float(level)
        except ValueError:
            p = math.nan
        if not (name and 0 < p < 1):
            raise UsageError(f"--output {named}: NAME@P names NAME's P quantile, 0 < P < 1")
        object.__setattr__(self, "output", name)
        object.__setattr__(self, "quantile_target", p)
        if (name, p) not in self.quantiles and (None, p) not in self.quantiles:
            object.__setattr__(self, "quantiles", (*self.quantiles, (name, p)))
