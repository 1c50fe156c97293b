"""Hypothesis strategies for programs, shared by the property tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from simulator.enumerate import ProgramPrior
from simulator.language import FunctionSet

FULL = FunctionSet.from_names("full", 2)


@st.composite
def programs(draw, function_set: FunctionSet = FULL, max_size: int = 15):
    """Random programs from the project's own prior, seeded by hypothesis."""
    seed = draw(st.integers(0, 2**32 - 1))
    size = draw(st.integers(1, max_size))
    rng = np.random.default_rng(seed)
    return ProgramPrior(min_size=size, max_size=size, max_depth=8).sample(function_set, rng)


def inputs(seed: int, n: int = 20, d: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 2.0, size=(n, d))
