"""Rendering a job's report, text or JSON: one renderer, π's report its ``estimate`` view.

Every job is a model's (π is the model ``pi``); what ``run`` prints is the model's
outputs, what ``estimate`` prints is the same report in π's words: its one output as π
with the hit count, sizes in darts. The lines and keys both views share are built
once, in the view's unit.
"""

from __future__ import annotations

import math
from typing import Any

from mcpi import __version__
from mcpi.cli.render import decimals_for, table
from mcpi.core.exact import OutputEstimate, successes_of
from mcpi.core.sampler import RQMC
from mcpi.core.sensitivity import IndexEstimate, Sensitivity
from mcpi.hub.binding import Distribution
from mcpi.hub.records import Stage
from mcpi.hub.report import JobReport
from mcpi.hub.request import ESTIMATE


def as_text(report: JobReport) -> str:
    """The job's report as ``run`` prints it, or ``estimate`` for π."""
    unit = report.view.unit
    if report.view is ESTIMATE:
        head, size, blocks = _pi_lines(report)
    elif report.sensitivity is not None:
        head, size, blocks = _sensitivity_lines(report, report.sensitivity)
    else:
        head = [f"model {model_line(report.model)}"]
        for output in report.outputs:
            head += output_lines(output) + distribution_lines(report.distribution, output.name)
        size = (
            f"{report.samples:,} samples{sampler_text(report)}; seed {report.seed}; "
            f"job {report.job_id}"
        )
        blocks = (
            "" if isinstance(report.sampler, RQMC) else f", blocks of {report.model['block']:,}"
        )
    lines = [
        *head,
        size,
        f"{report.chunks:,} chunk(s) of {report.chunk_size:,}{chunking_text(report)}{blocks}"
        + stages_text(report),
        f"wall {report.wall_seconds:.3g} s, {report.samples_per_second:.3g} {unit}/s "
        f"on the {report.ran_on}",
    ]
    return "\n".join(lines + work_lines(report)) + "\n"


def _pi_lines(report: JobReport) -> tuple[list[str], str, str]:
    (pi,) = report.outputs
    d = decimals_for(pi.std_error)
    interval = f"95% CI {pi.ci_low:.{d}f} … {pi.ci_high:.{d}f}"
    head = [
        f"π ≈ {pi.mean:.{d}f} ± {pi.half_width:.2g}  ({interval})",
        f"error vs π: {pi.error:+.2g} ({pi.error_in_std_errors:+.2f} standard errors)",
    ]
    size = (
        f"{report.samples:,} darts, {pi.successes:,} hits; seed {report.seed}; job {report.job_id}"
    )
    return head, size, ""


def _sensitivity_lines(report: JobReport, found: Sensitivity) -> tuple[list[str], str, str]:
    head = [
        f"Sobol' indices of {found.output}, model {model_line(report.model)}",
        f"mean {found.mean:.6g}, variance {found.variance:.6g} (of f over the design's A and B)",
        "",
    ]
    # One number of decimals for the table: about a hundredth of the smallest error.
    errors = [e.std_error for i in found.inputs for e in (i.first, i.total) if e.std_error]
    d = max(4, min(decimals_for(min(errors, default=0.0)), 8))
    rows = [(i.name, *_index_cells(i.first, d), *_index_cells(i.total, d)) for i in found.inputs]
    head += table(("input", "first-order", "95% CI", "total", "95% CI"), rows)
    head.append("")
    size = (
        f"{found.points:,} design points × {len(found.inputs) + 2} = "
        f"{found.evaluations:,} model evaluations"
        f"{sampler_text(report)}; seed {report.seed}; job {report.job_id}"
    )
    return head, size, ""


def _index_cells(index: IndexEstimate, d: int) -> tuple[str, str]:
    return (
        f"{index.value:.{d}f} ± {index.half_width:.2g}",
        f"{index.ci_low:.{d}f} … {index.ci_high:.{d}f}",
    )


