"""A second pass for the quantiles a job's bins held back (``run --refine``).

A quantile's interval is never narrower than the histogram's bins allow
(:mod:`mcpi.core.distribution`); where it is one or two bins wide, finer bins there
would narrow it. The samples of a job are a pure function of what defines it (model,
parameters, sampler, seed, size), so a second job with the same definition sees the
very same values: it counts a histogram of finer bins inside the first interval
(:func:`mcpi.core.distribution.refinement`), through the same pipeline — chunks,
retries, exact counts — and its quantile replaces the first. Its moments must equal
the first job's, bit for bit; they are checked. The cost is a second job of the same
size for each bin-limited quantile of one output (a job counts one histogram an output,
so one pass serves one quantile of every output).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from mcpi.core.distribution import QuantileEstimate, refinement
from mcpi.core.sampler import RQMC
from mcpi.errors import JobFailed
from mcpi.hub.binding import Distribution
from mcpi.hub.report import JobReport
from mcpi.hub.request import HistogramSpec, JobRequest

if TYPE_CHECKING:
    from collections.abc import Callable


def second_passes(request: JobRequest, first: JobReport) -> list[JobRequest]:
    """The jobs that refine ``first``'s bin-limited quantiles: the k-th holds the k-th
    such quantile of every output (a job counts one histogram an output), each with
    :data:`~mcpi.core.distribution.REFINED_BINS` bins inside its interval."""
    limited: dict[str, list[QuantileEstimate]] = {}
    for q in first.distribution.quantiles:
        if q.bin_limited:
            limited.setdefault(q.output, []).append(q)
    sampler = first.sampler
    passes = []
    for k in range(max((len(found) for found in limited.values()), default=0)):
        quantiles = [found[k] for found in limited.values() if k < len(found)]
        histograms = []
        for q in quantiles:
            bracket = refinement([q])
            assert bracket is not None
            histograms.append(HistogramSpec(q.output, *bracket))
        passes.append(
            replace(
                request,
                samples=first.samples,
                precision=None,
                max_samples=None,
                chunk_size=None,
                seed=first.seed,
                sampler=sampler.kind,
                replicates=sampler.replicates if isinstance(sampler, RQMC) else None,
                histograms=tuple(histograms),
                quantiles=tuple((q.output, q.p) for q in quantiles),
                exceed=(),
                refine=False,
            )
        )
    return passes


def refined(
    request: JobRequest, first: JobReport, run: Callable[[JobRequest], JobReport]
) -> JobReport:
    """``first`` with its bin-limited quantiles from the second passes ``run`` runs."""
    better: dict[tuple[str, float], QuantileEstimate] = {}
    notes, wall = [], first.wall_seconds
    for again in second_passes(request, first):
        second = run(again)
        if second.outputs != first.outputs:
            raise JobFailed(
                f"the refining pass (job {second.job_id}) did not see job {first.job_id}'s samples"
            )
        for q in second.distribution.quantiles:
            better[(q.output, q.p)] = replace(q, refined=True)
        bins = ", ".join(
            f"{h.output}: {len(h.counts):,} bins in [{h.edges[0]:.6g}, {h.edges[-1]:.6g})"
            for h in second.distribution.histograms
        )
        notes.append(
            f"quantile(s) refined by a second pass over the same samples (job "
            f"{second.job_id}; {bins})"
        )
        wall += second.wall_seconds
    if not better:
        return first
    quantiles = [better.get((q.output, q.p), q) for q in first.distribution.quantiles]
    return replace(
        first,
        distribution=Distribution(
            first.distribution.histograms, quantiles, first.distribution.exceedances
        ),
        notes=[*first.notes, *notes],
        wall_seconds=wall,
    )
