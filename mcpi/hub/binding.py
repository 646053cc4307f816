"""A job's model, as the hub holds it: the model, its call, and where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mcpi import models
from mcpi.core.antithetic import antithetic_design, antithetic_gain, replicate_antithetic_gain
from mcpi.core.control import control_design, control_estimate, replicate_control_estimate
from mcpi.core.design import runnable
from mcpi.core.distribution import (
    ExceedanceEstimate,
    HistogramResult,
    QuantileEstimate,
    exceedance_estimate,
    histogram_result,
    quantile_estimate,
)
from mcpi.core.exact import OutputEstimate, output_estimate, replicate_estimate
from mcpi.core.model import Model, ModelCall, ModelError
from mcpi.core.sampler import DEFAULT_REPLICATES, MC, RQMC, Sampler
from mcpi.core.sensitivity import Sensitivity, design_model, input_names, sobol_indices
from mcpi.core.tallies import Exceedance, Histogram, Tallies, Tally
from mcpi.errors import UsageError


@dataclass
class Distribution:
    """A job's answers beyond the mean (:mod:`mcpi.core.distribution`)."""

    histograms: list[HistogramResult] = field(default_factory=list)
    quantiles: list[QuantileEstimate] = field(default_factory=list)
    exceedances: list[ExceedanceEstimate] = field(default_factory=list)


