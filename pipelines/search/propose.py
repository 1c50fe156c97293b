"""Propose: which legal edits to try, as log-scores over candidates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipelines.search.problem import Problem
from simulator.edits import Edit
from simulator.program import Program


class UniformPropose:
    """Stand-in: every legal edit equally likely."""

    name = "uniform"

    def log_scores(self, problem: Problem, program: Program, edits: Sequence[Edit]) -> np.ndarray:
        return np.zeros(len(edits))


class FlowPropose:
    """The edit flow's log-density over the legal edits: a learned prior over which edit to try.

    Scores are z-scored across the candidates and scaled by ``sharpness`` before the planner
    samples its top-k with Gumbel noise: the flow is trusted as a preference, not as an
    oracle, since every benchmark is out of its training distribution.
    """

    name = "edit-flow"

    def __init__(self, checkpoint: str | None = None, sharpness: float = 1.5):
        self.checkpoint = checkpoint  # None: the shipped edit flow
        self.sharpness = sharpness

    @property
    def model(self):
        from flows.checkpoint import load_pretrained
        from flows.edit_flow import EditFlow

        return load_pretrained(EditFlow, self.checkpoint)

    def log_scores(self, problem: Problem, program: Program, edits: Sequence[Edit]) -> np.ndarray:
        try:
            X, y = problem.model_data
            scores = np.asarray(self.model.score_edits(program, X, y, edits), dtype=np.float64)
        except ValueError:  # a token outside the model's vocabulary (an operator added since): uniform
            return np.zeros(len(edits))
        finite = np.isfinite(scores)
        if not finite.any():
            return np.zeros(len(edits))
        mu, sd = scores[finite].mean(), scores[finite].std() + 1e-9
        z = np.where(finite, (scores - mu) / sd, -10.0)
        return self.sharpness * z
