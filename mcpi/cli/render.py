"""Rendering what the hub reports besides a job (tuning, status, job records, hosts, models):
text, or JSON; and the formatting every renderer shares. A job's report is
:mod:`mcpi.cli.report`'s."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from mcpi.core.model import Model, ModelError
from mcpi.core.sensitivity import input_names
from mcpi.hub.records import DONE, JobRecord
from mcpi.hub.report import TuneReport
from mcpi.ops.hosts import HostResult
from mcpi.ops.snapshot import ClusterStatus


def decimals_for(std_error: float) -> int:
    """Decimals that show an estimate to about a hundredth of its standard error."""
    if not std_error or not math.isfinite(std_error):
        return 8
    return max(4, min(15, math.ceil(-math.log10(std_error)) + 2))


def table(
    header: Sequence[str], rows: Sequence[Sequence[str]], left: tuple[int, ...] = (0,)
) -> list[str]:
    """Aligned lines: columns ``left`` flush left, the others (numbers) flush right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(
            cell.ljust(w) if i in left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [header, *rows]
    ]


def tune_as_text(report: TuneReport) -> str:
    capacity, c = report.capacity, report.choice
    lines = [f"measured on the {report.ran_on}", ""]
    header = ("host", "slots", "per-slot darts/s", "source")
    rows = [(h.host, str(h.slots), f"{h.rate:.3g}", h.source) for h in capacity.hosts]
    lines += table(header, rows, left=(0, 3))
    lines += [
        f"all slots: {capacity.slots}, {capacity.rate:.3g} darts/s; "
        f"overhead per chunk {capacity.task_overhead * 1e3:.2g} ms of a slot",
        "",
        f"for {c.darts:,} darts: {c.chunks:,} chunk(s) of {c.chunk_size:,} (bound by {c.bound_by})",
        f"one chunk {c.chunk_seconds:.3g} s on the fastest slot, overhead "
        f"{c.overhead_fraction:.2%} of its time; {c.waves:,} wave(s)",
        f"expected wall {c.expected_seconds:.3g} s ({c.darts / c.expected_seconds:.3g} darts/s)",
    ]
    return "\n".join(lines) + "\n"


def tune_as_json(report: TuneReport) -> dict[str, Any]:
    capacity, c = report.capacity, report.choice
    return {
        "mode": report.mode,
        "ran_on": report.ran_on,
        "hosts": [
            {"host": h.host, "slots": h.slots, "darts_per_slot_second": h.rate, "source": h.source}
            for h in capacity.hosts
        ],
        "slots": capacity.slots,
        "darts_per_second": capacity.rate,
        "task_overhead_seconds": capacity.task_overhead,
        "darts": c.darts,
        "chunk_size": c.chunk_size,
        "chunks": c.chunks,
        "waves": c.waves,
        "bound_by": c.bound_by,
        "chunk_seconds": c.chunk_seconds,
        "overhead_fraction": c.overhead_fraction,
        "expected_seconds": c.expected_seconds,
    }


def status_as_text(status: ClusterStatus) -> str:
    lines = []
    for service in (status.broker, status.backend):
        if service.reachable:
            what = f"{service.product} {service.version}".strip() or "reachable"
            if service.tls:
                what += f", encrypted ({service.tls}"
                if service.certificate_expires is not None:
                    what += f", certificate valid until {service.certificate_expires:%Y-%m-%d}"
                what += ")"
            else:
                what += ", plain TCP: not encrypted"
            lines.append(f"{service.name:8} {service.where}: {what}")
        else:
            lines.append(f"{service.name:8} {service.where}: UNREACHABLE ({service.error})")
    if status.queue is not None:
        q = status.queue
        lines.append(
            f"queue    {q.name}: {q.ready:,} waiting, {status.unacknowledged:,} unacknowledged "
            f"(running or prefetched), {q.consumers} consumer(s)"
        )
    elif status.broker.reachable:
        lines.append("queue    mcpi: not declared yet (no worker has started)")
    lines.append("")
    rows = []
    for host, workers in status.by_host().items():
        for w in workers:
            rows.append(
                (
                    host,
                    w.node,
                    str(w.slots),
                    " ".join(f"{x:.2f}" for x in w.load) or "?",
                    f"{w.running}",
                    f"{w.prefetched}",
                    w.mcpi,
                    w.versions.get("celery", "?"),
                    w.versions.get("numpy", "?"),
                    w.kernel or "?",
                    w.exact or "?",
                    " ".join(f"{name}@{v}" for name, v in sorted(w.models.items())) or "-",
                )
            )
    if rows:
        header = (
            *("host", "worker", "slots", "load 1/5/15m", "running", "prefetched"),
            *("mcpi", "celery", "numpy", "kernel", "exact sums", "models"),
        )
        lines += table(header, rows, left=(0, 1, 3, 9, 10, 11))
        slots = sum(w.slots for w in status.workers)
        lines.append(
            f"\n{len(status.workers)} worker(s) on {len(status.by_host())} host(s), "
            f"{slots} slot(s); hub mcpi {status.hub_version}"
        )
    elif status.broker.reachable:
        lines.append("no worker answered")
    lines += [f"warning: version skew: {warning}" for warning in status.skew]
    now = datetime.now(UTC)
    lines += [
        f"warning: {warning}"
        for service in (status.broker, status.backend)
        if (warning := service.certificate_warning(now))
    ]
    lines += [
        f"warning: {w.node} counts darts with the {w.kernel} kernel (same counts, slower): "
        f"{w.kernel_note}"
        for w in status.workers
        if w.kernel_note
    ]
    lines += [
        f"warning: {w.node} takes model sums with the {w.exact} pass (same sums, slower): "
        f"{w.exact_note}"
        for w in status.workers
        if w.exact_note
    ]
    return "\n".join(lines) + "\n"


