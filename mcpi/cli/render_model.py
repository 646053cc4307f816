"""Rendering a model job's report (``mcpi-hub run``): text, or JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mcpi import __version__
from mcpi.cli.render import (
    chunking_json,
    chunking_text,
    decimals_for,
    hosts_json,
    stages_text,
    work_lines,
)
from mcpi.core.exact import OutputEstimate
from mcpi.core.model import Model
from mcpi.core.precision import ModelPrecision
from mcpi.hub.report import JobReport


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
    return lines


def model_as_text(report: JobReport) -> str:
    assert report.model is not None, "a model job's report"
    block = report.model["block"]
    lines = [f"model {model_line(report.model)}"]
    for output in report.outputs:
        lines += output_lines(output)
    lines += [
        f"{report.darts:,} samples; seed {report.seed}; job {report.job_id}",
        f"{report.chunks:,} chunk(s) of {report.chunk_size:,}{chunking_text(report)}, blocks of "
        f"{block:,}" + stages_text(report, "samples"),
        f"wall {report.wall_seconds:.3g} s, {report.darts_per_second:.3g} samples/s "
        f"on the {report.ran_on}",
    ]
    return "\n".join(lines + work_lines(report, "samples")) + "\n"


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
    return entry


def model_as_json(report: JobReport) -> dict[str, Any]:
    assert report.model is not None, "a model job's report"
    precision = report.precision
    return {
        "model": report.model["name"],
        "params": report.model["params"],
        "version": report.model["version"],
        "digest": report.model["digest"],
        "block": report.model["block"],
        "samples": report.darts,
        "seed": report.seed,
        "job_id": report.job_id,
        "outputs": {o.name: output_json(o) for o in report.outputs},
        "resumed": report.resumed,
        "chunks": report.chunks,
        "chunk_size": report.chunk_size,
        "chunking": chunking_json(report),
        "stages": [
            {"first": s.first, "samples": s.darts, "chunk_size": s.chunk_size}
            for s in report.stages
        ],
        "precision": {
            "half_width": precision.half_width,
            "output": report.outputs[precision.output].name,
            "max_samples": precision.max_samples,
            "reached": report.precision_reached,
        }
        if isinstance(precision, ModelPrecision)
        else None,
        "wall_seconds": report.wall_seconds,
        "samples_per_second": report.darts_per_second,
        "thrown_samples": report.thrown_darts,
        "mode": report.mode,
        "ran_on": report.ran_on,
        "hosts": hosts_json(report, "samples"),
        "duplicates": report.duplicates,
        "hub_version": __version__,
        "worker_versions": report.worker_versions,
        "notes": report.notes,
    }


def _model_entry(model: Model) -> dict[str, Any]:
    return {
        "outputs": list(model.outputs),
        "params": {
            name: {"type": p.kind.__name__, "default": p.default}
            for name, p in model.params.items()
        },
        "exact": model.exact_values(model.bind({}))
        if all(p.default is not None for p in model.params.values())
        else None,
        "block": model.block,
        "version": model.version,
        "digest": model.digest,
        "description": model.description,
    }


def _holders(name: str, workers: Mapping[str, dict[str, Any]]) -> dict[str, str | None]:
    """Each worker's version of model ``name`` ("version:digest"), None if it lacks it."""
    held: dict[str, str | None] = {}
    for node, info in sorted(workers.items()):
        found = (info.get("models") or {}).get(name)
        held[node] = f"{found.get('version')}:{found.get('digest')}" if found else None
    return held


def models_as_json(
    installed: Mapping[str, Model],
    broken: Mapping[str, str],
    workers: Mapping[str, dict[str, Any]] | None,
) -> dict[str, Any]:
    entries = {}
    for name, model in installed.items():
        entry = _model_entry(model)
        if workers is not None:
            entry["workers"] = _holders(name, workers)
        entries[name] = entry
    return {
        "models": entries,
        "broken": dict(broken),
        "workers": None if workers is None else sorted(workers),
    }


def models_as_text(
    installed: Mapping[str, Model],
    broken: Mapping[str, str],
    workers: Mapping[str, dict[str, Any]] | None,
) -> str:
    lines = []
    for name, model in installed.items():
        entry = _model_entry(model)
        params = ", ".join(
            f"{p}={spec['default']!r}" if spec["default"] is not None else f"{p} ({spec['type']})"
            for p, spec in entry["params"].items()
        )
        exact = ", ".join(f"{k} = {v!r}" for k, v in (entry["exact"] or {}).items())
        lines.append(f"{name}  version {model.version} ({model.digest})  {model.description}")
        lines.append(f"  outputs: {', '.join(model.outputs)}; block {model.block:,} samples")
        if params:
            lines.append(f"  params: {params}")
        if exact:
            lines.append(f"  exact: {exact}")
        if workers is not None:
            ours = f"{model.version}:{model.digest}"
            held = _holders(name, workers)
            same = [node for node, v in held.items() if v == ours]
            other = [f"{node} ({v})" for node, v in held.items() if v is not None and v != ours]
            lacking = [node for node, v in held.items() if v is None]
            lines.append(f"  on {len(same)} of {len(held)} worker(s) at this version")
            if other:
                lines.append(f"  OTHER CODE on: {', '.join(other)}")
            if lacking:
                lines.append(f"  MISSING on: {', '.join(lacking)}")
    for name, reason in broken.items():
        lines.append(f"{name}  BROKEN: {reason}")
    if workers is not None:
        on_workers = {m for info in workers.values() for m in (info.get("models") or {})}
        extra = sorted(on_workers - set(installed))
        if extra:
            lines.append(f"on workers but not on this hub: {', '.join(extra)}")
        if not workers:
            lines.append("no worker answered")
    return "\n".join(lines) + "\n"