@dataclass(frozen=True)
class BoundModel:
    """A model with its parameters bound: what a model job runs.

    ``source`` is how the user named it: an installed model's name, or a
    ``FILE.py:NAME`` / ``MODULE:NAME`` spec that only the local pool can run.
    ``output`` is the index of the output a precision target applies to. A job of
    Sobol' indices (``call.sensitivity``) runs the model's Saltelli design
    (:mod:`mcpi.core.sensitivity`): ``model`` is the design, ``inputs`` the names of
    the model's uniforms.
    """

    model: Model
    call: ModelCall
    source: str
    output: int = 0
    inputs: tuple[str, ...] = ()
    #: Of a job with a control variate (``call.control``): the control's known mean, and
    #: the model's own outputs (the design's first; the control and products follow).
    control_mean: float | None = None
    own_outputs: tuple[str, ...] = ()

    @property
    def local_only(self) -> bool:
        return models.is_local_spec(self.source)

    @property
    def exact(self) -> dict[str, float]:
        return self.model.exact_values(self.call.kwargs)

    def binary(self, output: int) -> float | None:
        """The value c of output ``output`` if its samples are only 0 or c, else None."""
        return self.model.binary.get(self.call.outputs[output])

    def index(self, output: str) -> int:
        """The position of output ``output`` (UsageError naming the outputs if none)."""
        outputs = self.call.outputs
        if output not in outputs:
            raise no_output(self.call.name, output, outputs)
        return outputs.index(output)

    def tallies(self, asked: Mapping[str, Any], sampler: Sampler) -> Tallies:
        """What a job asked as ``asked`` (its record's request) counts beyond the moments:
        one histogram an output (the request's ``--hist``, else the model's declared
        ``bins``), then each exceedance. A quantile needs its output's histogram."""
        outputs = self.call.outputs
        histograms: dict[int, Histogram] = {}
        for name, declared in self.model.bins.items():
            histograms[outputs.index(name)] = Histogram(outputs.index(name), *declared)
        for spec in asked.get("histograms", []):
            at = self.index(spec["output"])
            histograms[at] = Histogram(at, spec["low"], spec["high"], spec["bins"], spec["log"])
        for quantile in asked.get("quantiles", []):
            name = quantile["output"]
            if self.index(name) not in histograms:
                raise UsageError(
                    f"a quantile of {name} is read from its histogram: give one, "
                    f"--hist {name}=LO:HI:BINS (or declare bins= on the model)"
                )
        exceed = [
            Exceedance(self.index(e["output"]), e["threshold"]) for e in asked.get("exceed", [])
        ]
        items: tuple[Tally, ...] = (*(histograms[k] for k in sorted(histograms)), *exceed)
        if items and self.call.antithetic:
            raise UsageError(
                "histograms, quantiles and exceedances count single samples, not antithetic "
                "pairs' means: drop --antithetic"
            )
        if items and sampler is MC and self.model.chunk_sums is not None:
            raise UsageError(
                f"model {self.call.name} counts its plain Monte Carlo samples without drawing "
                "them: for histograms, quantiles or exceedances, --sampler rqmc"
            )
        try:
            return Tallies(items)
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    def distribution(
        self,
        sums: tuple[int, ...],
        samples: int,
        sampler: Sampler,
        tallies: Tallies,
        asked: Mapping[str, Any],
    ) -> Distribution:
        """The histograms, quantiles and exceedance probabilities of a job's counts."""
        outputs = self.call.outputs
        group = 2 * len(outputs) + tallies.slots
        if isinstance(sampler, RQMC):
            groups, points = sampler.groups(sums, group), sampler.points(samples)
        else:
            groups, points = [sums], samples
        found = Distribution()
        by_output: dict[int, tuple[Histogram, list[tuple[int, ...]]]] = {}
        for tally, at in zip(tallies.items, tallies.offsets(len(outputs)), strict=True):
            counts = [g[at : at + tally.slots] for g in groups]
            name = outputs[tally.output]
            if isinstance(tally, Histogram):
                pooled = [sum(column) for column in zip(*counts, strict=True)]
                found.histograms.append(histogram_result(name, tally, pooled))
                by_output[tally.output] = (tally, counts)
            else:
                per_group = [c[0] for c in counts]
                found.exceedances.append(exceedance_estimate(name, tally, per_group, points))
        for quantile in asked.get("quantiles", []):
            histogram, counts = by_output[self.index(quantile["output"])]
            found.quantiles.append(
                quantile_estimate(quantile["output"], quantile["p"], histogram, counts, points)
            )
        return found

    def estimates(
        self, sums: tuple[int, ...], samples: int, sampler: Sampler = MC, group: int = 0
    ) -> list[OutputEstimate]:
        """Each output's estimate from the job's exact sums (``group`` integers per
        replicate; default: the moments alone): the report's numbers. Under randomized
        QMC, from the replicates' means; else from all samples (Wilson's interval for a
        binary output)."""
        exact = self.exact
        outputs = self.call.outputs
        if self.call.control is not None:
            return self._controlled(sums, samples, sampler, group or 2 * len(outputs))
        if self.call.antithetic:
            return self._paired(sums, samples, sampler, group or 2 * len(outputs))
        if isinstance(sampler, RQMC):
            points = sampler.points(samples)
            group = group or 2 * len(outputs)
            return [
                replicate_estimate(name, points, sampler.pairs(sums, group, j), exact.get(name))
                for j, name in enumerate(outputs)
            ]
        return [
            output_estimate(
                name, samples, sums[2 * j], sums[2 * j + 1], exact.get(name), binary=self.binary(j)
            )
            for j, name in enumerate(outputs)
        ]

    def _controlled(
        self, sums: tuple[int, ...], samples: int, sampler: Sampler, group: int
    ) -> list[OutputEstimate]:
        """Each of the model's own outputs, its control regressed out
        (:mod:`mcpi.core.control`): the design's sums hold each output's (Σx, Σx²), the
        control's (Σy, Σy²), then each output's (Σxy, Σ(xy)²)."""
        control, mean = self.call.control, self.control_mean
        assert control is not None and mean is not None
        k = len(self.own_outputs)
        exact = self.exact

        def five(part: tuple[int, ...], j: int) -> tuple[int, int, int, int, int]:
            own, of_control, product = 2 * j, 2 * k, 2 * (k + 1 + j)
            return (part[own], part[own + 1], part[of_control], part[of_control + 1], part[product])

        if isinstance(sampler, RQMC):
            parts = sampler.groups(sums, group)
            points = sampler.points(samples)
            return [
                replicate_control_estimate(
                    name, points, [five(p, j) for p in parts], mean, control, exact.get(name)
                )
                for j, name in enumerate(self.own_outputs)
            ]
        found = []
        for j, name in enumerate(self.own_outputs):
            sx, sxx, sy, syy, sxy = five(sums, j)
            found.append(
                control_estimate(
                    name, samples, (sx, sxx), (sy, syy), sxy, mean, control, exact.get(name)
                )
            )
        return found

    def _paired(
        self, sums: tuple[int, ...], samples: int, sampler: Sampler, group: int
    ) -> list[OutputEstimate]:
        """Each of the model's own outputs from its antithetic pairs' means
        (:mod:`mcpi.core.antithetic`), with what the pairs gained: the design's sums hold
        each output's pair means' (Σx, Σx²), then each output's (Σ, Σ²) at u alone."""
        k = len(self.own_outputs)
        exact = self.exact
        if isinstance(sampler, RQMC):
            points = sampler.points(samples)
            found = []
            for j, name in enumerate(self.own_outputs):
                pairs = sampler.pairs(sums, group, j)
                estimate = replicate_estimate(name, points, pairs, exact.get(name))
                singles = sampler.pairs(sums, group, k + j)
                found.append(replicate_antithetic_gain(estimate, points, singles, pairs))
            return found
        return [
            antithetic_gain(
                output_estimate(name, samples, sums[2 * j], sums[2 * j + 1], exact.get(name)),
                samples,
                (sums[2 * (k + j)], sums[2 * (k + j) + 1]),
                (sums[2 * j], sums[2 * j + 1]),
            )
            for j, name in enumerate(self.own_outputs)
        ]

    def indices(
        self, sums: tuple[int, ...], samples: int, sampler: Sampler, group: int
    ) -> Sensitivity | None:
        """A design job's Sobol' indices from its exact sums (None for any other job)."""
        if self.call.sensitivity is None:
            return None
        assert isinstance(sampler, RQMC)
        return sobol_indices(self.call.sensitivity, self.inputs, sums, samples, sampler, group)

    def sampler(self, kind: str, replicates: int | None = None) -> Sampler:
        """The sampler a job of this model runs under, asked for as ``kind`` (``auto``,
        ``mc`` or ``rqmc``): ``auto`` is randomized QMC for a model of uniforms, plain Monte
        Carlo for one that takes a generator. Refused in one line if it cannot be."""
        takes_uniforms = self.model.uniform is not None
        if kind == "auto":
            kind = RQMC.kind if takes_uniforms else MC.kind
        if kind == MC.kind and self.call.sensitivity is not None:
            raise UsageError(
                "Sobol' indices take their intervals from randomized QMC's replicates: "
                "drop --sampler mc"
            )
        if kind == MC.kind:
            return MC
        if kind != RQMC.kind:
            raise UsageError(f"no sampler {kind!r} (auto, mc or rqmc)")
        if not takes_uniforms:
            raise UsageError(
                f"model {self.call.name} takes a generator (rng, n): it runs plain Monte Carlo "
                "only (declare dims=, and a function of u, for randomized QMC)"
            )
        try:
            return RQMC(replicates or DEFAULT_REPLICATES, self.model.dimension(self.call.kwargs))
        except (ModelError, ValueError) as exc:
            raise UsageError(str(exc)) from None

    def record(self) -> dict[str, Any]:
        """What the job record keeps of the model (to resume it with the same code)."""
        return self.call.to_json() | {"source": self.source}

    @property
    def rate_key(self) -> str:
        """What a rate measured for this model depends on: its code and parameters."""
        params = ",".join(f"{k}={v!r}" for k, v in self.call.params)
        key = f"model {self.call.name}@{self.call.version}:{self.call.digest} {params}".rstrip()
        if self.call.sensitivity is not None:  # d + 2 evaluations a point
            key += f" design=sobol:{self.call.sensitivity}"
        elif self.call.control is not None:  # the control's evaluation too
            key += f" design=control:{self.call.control}"
        elif self.call.antithetic:  # two evaluations a sample
            key += " design=antithetic"
        return key


