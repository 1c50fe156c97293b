"""Screen: rank candidates before the simulator sees them, so only the best are run."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipelines.search.problem import Problem
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


class FlowScreen:
    """Rank proposed edits by the forward flow's predicted post-edit loss; keep the best share.

    The forward flow predicts what each edit will do without running the simulator, so
    only ``keep`` of the proposals (at least ``min_keep``) reach it. ``samples=0`` ranks by
    each point's predicted median, which ranked better than Monte-Carlo samples.
    """

    name = "forward-flow"

    def __init__(self, checkpoint: str | None = None, keep: float = 0.5, min_keep: int = 8, samples: int = 0):
        self.checkpoint = checkpoint  # None: the shipped forward flow
        self.keep = keep
        self.min_keep = min_keep
        self.samples = samples

    @property
    def model(self):
        from flows.checkpoint import load_pretrained
        from flows.forward_flow import ForwardFlow

        return load_pretrained(ForwardFlow, self.checkpoint)

    def select(
        self, problem: Problem, program: Program, edits: Sequence[Edit], log_scores: np.ndarray
    ) -> np.ndarray:
        n = len(edits)
        k = max(self.min_keep, int(np.ceil(self.keep * n)))
        if n <= k:
            return np.arange(n)
        try:
            X, y = problem.model_data
            predicted = self.model.predict_loss(program, X, y, list(edits), n_samples=self.samples)
        except (AssertionError, RuntimeError, ValueError):  # the flow cannot invert here: keep proposal order
            return np.sort(np.argsort(-np.asarray(log_scores), kind="stable")[:k])
        predicted = np.nan_to_num(np.asarray(predicted, dtype=np.float64), nan=np.inf)
        return np.sort(np.argsort(predicted, kind="stable")[:k])
