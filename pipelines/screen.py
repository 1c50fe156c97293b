"""Screen: rank candidates before the simulator sees them, so only the best are run."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipelines.problem import Problem
from simulator.edits import Edit
from simulator.program import Program


class NoScreen:
    """Stand-in: every proposed candidate goes to the simulator."""

    name = "none"

    def select(
        self, problem: Problem, program: Program, edits: Sequence[Edit], log_scores: np.ndarray
    ) -> np.ndarray:
        """Indices of the edits to verify."""
        return np.arange(len(edits))
