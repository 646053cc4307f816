"""``--plot FILE.png``: the running estimate with its band, and the hosts' rates.

Left: an output's running mean (the output a precision targets, else the first; π̂
for ``estimate``) against samples (darts), with its 95 % interval as
a band and the exact answer, where known, as a line; the looks of a
precision-targeted job are marked (under randomized QMC, the estimate at each look).
Middle, where the output has a histogram: its density from the exact counts, with its
quantiles and their intervals. Right: each host's share of the cluster's rate and its
per-slot rate while computing. matplotlib is optional (``pip install
'mcpi[plot]'``) and imported only here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mcpi.core.distribution import HistogramResult
from mcpi.core.exact import output_estimate, replicate_estimate
from mcpi.core.sampler import RQMC
from mcpi.core.sensitivity import Sensitivity
from mcpi.errors import UsageError
from mcpi.hub.report import JobReport
from mcpi.hub.request import ESTIMATE


def check_plot_path(path: str) -> Path:
    """The plot's path, or a usage error before any dart is thrown."""
    if not path.endswith(".png"):
        raise UsageError(f"the plot is a PNG file: {path!r} does not end in .png")
    target = Path(path)
    if not target.parent.is_dir():
        raise UsageError(f"cannot write the plot: {target.parent} is not a directory")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'mcpi[plot]'") from None
    return target


def plot_job(report: JobReport, path: Path) -> None:
    """The job's plot: the targeted (or first) output's running mean, with its band; for
    Sobol' indices, their bars."""
    if report.sensitivity is not None:
        _plot_indices(report, report.sensitivity, path)
        return
    output = report.targeted
    index = report.outputs.index(output)
    series = []
    sampler = report.sampler
    if isinstance(sampler, RQMC):
        # The replicates' estimate at the end of each stage (mid-stage, some replicates
        # hold more points than others).
        total: tuple[int, ...] = ()
        for stage in report.stages:
            if not stage.sums:
                continue
            total = tuple(map(sum, zip(total, stage.sums, strict=True))) if total else stage.sums
            samples = stage.first + stage.samples
            group = len(total) // sampler.replicates
            e = replicate_estimate(
                output.name, sampler.points(samples), sampler.pairs(total, group, index)
            )
            series.append((samples, e.mean, e.ci_low, e.ci_high))
    for p in report.trace.points if report.trace and not isinstance(sampler, RQMC) else []:
        if p.darts > 0 and p.sums:
            e = output_estimate(
                output.name,
                p.darts,
                p.sums[2 * index],
                p.sums[2 * index + 1],
                binary=output.binary,
            )
            series.append((p.darts, e.mean, e.ci_low, e.ci_high))
    if report.view is ESTIMATE:
        labels = ("π", "π estimate", f"job {report.job_id}: π ≈ {output.mean:.8f}")
    else:
        labels = (
            "exact",
            f"{output.name} (running mean)",
            f"job {report.job_id}: {output.name} ≈ {output.mean:.6g}",
        )
    _plot(report, path, series, output.exact, *labels, unit=report.view.unit)


