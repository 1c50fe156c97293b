"""Checking a user's data set (X, y) once, at the boundary, with one-line messages.

Everything downstream assumes float64 X of shape (n, d) and y of shape (n,), all finite,
so bad data fails here with a message that says what and where, not deep inside a fit.
Places are written as indices into the arrays, counted from 0 as in numpy: ``X[3, 1]``,
``y[2]``. (The command line reads CSV files itself and names the file's line instead.)
"""

from __future__ import annotations

from typing import Any

import numpy as np


class DataError(ValueError):
    """Data that cannot be used as (X, y)."""


def _as_array(value: Any, label: str) -> np.ndarray:
    """Convert lists, arrays and pandas-like objects to a float64 array."""
    if hasattr(value, "to_numpy"):  # pandas DataFrame / Series, polars, ...
        value = value.to_numpy()
    if isinstance(value, (list, tuple)):
        lengths = {len(row) if isinstance(row, (list, tuple, np.ndarray)) else -1 for row in value}
        if len(lengths) > 1:
            widths = [len(r) if isinstance(r, (list, tuple, np.ndarray)) else 1 for r in value]
            bad = next(i for i, w in enumerate(widths) if w != widths[0])
            raise DataError(
                f"{label} is ragged: {label}[0] has {widths[0]} values but {label}[{bad}] has {widths[bad]}"
            )
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nesting deeper than one level
        raise DataError(f"{label} is ragged: {error}") from None
    if array.dtype.kind == "c":
        raise DataError(f"{label} is complex; only real numbers are accepted")
    if array.dtype.kind not in "biuf":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            raise DataError(f"{label} is not numeric (dtype {array.dtype})") from None
    array = array.astype(np.float64, copy=False)
    # pandas hands out read-only views; torch warns on those, so every caller gets its own copy
    return array if array.flags.writeable else array.copy()


def _check_finite(array: np.ndarray, label: str) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        index = np.argwhere(bad)[0]
        kind = "NaN" if np.isnan(array[tuple(index)]) else "inf"
        where = f"{label}[{', '.join(str(int(i)) for i in index)}]"
        raise DataError(f"{label} contains {kind} at {where} ({int(bad.sum())} non-finite values in all)")


def check_xy(X: Any, y: Any = None, *, min_points: int = 3) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate and convert a data set to X float64 (n, d) and y float64 (n,).

    A 1-D X is one variable. A y of shape (n, 1) (a one-column frame) is flattened;
    any other y that is not 1-D is rejected. Indices in messages count from 0. When y is None
    only X is checked and None is returned in its place.
    """
    x = _as_array(X, "X")
    if x.size == 0:
        raise DataError("X is empty")
    if x.ndim not in (1, 2):
        raise DataError(f"X must be 1-D or 2-D (points x variables), got shape {x.shape}")
    _check_finite(x, "X")  # before the reshape, so the index is the one the caller knows
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[0] < min_points:
        raise DataError(f"too few points (n_samples={x.shape[0]}), need at least {min_points}")
    if y is None:
        return x, None
    t = _as_array(y, "y")
    if t.size == 0:
        raise DataError("y is empty")
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 1:
        raise DataError(f"y must be 1-D (one target value a point), got shape {t.shape}")
    if t.shape[0] != x.shape[0]:
        raise DataError(f"X has {x.shape[0]} rows but y has {t.shape[0]} values")
    _check_finite(t, "y")
    return x, t
