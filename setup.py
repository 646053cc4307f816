"""The compiled dart kernel; everything else about the package is in pyproject.toml.

``mcpi/core/_darts.c`` (plain C and Python's C API) is built ahead of time into the
wheel, so it loads in the hardened worker unit, where MemoryDenyWriteExecute=yes forbids
a JIT, with no compile step per process. It is optional: where no C compiler is at hand
the install still succeeds and :mod:`mcpi.core.kernel` falls back to the numpy reference,
saying so. (setup.py, because declaring extensions in pyproject.toml is still
experimental in setuptools.)
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "mcpi.core._darts",
            sources=["mcpi/core/_darts.c"],
            # -ffp-contract=off keeps the hit test's two roundings (a fused multiply-add
            # would change counts). -g0 keeps build paths out of the binary, so a wheel
            # built twice from the same sources has the same bytes, which the wheelhouse
            # role relies on to change nothing on a second run.
            extra_compile_args=["-O3", "-ffp-contract=off", "-g0", "-Wall"],
            optional=True,
        )
    ]
)