def model_line(model: dict[str, Any]) -> str:
    """``call (S=100.0, K=100.0) v1`` : a model call in a few words."""
    params = ", ".join(f"{k}={v!r}" for k, v in sorted(model.get("params", {}).items()))
    return f"{model['name']}{f' ({params})' if params else ''}, version {model['version']}"


def output_lines(output: OutputEstimate) -> list[str]:
    d = decimals_for(output.std_error)
    lines = [
        f"{output.name} ≈ {output.mean:.{d}f} ± {output.half_width:.2g}  "
        f"(95% CI {output.ci_low:.{d}f} … {output.ci_high:.{d}f}; "
        f"std error {output.std_error:.3g})"
    ]
    if output.exact is not None and output.error is not None:
        sigmas = output.error_in_std_errors
        lines.append(
            f"  exact {output.exact!r}: error {output.error:+.2g} ({sigmas:+.2f} standard errors)"
        )
    if output.variance_reduction is not None:
        lines.append(
            f"  variance reduction against plain Monte Carlo: {output.variance_reduction:.3g}x "
            f"(worth {worth(output):.3g} plain Monte Carlo samples)"
        )
    if output.control is not None:
        lines.append(
            f"  control variate {output.control}: coefficient {output.control_beta:.4g}, "
            f"variance cut {output.control_gain:.3g}x by the control"
        )
    if output.antithetic_gain is not None:
        cut = f"  antithetic pairs: variance cut {output.antithetic_gain:#.3g}x against their "
        if output.replicates is None:
            lines.append(
                f"{cut}first points alone ({output.antithetic_gain / 2:#.3g}x per model evaluation)"
            )
        else:
            lines.append(f"{cut}first points alone, for twice the model evaluations")
    return lines


def distribution_lines(found: Distribution, name: str) -> list[str]:
    """An output's exceedances, quantiles and histogram, a line each."""
    lines = []
    for e in (e for e in found.exceedances if e.output == name):
        d = decimals_for(e.std_error) if e.std_error else 6
        lines.append(
            f"  P({name} > {e.threshold:g}) ≈ {e.probability:.{d}f}  "
            f"(95% CI {e.ci_low:.{d}f} … {e.ci_high:.{d}f}; std error {e.std_error:.3g})"
        )
    for q in (q for q in found.quantiles if q.output == name):
        line = (
            f"  {_level(q.p)} quantile ≈ {_edge(q.value)}  "
            f"(95% CI {_edge(q.ci_low)} … {_edge(q.ci_high)})"
        )
        if q.refined:
            line += ": refined by a second pass with finer bins"
        elif q.bin_limited:
            line += (
                ": as narrow as the bins allow (--refine, or finer --hist bins there, "
                "would narrow it)"
            )
        lines.append(line)
    for h in (h for h in found.histograms if h.output == name):
        kind = "log-spaced bins" if h.log else "bins"
        lines.append(
            f"  histogram: {len(h.counts)} {kind} in [{h.edges[0]:g}, {h.edges[-1]:g}), "
            f"{h.under:,} sample(s) below, {h.over:,} above (--json or --plot: the counts)"
        )
    return lines


def _level(p: float) -> str:
    """``99%``, ``99.9%``, ``50%``."""
    return f"{100 * p:.10g}%"


