"""Propose: which legal edits to try, as log-scores over candidates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipelines.problem import Problem
from simulator.edits import Edit
from simulator.program import Program


class UniformPropose:
    """Stand-in: every legal edit equally likely."""

    name = "uniform"

    def log_scores(self, problem: Problem, program: Program, edits: Sequence[Edit]) -> np.ndarray:
        return np.zeros(len(edits))
