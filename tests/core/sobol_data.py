"""Writes ``mcpi/core/data/joe-kuo-6.1111``: the first 1111 dimensions of Joe and Kuo's
direction numbers (search criterion D(6)), from the copy scipy ships, in Joe and Kuo's
own file format: ``python -m tests.core.sobol_data``. ``test_sobol.py`` holds the file
to scipy's table."""

from __future__ import annotations

import importlib.resources

import numpy as np

from mcpi.core.sobol import DIRECTION_NUMBERS, MAX_DIMS

HEADER = """\
# Sobol' direction numbers of S. Joe and F. Y. Kuo, "Constructing Sobol sequences with
# better two-dimensional projections", SIAM J. Sci. Comput. 30 (2008) 2635-2654: the
# file new-joe-kuo-6.21201 (search criterion D(6)) of https://web.maths.unsw.edu.au/~fkuo/sobol/,
# distributed under the authors' BSD-style licence; its first 1111 dimensions, as scipy
# ships them (scipy/stats/_sobol_direction_numbers.npz). Dimension 1 (all m_i = 1) is
# implicit, as in the original.
d s a m_i
"""


def scipy_table() -> tuple[np.ndarray, np.ndarray]:
    """scipy's (poly, vinit): poly = 2a + 2^s + 1 per dimension, vinit the m_i."""
    path = importlib.resources.files("scipy.stats").joinpath("_sobol_direction_numbers.npz")
    with importlib.resources.as_file(path) as file:
        table = np.load(file)
        return table["poly"], table["vinit"]


def write() -> None:
    poly, vinit = scipy_table()
    lines = [HEADER.rstrip("\n")]
    for d in range(1, MAX_DIMS):  # scipy's row 0 is the implicit first dimension
        p = int(poly[d])
        s = p.bit_length() - 1
        a = (p - (1 << s) - 1) // 2
        m = " ".join(str(int(v)) for v in vinit[d, :s])
        lines.append(f"{d + 1} {s} {a} {m}")
    DIRECTION_NUMBERS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    write()
