"""Verify: the real simulator runs candidates (incrementally) and fits their constants."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from pipelines.search.constants import fit_constants_many
from pipelines.search.problem import Problem
from pipelines.search.types import Candidate, Verified
from simulator.edits import Edit, apply
from simulator.execute import evaluate_many
from simulator.incremental import IncrementalEvaluator
from simulator.program import Program


class Verify:
    """Runs candidates on the training data and counts every simulator call it makes.

    One call per candidate evaluated; one more per candidate whose constants are fitted.
    Only the ``fit_top`` best children that carry constants are fitted, since a fit costs
    tens of forward passes. ``similarity``, a checkpoint path, adds the learned distance to
    the goal M(ŷ, y) to every candidate (None: no similarity model).
    """

    def __init__(self, fit_top: int = 4, fit_steps: int = 30, similarity: str | None = None):
        self.fit_top = fit_top
        self.fit_steps = fit_steps
        self.similarity = similarity

    def _distances(self, problem: Problem, Y: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """M(ŷ, y) for the given rows of Y (zeros without a similarity model)."""
        if self.similarity is None or not len(rows):
            return np.zeros(len(rows))
        from similarity.metric import pretrained_similarity  # lazy: Lightning loads only when used

        model = pretrained_similarity(self.similarity)
        X, y = problem.model_data
        return np.asarray(model.distance(X, y, Y[rows][:, problem.model_rows]), dtype=np.float64)

    def edits(
        self,
        problem: Problem,
        parent: Program,
        edits: Sequence[Edit],
        stage: str,
        reasons: Sequence[str],
        limit: int,
        keep: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> Verified:
        """Evaluate up to ``limit`` one-edit children of ``parent`` on the incremental path.

        ``keep(losses)``, when given, names the rows that become candidates: every child is
        run (and counted) in one vectorised pass, and only the kept ones cost Python time.
        """
        edits = list(edits)[: max(limit, 0)]
        if not edits:
            return Verified()
        Y, valid = IncrementalEvaluator(parent, problem.X).evaluate(edits)
        build = lambda j, loss, d: Candidate(apply(parent, edits[j]), loss, (edits[j],), stage, reasons[j], d)  # noqa: E731
        return self._score(problem, Y, valid, limit, build, keep)

    def programs(self, problem: Problem, candidates: Sequence[Candidate], limit: int) -> Verified:
        """Evaluate up to ``limit`` whole programs (not one edit from a cached parent)."""
        candidates = list(candidates)[: max(limit, 0)]
        if not candidates:
            return Verified()
        Y, valid = evaluate_many([c.program for c in candidates], problem.X)
        build = lambda j, loss, d: replace(candidates[j], loss=loss, distance=d)  # noqa: E731
        return self._score(problem, Y, valid, limit, build)

    def _score(
        self,
        problem: Problem,
        Y: np.ndarray,
        valid: np.ndarray,
        limit: int,
        build: Callable[[int, float, float], Candidate],
        keep: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> Verified:
        """Losses of every row of Y; ``build(row, loss, distance)`` makes the candidates of
        the finite rows (those ``keep`` names, if given) only: applying an edit costs Python
        time."""
        loss = problem.nmse(Y)
        loss[~valid] = np.inf
        rows = np.flatnonzero(np.isfinite(loss))
        if keep is not None:
            rows = np.intersect1d(rows, keep(loss))
        dist = self._distances(problem, Y, rows)
        out = Verified(
            [build(j, float(loss[j]), float(d)) for j, d in zip(rows, dist)],
            calls=len(Y),
            stamps=[int(j) + 1 for j in rows],
        )
        self._fit_best(problem, out, limit)
        return out

    def _fit_best(self, problem: Problem, out: Verified, limit: int) -> None:
        """Fit the constants of the ``fit_top`` best children that carry any, all at once
        (one call each); a fitted child replaces its unfitted self if it scores better."""
        cands = out.candidates
        with_consts = sorted(
            (j for j, c in enumerate(cands) if c.program.consts), key=lambda j: cands[j].loss
        )
        chosen = with_consts[: max(min(self.fit_top, limit - out.calls), 0)]
        if not chosen:
            return
        fitted, walks = fit_constants_many(
            [cands[j].program for j in chosen], problem.X, problem.y, self.fit_steps
        )
        out.calls += len(chosen)
        out.fit_passes += walks
        Y, ok = evaluate_many(fitted, problem.X)
        losses = problem.nmse(Y)
        for j, p, new_loss, valid in zip(chosen, fitted, losses, ok, strict=True):
            if valid and new_loss < cands[j].loss:
                cands[j] = replace(cands[j], program=p, loss=float(new_loss))
                out.stamps[j] = out.calls
