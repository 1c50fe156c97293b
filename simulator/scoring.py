"""How outputs are scored: NMSE against a target, and rank correlation between scores.

One definition each, shared by the planner, the learned models' metrics and the peers, so
that every reported loss and correlation means the same thing.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr


def nmse(Y: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean squared error over the variance of y, per row of Y (or for one vector).

    Returns an array of shape (rows,), with inf where a row is not finite, so that broken
    candidates always rank last.
    """
    with np.errstate(all="ignore"):
        err = np.atleast_1d(
            np.mean((np.asarray(Y, dtype=np.float64) - y) ** 2, axis=-1) / (np.var(y) + 1e-300)
        )
    err[~np.isfinite(err)] = np.inf
    return err


def spearman(a: np.ndarray, b: np.ndarray, undefined: float = float("nan")) -> float:
    """Spearman's rank correlation; ``undefined`` when fewer than 3 values or one side is constant."""
    a, b = np.asarray(a), np.asarray(b)
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return undefined
    return float(spearmanr(a, b).statistic)
