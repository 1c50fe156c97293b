"""check_xy turns user data into float arrays or fails with a one-line message."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.data import DataError, check_xy


def test_lists_arrays_and_shapes() -> None:
    X, y = check_xy([1, 2, 3, 4], [2.0, 4.0, 6.0, 8.0])
    assert X.shape == (4, 1) and X.dtype == np.float64 and y.shape == (4,) and y.dtype == np.float64
    X, y = check_xy(np.arange(10, dtype=np.int32).reshape(5, 2), np.ones((5, 1)))
    assert X.shape == (5, 2) and X.dtype == np.float64 and y.shape == (5,)
    X, none = check_xy([[1, 2], [3, 4], [5, 6]])
    assert X.shape == (3, 2) and none is None
    X, _ = check_xy([["1.5", "2"], ["3", "4"], ["5", "6e-1"]])
    assert X[2, 1] == 0.6


class _Frame:
    """Stands in for a pandas object: anything with to_numpy()."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def to_numpy(self) -> np.ndarray:
        return self.values


def test_pandas_like() -> None:
    X, y = check_xy(_Frame(np.ones((4, 3))), _Frame(np.zeros(4)))
    assert X.shape == (4, 3) and y.shape == (4,)


@pytest.mark.parametrize(
    ("X", "y", "needle"),
    [
        ([], None, "X is empty"),
        (np.zeros((0, 2)), None, "X is empty"),
        ([1, 2, 3], [], "y is empty"),
        ([[1, 2], [3], [4, 5]], None, "ragged: X[0] has 2 values but X[1] has 1"),
        ([[1, 2], [3, 4], [5, 6]], [[1, 2], [3, 4], [5, 6]], "y must be 1-D"),
        (["a", "b", "c"], None, "X is not numeric"),
        ([1, 2, 3], ["a", None, 1], "y is not numeric"),
        ([1, 2, 3], [1j, 2, 3], "y is complex"),
        ([[1, 2], [3, 4], [5, 6], [7, np.nan]], None, "X contains NaN at X[3, 1]"),
        ([1, 2, np.inf], None, "X contains inf at X[2]"),
        ([1, 2, 3], [1, np.nan, 3], "y contains NaN at y[1]"),
        ([1, 2, 3], [1, 2], "X has 3 rows but y has 2 values"),
        ([1, 2], [1, 2], "too few points (n_samples=2), need at least 3"),
        (np.zeros((2, 2, 2)), None, "X must be 1-D or 2-D"),
    ],
)
def test_bad_data(X: object, y: object, needle: str) -> None:
    with pytest.raises(DataError) as info:
        check_xy(X, y)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_min_points() -> None:
    check_xy([1.0], [2.0], min_points=1)
    with pytest.raises(DataError, match="too few"):
        check_xy(np.ones(5), np.ones(5), min_points=10)