def jobs_as_text(records: Sequence[JobRecord]) -> str:
    if not records:
        return "no jobs recorded yet\n"
    rows = []
    for r in records:
        samples = r.counted[1]
        asked = (
            f"±{r.request['precision']:g}"
            if "precision" in r.request
            else f"{r.request['samples']:.3g}"
        )
        result = _record_result(r)
        # Samples of finished stages: a job cut off in its stage shows what it had done
        # only once resumed (its chunks are in the backend or the journal).
        done = f"{samples:.3g}" if samples else "-"
        rows.append(
            (r.id, r.created.replace("+00:00", "Z"), r.status, r.where, asked, done, result)
        )
    header = ("job", "started (UTC)", "status", "where", "asked", "counted", "result")
    lines = table(header, rows, left=(0, 1, 2, 3))
    if any(r.status != DONE for r in records):
        lines.append(
            "\nresume an unfinished job with: mcpi-hub estimate --resume JOB "
            "(a model's: mcpi-hub run --resume JOB)"
        )
    return "\n".join(lines) + "\n"


def _record_result(record: JobRecord) -> str:
    """A finished job's result in a few characters: π, or its model's first output."""
    if not record.result:
        return "-"
    indices = record.result.get("sensitivity")
    if isinstance(indices, dict):
        totals = {
            name: found.get("total", {}).get("value", math.nan)
            for name, found in (indices.get("inputs") or {}).items()
        }
        top = max(totals, key=lambda name: totals[name], default="-")
        return f"{record.kind}: {top} leads, ST {totals.get(top, math.nan):.3g}"
    outputs: dict[str, dict[str, Any]] = record.result.get("outputs") or {}
    for name, first in outputs.items():
        mean = first.get("mean", math.nan)
        if record.view == "estimate":
            return f"π {mean:.10f}"
        return f"{record.kind} {name} {mean:.6g}"
    return record.kind


def jobs_as_json(records: Sequence[JobRecord]) -> list[dict[str, Any]]:
    return [r.to_json() for r in records]


def hosts_as_text(action: str, results: Sequence[HostResult]) -> str:
    """A table for list/state/restart/drain; each host's output for logs and run."""
    if action == "list":
        rows = [
            (r.host, *(dict(r.details)[k] or "-" for k in ("address", "groups"))) for r in results
        ]
        return "\n".join(table(("host", "address", "groups"), rows, left=(0, 1, 2))) + "\n"
    if action in ("logs", "run"):
        lines = []
        for r in results:
            status = f"exit {r.exit_code}" if r.exit_code is not None else f"FAILED: {r.error}"
            lines.append(f"== {r.host} ({status})")
            lines += [
                text.rstrip("\n")
                for text in (r.output, r.error)
                if text.strip() and r.exit_code is not None
            ]
    else:
        rows = [(r.host, "ok" if r.ok else "FAILED", _host_detail(action, r)) for r in results]
        lines = table(("host", "result", "detail"), rows, left=(0, 1, 2))
    failed = sum(not r.ok for r in results)
    if failed:
        lines.append(f"\n{failed} of {len(results)} host(s) failed")
    return "\n".join(lines) + "\n"


def _host_detail(action: str, r: HostResult) -> str:
    if r.exit_code is None:
        return r.error
    details = dict(r.details)
    if action == "state":
        if details.get("LoadState") == "not-found" or not details.get("UnitFileState"):
            return "no worker unit"
        active = details.get("ActiveState") == "active"
        since = details.get("ActiveEnterTimestamp" if active else "InactiveEnterTimestamp")
        pid = details.get("MainPID", "0")
        return (
            f"{details.get('ActiveState')} ({details.get('SubState')}), "
            f"{details.get('UnitFileState')}, since {since or '-'}"
            + (f", pid {pid}" if pid != "0" else "")
            + f", {details.get('NRestarts', '0')} restart(s)"
        )
    if action == "drain":
        return (
            "worker stopped (warm shutdown) and disabled" if r.ok else (r.error or r.output).strip()
        )
    return (r.output or r.error).strip()


def hosts_as_json(action: str, results: Sequence[HostResult]) -> dict[str, Any]:
    return {
        "action": action,
        "ok": all(r.ok for r in results),
        "hosts": [
            {
                "host": r.host,
                "ok": r.ok,
                "exit_code": r.exit_code,
                "output": r.output,
                "error": r.error,
                "details": dict(r.details),
            }
            for r in results
        ],
    }


def _uniforms(model: Model) -> list[str] | None:
    """A model of uniforms' input names at its default parameters (None: it takes a
    generator, or its dimension needs parameters it has no default for)."""
    if model.uniform is None or any(p.default is None for p in model.params.values()):
        return None
    try:
        return list(input_names(model, model.bind({})))
    except ModelError:
        return None


def _model_entry(model: Model) -> dict[str, Any]:
    return {
        "outputs": list(model.outputs),
        "inputs": _uniforms(model),
        "controls": sorted(model.controls),
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
        if entry["inputs"] is not None:
            lines.append(
                f"  uniforms: {', '.join(entry['inputs'])} (randomized QMC by default; "
                f"`mcpi-hub sensitivity {name}` for their Sobol' indices)"
            )
        if model.controls:
            lines.append(
                f"  control variates: {', '.join(sorted(model.controls))} "
                f"(`mcpi-hub run {name} --control NAME`)"
            )
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
