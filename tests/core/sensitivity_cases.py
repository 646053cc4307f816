"""Models with closed-form Sobol' indices, for the sensitivity tests and the benchmark.

* Ishigami (a=7, b=0.1): :func:`mcpi.models.builtin.ishigami_indices`.
* The Sobol' g-function of eight inputs, g(x) = Π (|4x_j − 2| + a_j)/(1 + a_j) with
  a = (0, 1, 4.5, 9, 99, 99, 99, 99) (Saltelli and Sobol' 1995): each factor has mean 1
  and variance V_j = 1/(3(1 + a_j)²), so V = Π(1 + V_j) − 1, S_j = V_j/V and
  ST_j = V_j Π_{k≠j}(1 + V_k)/V. Four inputs that matter, four that barely do, and
  interactions between all: a test of the total indices the Ishigami function's three
  inputs cannot give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mcpi.core.model import Model, model
from mcpi.models import builtin

G_COEFFICIENTS = (0.0, 1.0, 4.5, 9.0, 99.0, 99.0, 99.0, 99.0)


@model("gfunction", dims=len(G_COEFFICIENTS), version="1")
def gfunction(u: np.ndarray) -> np.ndarray:
    """The Sobol' g-function of eight uniforms (mean 1)."""
    value = np.ones(u.shape[0])
    for j, a in enumerate(G_COEFFICIENTS):
        value *= (np.abs(4.0 * u[:, j] - 2.0) + a) / (1.0 + a)
    return value


def g_indices() -> tuple[tuple[float, ...], tuple[float, ...]]:
    parts = [1 / (3 * (1 + a) ** 2) for a in G_COEFFICIENTS]
    variance = math.prod(1 + v for v in parts) - 1
    first = tuple(v / variance for v in parts)
    total = tuple(
        v * math.prod(1 + w for k, w in enumerate(parts) if k != j) / variance
        for j, v in enumerate(parts)
    )
    return first, total


@dataclass(frozen=True)
class IndicesCase:
    model: Model
    first: tuple[float, ...]
    total: tuple[float, ...]

    @property
    def name(self) -> str:
        return self.model.name


ISHIGAMI = IndicesCase(builtin.ishigami, *builtin.ishigami_indices())
GFUNCTION = IndicesCase(gfunction, *g_indices())
