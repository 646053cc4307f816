"""``mcpi-hub run MODEL --sweep NAME=V1,V2,...``: one job per parameter value, all at once.

Several ``--sweep`` options sweep their product (every combination, the first option
varying slowest). Each job is reported on one row (one entry of ``--json``'s
``"jobs"``), with its own job id and result; a failed job's row says why, and the
exit status is the first failure's.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence
from typing import Any, TextIO

from mcpi.cli.job import job_request
from mcpi.cli.render import decimals_for, table
from mcpi.cli.report import as_json, model_line
from mcpi.errors import ExitStatus, UsageError
from mcpi.hub.request import RUN
from mcpi.hub.sweep import SweepOutcome
from mcpi.settings import Settings

#: A sweep's jobs at most: each is a job record, and its row in the report.
MAX_SWEEP_JOBS = 10_000


def sweep_points(
    sweeps: Sequence[tuple[str, list[str]]], fixed: Sequence[tuple[str, str]]
) -> list[dict[str, str]]:
    """Every combination of the swept values, each with the fixed parameters.

    >>> sweep_points([("K", ["90", "110"]), ("r", ["0", "0.05"])], [("S", "100")])[1]
    {'S': '100', 'K': '90', 'r': '0.05'}
    """
    names = [name for name, _ in sweeps]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"--sweep {repeated[0]} is given more than once")
    both = sorted(set(names) & {name for name, _ in fixed})
    if both:
        raise UsageError(f"{both[0]} is given by both --param and --sweep")
    jobs = 1
    for _, values in sweeps:
        jobs *= len(values)
    if jobs > MAX_SWEEP_JOBS:
        raise UsageError(f"the sweep has {jobs:,} jobs; at most {MAX_SWEEP_JOBS:,} are allowed")
    return [
        dict(fixed) | dict(zip(names, combination, strict=True))
        for combination in itertools.product(*(values for _, values in sweeps))
    ]


def run_sweep_job(args: Any, settings: Settings, stdout: TextIO, stderr: TextIO) -> int:
    """Run the sweep ``args`` ask for (checked) and write its report; the exit status.

    On a terminal, one bar shows the whole sweep: its jobs ended and samples counted.
    """
    from mcpi.cli.progress import ProgressBar
    from mcpi.hub.sweep import run_sweep

    swept = [name for name, _ in args.sweep]
    points = sweep_points(args.sweep, args.param)
    requests = [job_request(args, RUN, params=point) for point in points]
    line = None
    if not (args.json or args.no_progress) and stderr.isatty():
        line = ProgressBar(stderr, unit="samples")
    began = time.monotonic()
    outcomes = run_sweep(requests, settings, line=line)
    wall = time.monotonic() - began
    if args.json:
        stdout.write(json.dumps(sweep_as_json(outcomes, swept, wall)) + "\n")
    else:
        stdout.write(sweep_as_text(outcomes, swept, wall))
    return sweep_status(outcomes)


def sweep_status(outcomes: Sequence[SweepOutcome]) -> int:
    """The first failed job's exit status; else whether every precision target was met."""
    for outcome in outcomes:
        if outcome.error is not None:
            return int(outcome.error.status)
    if all(o.report is not None and o.report.precision_reached for o in outcomes):
        return ExitStatus.OK
    return ExitStatus.PRECISION_NOT_REACHED


def sweep_as_text(outcomes: Sequence[SweepOutcome], swept: Sequence[str], wall: float) -> str:
    reports = [o.report for o in outcomes if o.report is not None]
    first = reports[0] if reports else None
    outputs = [o.name for o in first.outputs] if first is not None else []
    lines = []
    if first is not None:
        fixed = {k: v for k, v in first.model["params"].items() if k not in swept}
        shown = dict(first.model, params=fixed)
        lines.append(
            f"model {model_line(shown)}; sweep of {len(outcomes)} job(s) over {', '.join(swept)}"
        )
    header = (*swept, *outputs, "samples", "seed", "job", "wall s")
    rows = []
    for outcome in outcomes:
        point = [repr(outcome.request.params.get(n)) for n in swept]
        report = outcome.report
        if report is None:
            error = outcome.error
            rows.append((*point, f"FAILED: {error}", *[""] * (len(header) - len(point) - 1)))
            continue
        means = []
        for o in report.outputs:
            d = decimals_for(o.std_error)
            means.append(f"{o.mean:.{d}f} ± {o.half_width:.2g}")
        # Bound fixed values come back typed: show the swept ones as the model took them.
        point = [repr(report.model["params"].get(n)) for n in swept]
        rows.append(
            (
                *point,
                *means,
                f"{report.samples:,}",
                str(report.seed),
                report.job_id,
                f"{report.wall_seconds:.3g}",
            )
        )
    lines += table(header, rows, left=tuple(range(len(swept) + len(outputs))))
    samples = sum(r.samples for r in reports)
    where = first.ran_on if first is not None else "hub"
    lines.append(
        f"{len(reports)} of {len(outcomes)} job(s) done in {wall:.3g} s on the {where}: "
        f"{samples:,} samples, {samples / max(wall, 1e-9):.3g} samples/s"
    )
    exact = _exact_lines(reports)
    notes = dict.fromkeys(n for r in reports for n in r.notes)
    return "\n".join(lines + exact + [f"note: {n}" for n in notes]) + "\n"


def _exact_lines(reports: Sequence[Any]) -> list[str]:
    """How far the jobs with exact answers are from them, in standard errors."""
    errors = [o.error_in_std_errors for r in reports for o in r.outputs if o.error is not None]
    if not errors:
        return []
    worst = max(errors, key=abs)
    return [
        f"exact answers known for {len(errors)} output(s): worst error {worst:+.2f} standard errors"
    ]


def sweep_as_json(
    outcomes: Sequence[SweepOutcome], swept: Sequence[str], wall: float
) -> dict[str, Any]:
    jobs: list[dict[str, Any]] = []
    for outcome in outcomes:
        times = {"started_seconds": outcome.started, "ended_seconds": outcome.ended}
        if outcome.report is not None:
            jobs.append(as_json(outcome.report) | times)
        else:
            error = outcome.error
            jobs.append(
                {
                    "params": dict(outcome.request.params),
                    "seed": outcome.request.seed,
                    "error": str(error),
                    "exit_status": int(error.status) if error is not None else None,
                }
                | times
            )
    return {
        "sweep": list(swept),
        "jobs": jobs,
        "done": sum(o.report is not None for o in outcomes),
        "failed": sum(o.error is not None for o in outcomes),
        "wall_seconds": wall,
        "samples": sum(o.report.samples for o in outcomes if o.report is not None),
    }
