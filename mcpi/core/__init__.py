"""The pure core: numpy and the standard library only, no Celery, no I/O beyond the clock.

:mod:`~mcpi.core.kernel` (the dart stream and hit count), :mod:`~mcpi.core.plan` (chunks
and waves), :mod:`~mcpi.core.job`, :mod:`~mcpi.core.chunk` (one chunk counted, with its
telemetry), :mod:`~mcpi.core.tally` (exact, once-per-chunk totals),
:mod:`~mcpi.core.messages` (the JSON codecs and task bodies), :mod:`~mcpi.core.stats`,
:mod:`~mcpi.core.precision` (the stopping rule) and :mod:`~mcpi.core.tuning` (chunk
sizing). Every layer above builds on these; they import none of it (``.importlinter``).
"""
