"""One batched Levenberg-Marquardt for many least-squares problems at once.

Both constant fits of the search use it: every constant of many programs
(:mod:`pipelines.search.constants`), and the inner constants of many shapes with the outer pair
projected out (:mod:`pipelines.search.shapes`). The caller evaluates a batch of parameter rows to
their normal equations (JᵀJ, Jᵀr) and loss; this loop damps them, solves every row still
fitting in one batched call, and keeps a step only where it lowers the loss. Each caller's
:class:`Rules` say when its fits stop, tuned to its own problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

START, UP, DOWN = 1e-3, 4.0, 3.0  # damping: at first, times UP on a rejected step, over DOWN on a kept one


@dataclass(frozen=True)
class Rules:
    """How the damping is floored and when a fit stops."""

    floor: float = 0.0  # a parameter's damping is at least this share of the largest curvature's
    jitter: float = 0.0  # added to every free parameter's damping, so no system is singular
    least: float = 1e-15  # the damping never falls below this
    most: float = 1e12  # a fit whose damping passes this has stalled
    converged: float = 0.0  # a kept step that lowers the loss by at most this share of it ends the fit
    exact: float = 0.0  # a loss at or below this ends the fit


class Evaluation(NamedTuple):
    """Rows of parameters evaluated: JᵀJ (b, K, K), Jᵀr (b, K), the loss (b,), inf where
    anything is not finite, and whatever else of each row the caller wants back (b, ...)."""

    JJ: np.ndarray
    g: np.ndarray
    loss: np.ndarray
    extra: np.ndarray | None = None


class Fitted(NamedTuple):
    """Each row's best parameters, their loss and ``extra``, whether any step was kept, and
    how many rows were evaluated after the start."""

    params: np.ndarray
    loss: np.ndarray
    extra: np.ndarray | None
    moved: np.ndarray
    evaluated: int


def levenberg_marquardt(
    evaluate: Callable[[np.ndarray, np.ndarray], Evaluation],
    start: np.ndarray,
    free: np.ndarray,
    steps: int,
    rules: Rules,
    sizes: np.ndarray | None = None,
) -> Fitted:
    """Fit every row of ``start`` (B, K) for at most ``steps`` steps.

    ``evaluate(rows, params)`` evaluates the rows (indices into the batch) at ``params``.
    Only ``free`` (B, K) parameters move; ``sizes`` (B,) are the rows' lengths when they are
    padded to K, and each step's systems are solved at the longest active row's length.
    """
    B, K = start.shape
    sizes = np.full(B, K) if sizes is None else np.asarray(sizes)
    params = np.array(start, dtype=np.float64)
    now = evaluate(np.arange(B), params)
    JJ, g, loss, extra = np.array(now.JJ), np.array(now.g), np.array(now.loss), now.extra
    extra = None if extra is None else np.array(extra)
    both = free[:, :, None] & free[:, None, :]
    lam = np.full(B, START)
    going = free.any(axis=1) & np.isfinite(loss) & (loss > rules.exact)
    moved = np.zeros(B, bool)
    evaluated = 0
    for _ in range(steps):
        act = np.flatnonzero(going)
        if not len(act):
            break
        k = int(sizes[act].max())
        keep, eye = free[act, :k], np.eye(k)
        with np.errstate(all="ignore"):  # a system that overflows gives a non-finite step: rejected
            A = np.where(both[act, :k, :k], JJ[act, :k, :k], 0.0)
            G = np.where(keep, g[act, :k], 0.0)
            diag = np.einsum("bii->bi", A)
            floor = (rules.floor * diag.max(axis=1, keepdims=True) if rules.floor else 0.0) + 1e-300
            damping = np.where(keep, lam[act, None] * np.maximum(diag, floor) + rules.jitter, 0.0)
            A = np.where(keep[:, :, None] & keep[:, None, :], A + damping[:, :, None] * eye, eye)
            bad = ~(np.isfinite(A).all(axis=(1, 2)) & np.isfinite(G).all(axis=1))
            A[bad], G[bad] = eye, 0.0  # solved harmlessly, then rejected as non-finite
            try:
                step = -np.linalg.solve(A, G[..., None])[..., 0]
            except np.linalg.LinAlgError:  # a singular system in the batch: solve one by one
                step = -np.stack([np.linalg.lstsq(a, b, rcond=None)[0] for a, b in zip(A, G)])
            step[bad] = np.nan
            trial = params[act].copy()
            trial[:, :k] += np.where(keep, step, 0.0)
        finite = np.isfinite(trial).all(axis=1)
        new = np.full(len(act), np.inf)
        if finite.any():
            tried = evaluate(act[finite], trial[finite])
            evaluated += int(finite.sum())
            new[finite] = tried.loss
        better = new < loss[act]
        if better.any():
            won, rows = act[better], np.flatnonzero(finite)
            at = np.searchsorted(rows, np.flatnonzero(better))  # each kept row's place in ``tried``
            with np.errstate(all="ignore"):
                done = (loss[won] - new[better] <= rules.converged * loss[won]) | (new[better] <= rules.exact)
            params[won], loss[won], JJ[won], g[won] = trial[better], new[better], tried.JJ[at], tried.g[at]
            if extra is not None:
                extra[won] = tried.extra[at]
            moved[won] = True
            lam[won] = np.maximum(lam[won] / DOWN, rules.least)
            going[won[done]] = False
        lost = act[~better]
        lam[lost] *= UP
        going[lost[lam[lost] > rules.most]] = False
    return Fitted(params, loss, extra, moved, evaluated)
