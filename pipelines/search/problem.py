"""The data of one solve: (X, y) and the function set, read by every stage."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from simulator.language import FunctionSet
from simulator.scoring import nmse
from simulator.units import Units

# The learned stages see at most this many of the points: their models were trained on 12 to
# 30, and their cost grows with every point (each node's outputs are encoded point by point).
MODEL_POINTS = 32


def fixed_rows(n: int, k: int) -> np.ndarray:
    """All ``n`` rows up to ``k``, else a draw of ``k`` seeded by ``n`` (the same every time)."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(n).choice(n, k, replace=False))


@dataclass(frozen=True, eq=False)
class Problem:
    """What a solve is asked: inputs X (n, d), targets y (n,), and the allowed tokens.

    Read-only: the budget and everything else that changes during a solve belong to the
    planner's per-solve state (:class:`pipelines.search.budget.Budget`, stage sessions).
    """

    X: np.ndarray
    y: np.ndarray
    function_set: FunctionSet
    # held-out (X, y) the search never sees; the front reports its loss there
    validation: tuple[np.ndarray, np.ndarray] | None = None
    # the data's physical units: only dimensionally consistent programs may be chosen
    units: Units | None = None

    @property
    def y_var(self) -> float:
        return float(np.var(self.y)) + 1e-300

    @cached_property
    def model_rows(self) -> np.ndarray:
        """The rows the learned stages see: all of them up to ``MODEL_POINTS``, else a fixed
        draw (seeded by the data's size, so every stage and solve sees the same rows)."""
        return fixed_rows(len(self.y), MODEL_POINTS)

    @cached_property
    def model_data(self) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) on :attr:`model_rows`, taken once: every expansion's stages read it."""
        return self.X[self.model_rows], self.y[self.model_rows]

    def rows(self, k: int) -> Problem:
        """The same problem on at most ``k`` of its points (a fixed draw; see :func:`fixed_rows`)."""
        if len(self.y) <= k:
            return self
        keep = fixed_rows(len(self.y), k)
        return Problem(self.X[keep], self.y[keep], self.function_set, units=self.units)

    def nmse(self, Y: np.ndarray) -> np.ndarray:
        """NMSE of each row of Y (or of one vector) against y."""
        return nmse(Y, self.y)
