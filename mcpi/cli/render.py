"""Rendering the hub's reports (jobs, tuning, status, job records): text, or JSON."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from mcpi import __version__
from mcpi.core.precision import ModelPrecision
from mcpi.hub.records import DONE, JobRecord
from mcpi.hub.report import JobReport, TuneReport
from mcpi.ops.hosts import HostResult
from mcpi.ops.snapshot import ClusterStatus, Service


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


def as_text(report: JobReport) -> str:
    e = report.estimate
    assert e is not None, "a π job's report"
    d = decimals_for(e.std_error)
    lines = [
        f"π ≈ {e.pi:.{d}f} ± {e.half_width:.2g}  (95% CI {e.ci_low:.{d}f} … {e.ci_high:.{d}f})",
        f"error vs π: {e.error:+.2g} ({e.error_in_std_errors:+.2f} standard errors)",
        f"{report.darts:,} darts, {e.hits:,} hits; seed {report.seed}; job {report.job_id}",
        f"{report.chunks:,} chunk(s) of {report.chunk_size:,}{chunking_text(report)}"
        + stages_text(report),
        f"wall {report.wall_seconds:.3g} s, {report.darts_per_second:.3g} darts/s "
        f"on the {report.ran_on}",
    ]
    return "\n".join(lines + work_lines(report, "darts")) + "\n"


def work_lines(report: JobReport, unit: str) -> list[str]:
    """What every job report ends with: a resumed run's share, the hosts' table, notes."""
    lines = []
    if report.earlier_darts:
        lines.append(
            f"resumed: this run threw {report.thrown_darts:,} {unit}, an earlier one "
            f"{report.earlier_darts:,}; rates and hosts are this run's"
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


def stages_text(report: JobReport, unit: str = "darts") -> str:
    if report.precision is None:
        return ""
    looks = " + ".join(f"{s.darts:.3g}" for s in report.stages)
    return f"; {len(report.stages)} stage(s) of {unit}: {looks}"


def chunking_text(report: JobReport) -> str:
    if report.chunking is None:
        return " (as first planned)" if report.resumed else " (--chunk-size)"
    return f" (automatic: {report.chunking.bound_by})"


def chunking_json(report: JobReport) -> dict[str, Any] | None:
    if report.chunking is None or report.capacity is None:
        return None  # given with --chunk-size
    return {
        "bound_by": report.chunking.bound_by,
        "rates": sorted({h.source for h in report.capacity.hosts}),
        "task_overhead_seconds": report.capacity.task_overhead,
    }


def hosts_json(report: JobReport, unit: str) -> list[dict[str, Any]]:
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


def as_json(report: JobReport) -> dict[str, Any]:
    e = report.estimate
    assert e is not None and not isinstance(report.precision, ModelPrecision)
    return {
        "pi": e.pi,
        "std_error": e.std_error,
        "ci95": [e.ci_low, e.ci_high],
        "half_width": e.half_width,
        "error": e.error,
        "darts": report.darts,
        "hits": e.hits,
        "seed": report.seed,
        "job_id": report.job_id,
        "resumed": report.resumed,
        "chunks": report.chunks,
        "chunk_size": report.chunk_size,
        "chunking": chunking_json(report),
        "stages": [
            {"first": s.first, "darts": s.darts, "chunk_size": s.chunk_size, "hits": s.hits}
            for s in report.stages
        ],
        "precision": None
        if report.precision is None
        else {
            "half_width": report.precision.half_width,
            "max_darts": report.precision.max_darts,
            "reached": report.precision_reached,
        },
        "wall_seconds": report.wall_seconds,
        "darts_per_second": report.darts_per_second,
        "thrown_darts": report.thrown_darts,
        "mode": report.mode,
        "ran_on": report.ran_on,
        "hosts": hosts_json(report, "darts"),
        "duplicates": report.duplicates,
        "hub_version": __version__,
        "worker_versions": report.worker_versions,
        "notes": report.notes,
    }


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


def status_as_json(status: ClusterStatus) -> dict[str, Any]:
    def service(s: Service) -> dict[str, Any]:
        return {
            "where": s.where,
            "reachable": s.reachable,
            "product": s.product,
            "version": s.version,
            "error": s.error or None,
            "tls": s.tls or None,
            "certificate_expires": (
                s.certificate_expires.isoformat() if s.certificate_expires else None
            ),
        }

    q = status.queue
    return {
        "hub_version": status.hub_version,
        "broker": service(status.broker),
        "backend": service(status.backend),
        "queue": None
        if q is None
        else {
            "name": q.name,
            "ready": q.ready,
            "consumers": q.consumers,
            "unacknowledged": status.unacknowledged,
        },
        "workers": [
            {
                "node": w.node,
                "host": w.host,
                "slots": w.slots,
                "running": w.running,
                "prefetched": w.prefetched,
                "load": list(w.load),
                "cpus": w.cpus,
                "versions": w.versions,
                "models": w.models,
                "kernel": w.kernel,
                "kernel_note": w.kernel_note or None,
                "exact_sums": w.exact,
                "exact_sums_note": w.exact_note or None,
            }
            for w in status.workers
        ],
        "skew": status.skew,
        "warnings": [
            w
            for s in (status.broker, status.backend)
            if (w := s.certificate_warning(datetime.now(UTC)))
        ],
    }


def jobs_as_text(records: Sequence[JobRecord]) -> str:
    if not records:
        return "no jobs recorded yet\n"
    rows = []
    for r in records:
        darts = r.counted[1]
        asked = (
            f"±{r.request['precision']:g}"
            if "precision" in r.request
            else f"{r.request['samples' if 'samples' in r.request else 'darts']:.3g}"
        )
        pi = _record_result(r)
        # Darts of finished stages: a job cut off in its stage shows what it had done
        # only once resumed (its chunks are in the backend or the journal).
        done = f"{darts:.3g}" if darts else "-"
        rows.append((r.id, r.created.replace("+00:00", "Z"), r.status, r.where, asked, done, pi))
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
    if record.model is None:
        return f"π {record.result['pi']:.10f}"
    outputs: dict[str, dict[str, Any]] = record.result.get("outputs") or {}
    for name, first in outputs.items():
        return f"{record.kind} {name} {first.get('mean', math.nan):.6g}"
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
