"""The data of one solve: (X, y) and the function set, read by every stage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.language import FunctionSet
from simulator.scoring import nmse


@dataclass(frozen=True, eq=False)
class Problem:
    """What a solve is asked: inputs X (n, d), targets y (n,), and the allowed tokens.

    Read-only: the budget and everything else that changes during a solve belong to the
    planner's per-solve state (:class:`pipelines.budget.Budget`, stage sessions).
    """

    X: np.ndarray
    y: np.ndarray
    function_set: FunctionSet
    # held-out (X, y) the search never sees; the front reports its loss there
    validation: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def y_var(self) -> float:
        return float(np.var(self.y)) + 1e-300

    def nmse(self, Y: np.ndarray) -> np.ndarray:
        """NMSE of each row of Y (or of one vector) against y."""
        return nmse(Y, self.y)