def _plot(
    report: JobReport,
    path: Path,
    series: Sequence[tuple[int, float, float, float]],
    exact: float | None,
    exact_label: str,
    ylabel: str,
    title: str,
    *,
    unit: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    histograms = {h.output: h for h in report.distribution.histograms}
    histogram = histograms.get(report.targeted.name)
    if histogram is None:
        figure, (running, hosts) = plt.subplots(
            1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]}
        )
    else:
        figure, (running, counts, hosts) = plt.subplots(
            1, 3, figsize=(17, 4.5), gridspec_kw={"width_ratios": [2, 2, 1]}
        )
        _histogram(counts, report, histogram)
    if series:
        xs = [x for x, _, _, _ in series]
        running.fill_between(
            xs,
            [low for _, _, low, _ in series],
            [high for _, _, _, high in series],
            alpha=0.3,
            label="95% interval",
            step="post" if len(series) < 3 else None,
        )
        running.plot(
            xs,
            [mean for _, mean, _, _ in series],
            marker="." if len(series) < 50 else None,
            label="estimate",
        )
        running.set_xscale("log" if xs[-1] > 100 * xs[0] else "linear")
    if exact is not None:
        running.axhline(exact, color="black", linewidth=0.8, label=exact_label)
    for n, look in enumerate(report.trace.looks if report.trace else []):
        label = "precision checked (a look)" if n == 0 else None
        running.axvline(look, color="grey", linestyle=":", linewidth=0.8, label=label)
    # The estimate's digits in full, not as an offset from 3.141.
    running.ticklabel_format(axis="y", useOffset=False)
    running.set_xlabel(f"{unit} computed")
    running.set_ylabel(ylabel)
    running.set_title(title)
    running.legend(loc="upper right")
    _hosts(hosts, report, unit)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _histogram(axes: Any, report: JobReport, histogram: HistogramResult) -> None:
    """The output's histogram as a density, its quantiles marked with their intervals."""
    edges, counts = histogram.edges, histogram.counts
    widths = [b - a for a, b in itertools.pairwise(edges)]
    total = max(histogram.samples, 1)
    axes.bar(
        edges[:-1],
        [c / (total * w) for c, w in zip(counts, widths, strict=True)],
        width=widths,
        align="edge",
        alpha=0.6,
        label=f"{histogram.under:,} below, {histogram.over:,} above",
    )
    for q in (q for q in report.distribution.quantiles if q.output == histogram.output):
        low = q.ci_low if q.ci_low > -math.inf else edges[0]
        high = q.ci_high if q.ci_high < math.inf else edges[-1]
        axes.axvspan(low, high, color="tab:red", alpha=0.15)
        axes.axvline(q.value, color="tab:red", linewidth=0.8, label=f"{100 * q.p:g}% quantile")
    if histogram.log:
        axes.set_xscale("log")
    axes.set_xlabel(histogram.output)
    axes.set_ylabel("density")
    axes.set_title(f"{histogram.output}: {len(counts)} bins, exact counts")
    axes.legend(loc="upper right")


def _plot_indices(report: JobReport, found: Sensitivity, path: Path) -> None:
    """Each input's first-order and total index as a bar, its 95 % interval as whiskers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (bars, hosts) = plt.subplots(
        1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]}
    )
    positions = range(len(found.inputs))
    for shift, kind, label in ((-0.2, "first", "first-order S"), (0.2, "total", "total ST")):
        indices = [getattr(i, kind) for i in found.inputs]
        bars.bar(
            [x + shift for x in positions],
            [e.value for e in indices],
            width=0.4,
            yerr=[
                [e.value - e.ci_low for e in indices],
                [e.ci_high - e.value for e in indices],
            ],
            capsize=3,
            label=f"{label} (95% interval)",
        )
    bars.set_xticks(list(positions), [i.name for i in found.inputs])
    bars.axhline(0, color="black", linewidth=0.6)
    bars.set_ylabel("share of the variance")
    bars.set_title(
        f"job {report.job_id}: Sobol' indices of {found.output} ({found.evaluations:,} evaluations)"
    )
    bars.legend(loc="upper right")
    _hosts(hosts, report, report.view.unit)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _hosts(axes: Any, report: JobReport, unit: str) -> None:
    names = [h.host for h in report.hosts]
    positions = range(len(names))
    axes.barh(
        [y + 0.2 for y in positions],
        [h.darts_per_second for h in report.hosts],
        height=0.4,
        label=f"share of the cluster's {unit}/s",
    )
    axes.barh(
        [y - 0.2 for y in positions],
        [h.darts_per_busy_second for h in report.hosts],
        height=0.4,
        label="per slot, while computing",
    )
    axes.set_yticks(list(positions), names)
    axes.set_xlabel(f"{unit}/s")
    axes.set_title(f"{report.samples_per_second:.3g} {unit}/s in all ({report.mode})")
    axes.legend(loc="lower right", fontsize="small")
