"""Rendering the hub's reports (jobs, tuning) as human-readable text or one JSON object."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mcpi import __version__
from mcpi.hub import JobReport, TuneReport


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
    e, plan = report.estimate, report.job.plan
    d = decimals_for(e.std_error)
    lines = [
        f"π ≈ {e.pi:.{d}f} ± {e.half_width:.2g}  (95% CI {e.ci_low:.{d}f} … {e.ci_high:.{d}f})",
        f"error vs π: {e.error:+.2g} ({e.error_in_std_errors:+.2f} standard errors)",
        f"{plan.darts:,} darts, {e.hits:,} hits; seed {report.job.seed}; "
        f"{plan.chunk_count:,} chunk(s) of {plan.chunk_size:,}{_chunking(report)}",
        f"wall {report.wall_seconds:.3g} s, {report.darts_per_second:.3g} darts/s "
        f"on the {report.ran_on}",
        "",
    ]
    header = ("host", "darts", "chunks", "darts/s", "per-slot darts/s")
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
    return "\n".join(lines) + "\n"


def _chunking(report: JobReport) -> str:
    if report.chunking is None:
        return " (--chunk-size)"
    return f" (automatic: {report.chunking.bound_by})"


def _chunking_json(report: JobReport) -> dict[str, Any] | None:
    if report.chunking is None or report.capacity is None:
        return None  # given with --chunk-size
    return {
        "bound_by": report.chunking.bound_by,
        "rates": sorted({h.source for h in report.capacity.hosts}),
        "task_overhead_seconds": report.capacity.task_overhead,
    }


def as_json(report: JobReport) -> dict[str, Any]:
    e, plan = report.estimate, report.job.plan
    return {
        "pi": e.pi,
        "std_error": e.std_error,
        "ci95": [e.ci_low, e.ci_high],
        "error": e.error,
        "darts": plan.darts,
        "hits": e.hits,
        "seed": report.job.seed,
        "job_id": report.job.id,
        "chunks": plan.chunk_count,
        "chunk_size": plan.chunk_size,
        "chunking": _chunking_json(report),
        "wall_seconds": report.wall_seconds,
        "darts_per_second": report.darts_per_second,
        "mode": report.mode,
        "ran_on": report.ran_on,
        "hosts": [
            {
                "host": h.host,
                "darts": h.darts,
                "chunks": h.chunks,
                "busy_seconds": h.busy_seconds,
                "darts_per_second": h.darts_per_second,
                "darts_per_busy_second": h.darts_per_busy_second,
            }
            for h in report.hosts
        ],
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
