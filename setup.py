"""The compiled parts of the core; everything else about the package is in pyproject.toml.

``mcpi/core/_darts.c``, the dart kernel, ``mcpi/core/_exact.c``, the bucket pass of the
exact sums, and ``mcpi/core/_sobol.c``, blocks of scrambled Sobol' points (plain C and
Python's C API), are built ahead of time into the wheel, so
they load in the hardened worker unit, where MemoryDenyWriteExecute=yes forbids a JIT,
with no compile step per process. They are optional: where no C compiler is at hand the
install still succeeds and :mod:`mcpi.core.kernel`, :mod:`mcpi.core.exact` and
:mod:`mcpi.core.sobol` fall back to numpy (same results, slower), saying so. (setup.py,
because declaring extensions in pyproject.toml is still experimental in setuptools.)
"""

from setuptools import Extension, setup

# -ffp-contract=off keeps the hit test's two roundings (a fused multiply-add would change
# counts). -g0 keeps build paths out of the binaries, so a wheel built twice from the same
# sources has the same bytes, which the wheelhouse role relies on to change nothing on a
# second run.
FLAGS = ["-O3", "-ffp-contract=off", "-g0", "-Wall"]

setup(
    ext_modules=[
        Extension(
            f"mcpi.core.{name}", [f"mcpi/core/{name}.c"], extra_compile_args=FLAGS, optional=True
        )
        for name in ("_darts", "_exact", "_sobol")
    ]
)
