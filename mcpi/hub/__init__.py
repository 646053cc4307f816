"""The hub: orchestration and persistence, above both executors.

:mod:`~mcpi.hub.request` (what is asked), :mod:`~mcpi.hub.run` (a job's stages, run and
recorded), :mod:`~mcpi.hub.executor` (the seam, and the choice between the
:mod:`~mcpi.hub.local` pool and the cluster), :mod:`~mcpi.hub.records` (job records and
the chunk journals), :mod:`~mcpi.hub.rates` (the rate book),
:mod:`~mcpi.hub.progress` and :mod:`~mcpi.hub.trace` (observers), and
:mod:`~mcpi.hub.report` (what a job's report holds).
"""
