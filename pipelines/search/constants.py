"""Fit programs' constants to data: one batched Levenberg-Marquardt for many programs at once."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from pipelines.search.levenberg_marquardt import Evaluation, Rules, levenberg_marquardt
from simulator.execute import value_and_jacobian
from simulator.program import Program

# Raw constants of any scale: the damping is floored relative to the largest curvature; a fit
# ends when a step lowers the loss by at most 1e-12 of itself, or its damping passes 1e12.
RULES = Rules(floor=1e-12, least=1e-15, most=1e12, converged=1e-12)


def fit_constants_many(
    programs: Sequence[Program],
    X: np.ndarray,
    y: np.ndarray,
    steps: int = 30,
    frozen: Sequence[Collection[int]] | None = None,
) -> tuple[list[Program], int]:
    """Each program with its constants fitted to (X, y), and the tree walks spent in all.

    Levenberg-Marquardt on the NMSE (:mod:`pipelines.search.levenberg_marquardt`), with the exact
    Jacobian from one forward-mode tree walk (:func:`simulator.execute.value_and_jacobian`).
    A program keeps its starting values unless the fit improves them; one without constants
    is returned unchanged. ``frozen[i]`` names the constants of program i held at their values
    (a snapped constant, :mod:`pipelines.search.snap`): their Jacobian rows are zero and they are not
    free, so no step moves them.
    """
    out = list(programs)
    batch = [i for i, p in enumerate(programs) if p.consts]
    if not batch:
        return out, 0
    sizes = np.array([len(programs[i].consts) for i in batch])
    K = int(sizes.max())
    start = np.zeros((len(batch), K))
    for row, i in enumerate(batch):
        start[row, : sizes[row]] = programs[i].consts
    scale = float(np.var(y)) + 1e-12
    held = [sorted(f) for f in frozen] if frozen is not None else [[] for _ in programs]

    def evaluate(rows: np.ndarray, consts: np.ndarray) -> Evaluation:
        """One tree walk a row: the normal equations and the loss (inf if anything overflows)."""
        JJ, g, loss = np.zeros((len(rows), K, K)), np.zeros((len(rows), K)), np.full(len(rows), np.inf)
        for at, row in enumerate(rows):
            k = sizes[row]
            i = batch[row]
            y_hat, J = value_and_jacobian(programs[i], X, consts[at, :k])
            if held[i]:  # a copy: the Jacobian may be a read-only broadcast
                J = J.copy()
                J[held[i]] = 0.0
            with np.errstate(all="ignore"):
                r = y_hat - y
                JJ[at, :k, :k], g[at, :k] = J @ J.T, J @ r
                value = float(r @ r) / (len(y) * scale)
                if np.isfinite(value) and np.isfinite(J).all() and np.isfinite(JJ[at]).all():
                    loss[at] = value
        return Evaluation(JJ, g, loss)

    free = np.arange(K) < sizes[:, None]
    for row, i in enumerate(batch):
        free[row, held[i]] = False
    fitted = levenberg_marquardt(evaluate, start, free, steps, RULES, sizes)
    for row, i in enumerate(batch):
        if fitted.moved[row]:
            out[i] = programs[i].with_consts(fitted.params[row, : sizes[row]])
    return out, len(batch) + fitted.evaluated