def _edge(value: float) -> str:
    if value == -math.inf:
        return "below the histogram"
    if value == math.inf:
        return "above the histogram"
    return f"{value:.6g}"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def distribution_json(found: Distribution, name: str) -> dict[str, Any]:
    """An output's histogram, quantiles and exceedances for ``--json`` (a quantile or
    bound outside the histogram's range is null)."""
    entry: dict[str, Any] = {}
    for h in (h for h in found.histograms if h.output == name):
        entry["histogram"] = {
            "edges": list(h.edges),
            "counts": list(h.counts),
            "under": h.under,
            "over": h.over,
            "log": h.log,
        }
    quantiles = [q for q in found.quantiles if q.output == name]
    if quantiles:
        entry["quantiles"] = [
            {
                "p": q.p,
                "value": _finite(q.value),
                "ci95": [_finite(q.ci_low), _finite(q.ci_high)],
                "bin_limited": q.bin_limited,
                "refined": q.refined,
            }
            for q in quantiles
        ]
    exceedances = [e for e in found.exceedances if e.output == name]
    if exceedances:
        entry["exceedances"] = [
            {
                "threshold": e.threshold,
                "probability": e.probability,
                "std_error": e.std_error,
                "ci95": [e.ci_low, e.ci_high],
            }
            | ({"exceeded": e.exceeded} if e.exceeded is not None else {})
            for e in exceedances
        ]
    return entry


def worth(output: OutputEstimate) -> float:
    """How many plain Monte Carlo samples a randomized QMC answer was worth."""
    assert output.variance_reduction is not None
    # An antithetic sample is two model evaluations, and its reduction is per evaluation.
    evaluations = output.samples * (2 if output.antithetic_gain is not None else 1)
    return evaluations * output.variance_reduction


def sampler_text(report: JobReport) -> str:
    """`` (randomized QMC: 16 replicates of 65,536 points)``, or nothing for plain MC."""
    sampler = report.sampler
    if not isinstance(sampler, RQMC):
        return ""
    points = sampler.points(report.samples)
    return (
        f" (randomized QMC, scrambled Sobol': {sampler.replicates} replicates of "
        f"{points:,} points, {sampler.dims} dimension(s))"
    )


def work_lines(report: JobReport) -> list[str]:
    """What every job report ends with: a resumed run's share, the hosts' table, notes."""
    unit = report.view.unit
    lines = []
    if report.earlier_samples:
        lines.append(
            f"resumed: this run threw {report.thrown_samples:,} {unit}, an earlier one "
            f"{report.earlier_samples:,}; rates and hosts are this run's"
        )
    lines.append("")
    header = ("host", unit, "chunks", f"{unit}/s", f"per-slot {unit}/s")
    rows = [
        (
            h.host,
            f"{h.darts:,}",
            f"{h.chunks:,}",
            f"{h.darts_per_second:.3g}",
            f"{h.darts_per_busy_second:.3g}",
        )
        for h in report.hosts
    ]
    lines += table(header, rows)
    if report.duplicates:
        lines.append(
            f"\n{report.duplicates} duplicate chunk result(s) were absorbed (counted once)"
        )
    lines += [f"note: {note}" for note in report.notes]
    return lines


def stages_text(report: JobReport) -> str:
    if report.precision is None:
        return ""
    looks = " + ".join(f"{s.samples:.3g}" for s in report.stages)
    return f"; {len(report.stages)} stage(s) of {report.view.unit}: {looks}"


def chunking_text(report: JobReport) -> str:
    if report.chunking is None:
        return " (as first planned)" if report.resumed else " (--chunk-size)"
    return f" (automatic: {report.chunking.bound_by})"


