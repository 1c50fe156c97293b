"""The data and bookkeeping of one solve, shared by every stage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from simulator.language import FunctionSet


@dataclass
class Problem:
    """(X, y), the function set, the random stream, and the budget spent so far.

    ``calls`` counts simulator calls as BENCHMARKS.md defines them: one per candidate
    evaluated on the training inputs, one per candidate whose constants are fitted.
    """

    X: np.ndarray
    y: np.ndarray
    function_set: FunctionSet
    rng: np.random.Generator
    max_calls: int
    max_seconds: float
    calls: int = 0
    fit_passes: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def y_var(self) -> float:
        return float(np.var(self.y)) + 1e-300

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def exhausted(self) -> str | None:
        """Why the budget is spent, or None while there is budget left."""
        if self.calls >= self.max_calls:
            return "calls"
        if self.elapsed >= self.max_seconds:
            return "seconds"
        return None

    def nmse(self, Y: np.ndarray) -> np.ndarray:
        """NMSE of each row of Y (or of one vector) against y."""
        return nmse(Y, self.y)


def nmse(Y: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean squared error over the variance of y, per row; inf where a row is not finite."""
    with np.errstate(all="ignore"):
        err = np.atleast_1d(np.mean((Y - y) ** 2, axis=-1) / (np.var(y) + 1e-300))
    err[~np.isfinite(err)] = np.inf
    return err
