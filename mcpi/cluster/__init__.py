"""The Celery adapter and the cluster executor: everything that knows Celery is here.

:mod:`~mcpi.cluster.app` and :mod:`~mcpi.cluster.tasks` (decorators over the core's
message bodies) are shared by both sides; :mod:`~mcpi.cluster.worker` and
:mod:`~mcpi.cluster.worker_control` are the worker's; the hub's side is the
:mod:`~mcpi.cluster.client` (checks, preflight, broadcasts), the chunk tasks' ids and
results (:mod:`~mcpi.cluster.chunks`), :mod:`~mcpi.cluster.calibration`, and one
:class:`~mcpi.cluster.waves.ClusterJob` per job run, which composes a module per
concern: :mod:`~mcpi.cluster.publisher` (waves onto the broker, a resumed job's rest),
:mod:`~mcpi.cluster.poller` (results from the backend, woken by
:mod:`~mcpi.cluster.arrivals`), :mod:`~mcpi.cluster.backups` (copies of overdue
chunks), :mod:`~mcpi.cluster.recovery` (backend outages and lost state),
:mod:`~mcpi.cluster.chords` (the chord verdict) and :mod:`~mcpi.cluster.watchdog`; all
composed by :class:`~mcpi.cluster.executor.Cluster`.
"""
