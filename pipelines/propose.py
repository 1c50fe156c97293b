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


class FlowPropose:
    """The edit flow's log-density over the legal edits (the seed's learned prior)."""

    name = "edit-flow"

    def __init__(self, model):
        self.model = model

    @classmethod
    def from_pretrained(cls, path=None) -> FlowPropose:
        from flows.edit_flow import EditFlow

        return cls(EditFlow.from_pretrained(path))

    def log_scores(self, problem: Problem, program: Program, edits: Sequence[Edit]) -> np.ndarray:
        scores = self.model.score_edits(program, problem.X, problem.y, edits)
        return np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-1e9, neginf=-1e9)
