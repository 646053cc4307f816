"""The Celery adapter and the cluster executor: everything that knows Celery is here.

:mod:`~mcpi.cluster.app` and :mod:`~mcpi.cluster.tasks` (decorators over the core's
message bodies) are shared by both sides; :mod:`~mcpi.cluster.worker` and
:mod:`~mcpi.cluster.worker_control` are the worker's; the hub's side is the
:mod:`~mcpi.cluster.client` (checks, preflight, broadcasts), the chunk tasks' ids and
results (:mod:`~mcpi.cluster.chunks`), :mod:`~mcpi.cluster.calibration`, one
:class:`~mcpi.cluster.waves.ClusterJob` per job run with its
:mod:`~mcpi.cluster.watchdog`, composed by :class:`~mcpi.cluster.executor.Cluster`.
"""
