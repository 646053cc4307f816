"""``estimate --plot FILE.png``: the running estimate with its band, and the hosts' rates.

Left: π̂ against darts thrown, with its 95 % interval as a band (Wilson, at each
point) and π as a line; the looks of a precision-targeted job are marked. Right: each
host's share of the cluster's darts/s and its per-slot rate while computing.
matplotlib is optional (``pip install 'mcpi[plot]'``) and imported only here.
"""

from __future__ import annotations

import math
from pathlib import Path

from mcpi.core.stats import estimate
from mcpi.errors import UsageError
from mcpi.hub.report import JobReport


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (running, hosts) = plt.subplots(
        1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [2, 1]}
    )
    points = [p for p in (report.trace.points if report.trace else []) if p.darts > 0]
    if points:
        darts = [p.darts for p in points]
        estimates = [estimate(p.hits, p.darts) for p in points]
        running.fill_between(
            darts,
            [e.ci_low for e in estimates],
            [e.ci_high for e in estimates],
            alpha=0.3,
            label="95% interval",
            step="post" if len(points) < 3 else None,
        )
        running.plot(
            darts,
            [e.pi for e in estimates],
            marker="." if len(points) < 50 else None,
            label="estimate",
        )
        running.set_xscale("log" if darts[-1] > 100 * darts[0] else "linear")
    running.axhline(math.pi, color="black", linewidth=0.8, label="π")
    for n, look in enumerate(report.trace.looks if report.trace else []):
        label = "precision checked (a look)" if n == 0 else None
        running.axvline(look, color="grey", linestyle=":", linewidth=0.8, label=label)
    # The estimate's digits in full, not as an offset from 3.141.
    running.ticklabel_format(axis="y", useOffset=False)
    running.set_xlabel("darts thrown")
    running.set_ylabel("π estimate")
    running.set_title(f"job {report.job_id}: π ≈ {report.estimate.pi:.8f}")
    running.legend(loc="upper right")

    names = [h.host for h in report.hosts]
    positions = range(len(names))
    hosts.barh(
        [y + 0.2 for y in positions],
        [h.darts_per_second for h in report.hosts],
        height=0.4,
        label="share of the cluster's darts/s",
    )
    hosts.barh(
        [y - 0.2 for y in positions],
        [h.darts_per_busy_second for h in report.hosts],
        height=0.4,
        label="per slot, while computing",
    )
    hosts.set_yticks(list(positions), names)
    hosts.set_xlabel("darts/s")
    hosts.set_title(f"{report.darts_per_second:.3g} darts/s in all ({report.mode})")
    hosts.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
