"""A user's model: E[cos Z] for a standard normal Z is exp(-1/2)."""

import math

import numpy as np

import mcpi


@mcpi.model("cosine", outputs=("cos",), exact={"cos": math.exp(-0.5)}, version="1")
def cosine(rng: np.random.Generator, n: int) -> np.ndarray:
    """E[cos Z], Z ~ N(0, 1): exactly exp(-1/2)."""
    return np.cos(rng.standard_normal(n))