def bind(
    source: str,
    params: dict[str, Any] | None = None,
    output: str | None = None,
    recorded: dict[str, Any] | None = None,
    sensitivity: bool = False,
    control: str | None = None,
    antithetic: bool = False,
) -> BoundModel:
    """Find the model ``source`` names and bind ``params`` (or a recorded job's call);
    with ``sensitivity``, for the Sobol' indices of ``output`` (default: the first); with
    ``control`` or ``antithetic``, to run the design of that variance reduction.

    A resumed job (``recorded``) must find the very code it started with.
    """
    try:
        model = models.find(source)
        base = model
        if recorded is not None:
            call = ModelCall.from_json({k: v for k, v in recorded.items() if k != "source"})
            try:
                model = runnable(model, call)
            except ModelError as exc:
                raise UsageError(f"cannot resume: {exc}") from None
        else:
            call = model.call(params or {})
            if control is not None and antithetic:
                raise ModelError(
                    "one variance reduction at a time: --control or --antithetic, not both"
                )
            if sensitivity:
                analysed = output or model.outputs[0]
                model = design_model(model, analysed, call.kwargs)
                call = replace(call, outputs=model.outputs, sensitivity=analysed)
            elif control is not None:
                if control not in model.controls:
                    declared = ", ".join(model.controls) or "none"
                    raise ModelError(
                        f"model {model.name} has no control {control!r} (its controls: {declared})"
                    )
                model = control_design(model, model.controls[control], call.kwargs)
                call = replace(call, outputs=model.outputs, control=control)
            elif antithetic:
                model = antithetic_design(model)
                call = replace(call, outputs=model.outputs, antithetic=True)
        inputs = input_names(base, call.kwargs) if call.sensitivity is not None else ()
        mean = (
            base.controls[call.control].known_mean(call.kwargs)
            if call.control is not None
            else None
        )
    except ModelError as exc:
        raise UsageError(str(exc)) from None
    if call.sensitivity is not None:
        return BoundModel(model, call, source, 0, inputs)
    # The model's own outputs: a design's come first, its terms after.
    own = base.outputs
    if output is not None and output not in own:
        raise no_output(base.name, output, own)
    index = own.index(output) if output is not None else 0
    if call.control is not None or call.antithetic:
        model = replace(model, exact=base.exact)  # the own outputs' exact answers, shown
        return BoundModel(model, call, source, index, control_mean=mean, own_outputs=own)
    return BoundModel(model, call, source, index)


def no_output(model: str, output: str, outputs: tuple[str, ...]) -> UsageError:
    """The one-line refusal of an output a model does not have."""
    return UsageError(f"model {model} has no output {output!r} (its outputs: {', '.join(outputs)})")