def as_json(report: JobReport) -> dict[str, Any]:
    """The job's report as one JSON object: ``run``'s keys, or ``estimate``'s for π.

    The keys that count things are named in the view's unit (``samples``,
    ``samples_per_second``, ... or ``darts``, ...).
    """
    unit = report.view.unit
    estimate = report.view is ESTIMATE
    precision = report.precision
    stages = []
    for stage in report.stages:
        entry: dict[str, Any] = {"first": stage.first, unit: stage.samples}
        entry["chunk_size"] = stage.chunk_size
        if estimate:
            entry["hits"] = _hits(stage, report.outputs[0])
        stages.append(entry)
    target: dict[str, Any] = {}
    if report.view.names_output:
        target["output"] = report.targeted.name
    if report.target_quantile is not None:
        target["quantile"] = report.target_quantile.p
    shared = {
        "seed": report.seed,
        "job_id": report.job_id,
        "resumed": report.resumed,
        "chunks": report.chunks,
        "chunk_size": report.chunk_size,
        "chunking": chunking_json(report),
        "stages": stages,
        "precision": None
        if precision is None
        else {
            "half_width": precision.half_width,
            **target,
            f"max_{unit}": precision.bound,
            "reached": report.precision_reached,
        },
        "wall_seconds": report.wall_seconds,
        f"{unit}_per_second": report.samples_per_second,
        f"thrown_{unit}": report.thrown_samples,
        "mode": report.mode,
        "ran_on": report.ran_on,
        "hosts": hosts_json(report),
        "duplicates": report.duplicates,
        "largest_message_bytes": report.largest_message or None,
        "hub_version": __version__,
        "worker_versions": report.worker_versions,
        "notes": report.notes,
    }
    sampler = report.sampler
    shared["sampler"] = (
        {
            "kind": sampler.kind,
            "replicates": sampler.replicates,
            "points_per_replicate": sampler.points(report.samples),
            "dims": sampler.dims,
        }
        if isinstance(sampler, RQMC)
        else {"kind": sampler.kind}
    )
    own: dict[str, Any]
    if report.sensitivity is not None:
        own = {
            "model": report.model["name"],
            "params": report.model["params"],
            "version": report.model["version"],
            "digest": report.model["digest"],
            "points": report.samples,
            "sensitivity": report.sensitivity.to_json(),
        }
    elif estimate:
        (pi,) = report.outputs
        own = {
            "pi": pi.mean,
            "std_error": pi.std_error,
            "ci95": [pi.ci_low, pi.ci_high],
            "half_width": pi.half_width,
            "error": pi.error,
            "darts": report.samples,
            "hits": pi.successes,
        }
    else:
        own = {
            "model": report.model["name"],
            "params": report.model["params"],
            "version": report.model["version"],
            "digest": report.model["digest"],
            "block": report.model["block"],
            "samples": report.samples,
            "outputs": {
                o.name: output_json(o) | distribution_json(report.distribution, o.name)
                for o in report.outputs
            },
        }
    return own | shared


def _hits(stage: Stage, pi: OutputEstimate) -> int | None:
    """A π stage's hits: the successes of the binary output ``pi`` (None: not counted)."""
    if stage.sums is None or pi.binary is None:
        return None
    return successes_of(stage.samples, stage.sums[0], stage.sums[1], pi.binary)


def output_json(output: OutputEstimate) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "mean": output.mean,
        "std_error": output.std_error,
        "ci95": [output.ci_low, output.ci_high],
        "variance": output.variance,
    }
    if output.exact is not None:
        entry["exact"] = output.exact
        entry["error"] = output.error
    if output.variance_reduction is not None:
        entry["variance_reduction"] = output.variance_reduction
        entry["worth_samples"] = worth(output)
    if output.control is not None:
        entry["control"] = {
            "name": output.control,
            "beta": output.control_beta,
            "variance_reduction": output.control_gain,
        }
    if output.antithetic_gain is not None:
        # Against the same points' f(u) alone, which took half the model evaluations.
        entry["antithetic"] = {"variance_reduction": output.antithetic_gain}
    return entry


def chunking_json(report: JobReport) -> dict[str, Any] | None:
    if report.chunking is None or report.capacity is None:
        return None  # given with --chunk-size
    return {
        "bound_by": report.chunking.bound_by,
        "rates": sorted({h.source for h in report.capacity.hosts}),
        "task_overhead_seconds": report.capacity.task_overhead,
    }


def hosts_json(report: JobReport) -> list[dict[str, Any]]:
    unit = report.view.unit
    return [
        {
            "host": h.host,
            unit: h.darts,
            "chunks": h.chunks,
            "busy_seconds": h.busy_seconds,
            f"{unit}_per_second": h.darts_per_second,
            f"{unit}_per_busy_second": h.darts_per_busy_second,
        }
        for h in report.hosts
    ]
