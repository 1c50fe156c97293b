"""Verify: the real simulator runs candidates (incrementally) and fits their constants."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipelines.constants import fit_constants
from pipelines.problem import Problem
from simulator.edits import Edit, apply
from simulator.execute import evaluate_many
from simulator.incremental import IncrementalEvaluator
from simulator.program import Program


@dataclass(frozen=True)
class Candidate:
    """A verified program, the edits that made it from its parent, and which stage asked."""

    program: Program
    loss: float
    edits: tuple[Edit, ...]
    stage: str
    reason: str
    distance: float = 0.0  # learned distance-to-goal M(ŷ, y) when a similarity model is set


class Verify:
    """Runs candidates on the training data and counts every simulator call.

    One call per candidate evaluated; one more per candidate whose constants are fitted.
    Only the ``fit_top`` best children that carry constants are fitted, since a fit costs
    tens of forward passes.
    """

    def __init__(self, fit_top: int = 4, fit_steps: int = 30, similarity=None):
        self.fit_top = fit_top
        self.fit_steps = fit_steps
        self.similarity = similarity

    def _distances(self, problem: Problem, Y: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """M(ŷ, y) for the given rows of Y (zeros without a similarity model)."""
        if self.similarity is None or not len(rows):
            return np.zeros(len(rows))
        return np.asarray(self.similarity.distance(problem.X, problem.y, Y[rows]), dtype=np.float64)

    def edits(
        self, problem: Problem, parent: Program, edits: Sequence[Edit], stage: str, reasons: Sequence[str]
    ) -> list[Candidate]:
        """Evaluate the one-edit children of ``parent`` on the incremental path."""
        edits = list(edits)[: max(problem.max_calls - problem.calls, 0)]
        if not edits:
            return []
        Y, valid = IncrementalEvaluator(parent, problem.X).evaluate(edits)
        problem.calls += len(edits)
        loss = problem.nmse(Y)
        loss[~valid] = np.inf
        rows = np.flatnonzero(np.isfinite(loss))
        dist = self._distances(problem, Y, rows)
        out = [
            Candidate(apply(parent, edits[j]), float(loss[j]), (edits[j],), stage, reasons[j], float(d))
            for j, d in zip(rows, dist)
        ]
        return self._fit_best(problem, out)

    def programs(self, problem: Problem, candidates: Sequence[Candidate]) -> list[Candidate]:
        """Evaluate whole programs (for candidates that are not one edit from a cached parent)."""
        candidates = list(candidates)[: max(problem.max_calls - problem.calls, 0)]
        if not candidates:
            return []
        Y, valid = evaluate_many([c.program for c in candidates], problem.X)
        problem.calls += len(candidates)
        loss = problem.nmse(Y)
        loss[~valid] = np.inf
        rows = np.flatnonzero(np.isfinite(loss))
        dist = self._distances(problem, Y, rows)
        out = [
            Candidate(
                candidates[j].program,
                float(loss[j]),
                candidates[j].edits,
                candidates[j].stage,
                candidates[j].reason,
                float(d),
            )
            for j, d in zip(rows, dist)
        ]
        return self._fit_best(problem, out)

    def _fit_best(self, problem: Problem, cands: list[Candidate]) -> list[Candidate]:
        with_consts = sorted(
            (j for j, c in enumerate(cands) if c.program.consts), key=lambda j: cands[j].loss
        )
        for j in with_consts[: self.fit_top]:
            if problem.calls >= problem.max_calls:
                break
            c = cands[j]
            fitted, passes = fit_constants(c.program, problem.X, problem.y, self.fit_steps)
            problem.calls += 1
            problem.fit_passes += passes
            (y_hat,), ok = evaluate_many([fitted], problem.X)
            new_loss = float(problem.nmse(y_hat)[0]) if ok[0] else np.inf
            if new_loss < c.loss:
                cands[j] = Candidate(fitted, new_loss, c.edits, c.stage, c.reason, c.distance)
        return cands
