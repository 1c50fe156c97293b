"""Fit programs' constants to data: one batched Levenberg-Marquardt for many programs at once."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from simulator.execute import value_and_jacobian
from simulator.program import Program

# Damping: multiplied by LAMBDA_UP on a rejected step, divided by LAMBDA_DOWN on an accepted
# one; a program whose damping passes LAMBDA_MAX has stalled. A step that lowers the loss by
# less than CONVERGED of itself ends that program's fit.
LAMBDA_START, LAMBDA_UP, LAMBDA_DOWN, LAMBDA_MAX = 1e-3, 4.0, 3.0, 1e12
CONVERGED = 1e-12


def fit_constants_many(
    programs: Sequence[Program],
    X: np.ndarray,
    y: np.ndarray,
    steps: int = 30,
    frozen: Sequence[Collection[int]] | None = None,
) -> tuple[list[Program], int]:
    """Each program with its constants fitted to (X, y), and the tree walks spent in all.

    Levenberg-Marquardt on the NMSE, with the exact Jacobian from one forward-mode tree walk
    (:func:`simulator.execute.value_and_jacobian`). The damped normal equations of every
    program still fitting are solved together in one batched call, and a program leaves the
    batch when it converges or stalls. A program keeps its starting values unless the fit
    improves them; one without constants is returned unchanged. ``frozen[i]`` names the
    constants of program i held at their values (a snapped constant, :mod:`pipelines.snap`):
    their Jacobian rows are zero, so the damped step leaves them exactly where they are.
    """
    out = list(programs)
    scale = float(np.var(y)) + 1e-12
    fits: dict[int, list] = {}  # index -> [consts, JᵀJ, Jᵀr, loss, damping]
    walks = 0

    held = [sorted(f) for f in frozen] if frozen is not None else [[] for _ in programs]

    def walk(i: int, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """The normal equations' JᵀJ and Jᵀr at ``c``, and the loss (inf if anything overflows)."""
        nonlocal walks
        walks += 1
        y_hat, J = value_and_jacobian(programs[i], X, c)
        if held[i]:  # a copy: the Jacobian may be a read-only broadcast
            J = J.copy()
            J[held[i]] = 0.0
        with np.errstate(all="ignore"):
            r = y_hat - y
            loss = float(r @ r) / (len(y) * scale)
            JJ, g = J @ J.T, J @ r
            ok = np.isfinite(loss) and np.isfinite(J).all() and np.isfinite(JJ).all()
        return JJ, g, loss if ok else np.inf

    for i, p in enumerate(programs):
        if p.consts:
            c = np.array(p.consts, dtype=np.float64)
            JJ, g, loss = walk(i, c)
            if np.isfinite(loss):
                fits[i] = [c, JJ, g, loss, LAMBDA_START]
    for _ in range(steps):
        if not fits:
            break
        order = list(fits)
        K = max(len(fits[i][0]) for i in order)
        A = np.tile(np.eye(K), (len(order), 1, 1))
        G = np.zeros((len(order), K))
        with np.errstate(all="ignore"):  # a system that overflows gives a non-finite step: rejected
            for row, i in enumerate(order):
                c, JJ, g, _, lam = fits[i]
                k, diag = len(c), np.diag(JJ)
                A[row, :k, :k] = JJ + np.diag(lam * np.maximum(diag, 1e-12 * diag.max() + 1e-300))
                G[row, :k] = g
            bad = ~(np.isfinite(A).all(axis=(1, 2)) & np.isfinite(G).all(axis=1))
            A[bad], G[bad] = np.eye(K), 0.0  # solved harmlessly, then rejected as non-finite
            try:
                deltas = -np.linalg.solve(A, G[..., None])[..., 0]
            except np.linalg.LinAlgError:  # a singular system in the batch: solve one by one
                deltas = -np.stack([np.linalg.lstsq(a, b, rcond=None)[0] for a, b in zip(A, G)])
            deltas[bad] = np.nan
        for row, i in enumerate(order):
            c, _, _, loss, lam = fits[i]
            trial = c + deltas[row, : len(c)]
            JJ, g, new = walk(i, trial) if np.isfinite(trial).all() else (None, None, np.inf)
            if new < loss:
                fits[i] = [trial, JJ, g, new, max(lam / LAMBDA_DOWN, 1e-15)]
                out[i] = programs[i].with_consts(trial)
                if loss - new <= CONVERGED * loss or new == 0.0:
                    del fits[i]
            elif lam * LAMBDA_UP > LAMBDA_MAX:
                del fits[i]
            else:
                fits[i][4] = lam * LAMBDA_UP
    return out, walks
