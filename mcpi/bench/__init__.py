"""``mcpi-hub bench``: :mod:`~mcpi.bench.suite` runs mcpi and its
:mod:`~mcpi.bench.peers` (multiprocessing.Pool, Dask, raw PCG64, the seed's loops) on
the same darts, checks that they agree, and reports rates as ratios to a baseline
measured in the same run. Imported only by that subcommand.
"""
