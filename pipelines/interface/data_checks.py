"""What a user should hear about their data before trusting a law found on it.

:func:`simulator.data.check_xy` refuses data that cannot be used at all (NaN, ragged,
mismatched). This module looks at data that can be used but may mislead: a column that
never changes, rows that repeat, too few distinct points, noise that swamps the signal,
and outliers. Each finding is one line for the result's warnings; none stops a solve.

Outliers are found model-free, before any law is known: each point is predicted by a
local linear fit through its nearest neighbours in x (as :func:`pipelines.search.noise.neighbour_floor`
does), leaving out points already flagged. A point is an outlier when its residual is both
far beyond the residuals' robust spread (median absolute deviation) and larger than the
spread of its neighbours' own values, so the curvature of a steep smooth law, which the
local fit misses on sparse data, is not taken for an outlier. The worst point is flagged
first and the fits are redone, so one outlier does not hide another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# A residual this many robust standard deviations out (1.4826 x MAD) ...
OUTLIER_SIGMAS = 10.0
# ... and this many times the range of its neighbours' values is an outlier.
OUTLIER_SPREAD = 2.0
# In four variables or more, a hundred points leave neighbours too far apart for a local fit.
SPARSE_FROM, SPARSE_POINTS = 3, 50
MAX_OUTLIER_SHARE = 0.2  # more than this are not outliers but the data
SWAMPED_ABOVE = 0.5  # a model-free noise estimate above half of y's variance


@dataclass(frozen=True)
class DataReport:
    """The warnings about a data set, and the rows that look like outliers."""

    warnings: list[str] = field(default_factory=list)
    outliers: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))


def inspect_data(
    X: np.ndarray, y: np.ndarray, names: list[str] | tuple[str, ...] | None = None
) -> DataReport:
    """Warnings about (X, y), checked data of shape (n, d) and (n,); ``names`` name X's columns."""
    from pipelines.search.noise import neighbour_floor

    n, d = X.shape
    names = list(names) if names is not None else [f"x{j + 1}" for j in range(d)]
    warnings: list[str] = []
    for j in range(d):
        if np.all(X[:, j] == X[0, j]):
            warnings.append(
                f"column {names[j]!r} is {X[0, j]:g} on every point: no law can tell its effect, "
                "so a program may use it only as that number"
            )
    distinct = len(np.unique(X, axis=0))
    if distinct < n:
        same = len(np.unique(np.c_[X, y], axis=0))
        what = (
            f"{n - same} rows repeat an earlier row exactly"
            if same == distinct
            else f"{n - distinct} rows repeat an earlier row's inputs ({n - same} with the same y too)"
        )
        warnings.append(f"{what}: the law rests on {distinct} distinct inputs, not {n}")
    if np.all(y == y[0]):
        return DataReport(warnings)
    outliers = outlier_rows(X, y)
    if len(outliers):
        rows = ", ".join(str(int(i)) for i in outliers[:8]) + (", ..." if len(outliers) > 8 else "")
        warnings.append(
            f"{len(outliers)} point{'s' if len(outliers) > 1 else ''} (row{'s' if len(outliers) > 1 else ''} "
            f"{rows}, counted from 0) lie far from their neighbours; a squared loss follows them: "
            "set them aside with --outliers drop (outliers='drop' in Python), or check the measurements"
        )
    keep = np.setdiff1d(np.arange(n), outliers)
    swamp = neighbour_floor(X[keep], y[keep])
    if swamp > SWAMPED_ABOVE:
        warnings.append(
            f"the noise looks larger than the signal (a model-free estimate puts it at {swamp:.0%} of "
            "y's variance), or y varies faster than the points sample it: the data may not "
            "determine a law, and only the simplest programs are worth reading"
        )
    return DataReport(warnings, outliers)


def outlier_rows(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row indices of points far from their neighbours' local linear fit (module docstring);
    empty with fewer than 8 points, or too few for the variables (``SPARSE_POINTS`` a variable
    beyond three)."""
    X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    y = np.asarray(y, dtype=np.float64)
    n, d = X.shape
    if n < 8 or (d > SPARSE_FROM and n < SPARSE_POINTS * d):
        return np.zeros(0, dtype=int)
    scale = X.std(axis=0)
    Xs = (X - X.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    dist = ((Xs[:, None, :] - Xs[None, :, :]) ** 2).sum(axis=-1)
    np.fill_diagonal(dist, np.inf)
    k = min(n - 2, 2 * d + 2)
    flagged: list[int] = []
    for _ in range(int(MAX_OUTLIER_SHARE * n)):
        ok = np.ones(n, dtype=bool)
        ok[flagged] = False
        residual, spread = np.full(n, np.nan), np.full(n, np.nan)
        for i in np.flatnonzero(ok):
            order = np.argsort(np.where(ok, dist[i], np.inf))[:k]
            A = np.c_[np.ones(k), Xs[order] - Xs[i]]
            w = np.linalg.pinv(A)[0]  # the local fit's value at x_i, as weights on the neighbours
            residual[i] = (y[i] - w @ y[order]) / np.sqrt(1.0 + w @ w)
            spread[i] = np.ptp(y[order])
        r = residual[ok]
        sigma = 1.4826 * float(np.median(np.abs(r - np.median(r))))
        score = np.abs(residual - np.median(r))
        far = ok & (score > OUTLIER_SIGMAS * sigma) & (score > OUTLIER_SPREAD * spread)
        if not far.any():
            break
        flagged.append(int(np.nanargmax(np.where(far, score, np.nan))))
    return np.array(sorted(flagged), dtype=int)
