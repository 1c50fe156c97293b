"""Separability: power factors peeled off a many-variable law, the rest solved on fewer variables."""

from __future__ import annotations

import numpy as np

from pipelines.pipeline import InductionPipeline
from pipelines.separate import PowerSplit, power_splits
from simulator.execute import evaluate
from simulator.language import FunctionSet

PHYSICS = FunctionSet.from_names(["add", "sub", "mul", "div", "sin", "cos", "exp", "log", "sqrt", "const"], 5)


def _uniform(low: float, high: float, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, shape)


def test_a_product_of_powers_splits_with_nothing_left():
    X = _uniform(1, 5, (100, 5))
    y = X[:, 0] * X[:, 1] ** 2 * X[:, 2] / (3 * X[:, 3] * X[:, 4])
    best = power_splits(X, y)[0]
    assert best.rest == ()
    assert best.powers == ((0, 1.0), (1, 2.0), (2, 1.0), (3, -1.0), (4, -1.0))


def test_a_remainder_keeps_the_variables_that_are_not_powers_and_drops_those_not_used():
    X = _uniform(1, 3, (100, 5))
    y = X[:, 0] * X[:, 1] ** 2 / X[:, 2] * np.sin(X[:, 3])  # x5 does not enter
    best = power_splits(X, y)[0]
    assert best.rest == (3,)
    assert best.powers == ((0, 1.0), (1, 2.0), (2, -1.0))
    X_rest, r = best.remainder(X, y)
    assert np.allclose(r, np.sin(X_rest[:, 0]))


def test_combine_writes_the_remainder_over_the_original_variables():
    X = _uniform(1, 3, (50, 5))
    split = PowerSplit(((0, 0.5), (2, -2.0)), (3,), 5)
    rest = InductionPipeline.preset("plain").solve(X[:, [3]], np.sin(X[:, 3]), function_set="koza").program
    program = split.combine(rest, PHYSICS)
    assert np.allclose(evaluate(program, X), np.sqrt(X[:, 0]) * np.sin(X[:, 3]) / X[:, 2] ** 2)
    # without sqrt in the set a half power cannot be written
    assert split.combine(rest, FunctionSet.from_names("koza", 5)) is None
    # where x1 is negative somewhere the half power is sqrt(|x1|), so abs must be allowed
    negative = PowerSplit(((0, 0.5),), (3,), 5, frozenset({0}))
    assert negative.combine(rest, PHYSICS) is None
    with_abs = FunctionSet.from_names([*PHYSICS.to_names(), "abs"], 5)
    assert "abs" in negative.combine(rest, with_abs).tokens


def test_no_split_where_y_has_zeros_or_nothing_is_a_power():
    X = _uniform(-1, 1, (60, 3))
    assert power_splits(X, np.zeros(60)) == []
    y = np.exp(X[:, 0] * X[:, 1] + X[:, 2])  # every variable inside one exponential of a sum
    assert all(len(s.rest) >= 2 for s in power_splits(X, y))


def test_the_planner_solves_a_four_variable_law_through_the_split_and_counts_the_sub_solve():
    X = _uniform(1, 3, (100, 4))
    y = X[:, 0] * X[:, 1] ** 2 / X[:, 2] * np.sin(X[:, 3])
    pipe = InductionPipeline.preset("plain", polish_calls=50, polish_seconds=1.0)
    result = pipe.solve(X, y, function_set=PHYSICS.with_vars(4), calls=20_000, seconds=30, seed=0)
    assert result.loss < 1e-20
    assert "sin(x4)" in str(result.start)  # the recombined program started the search
    assert result.found_at <= result.calls
    off = InductionPipeline.preset("plain", separate=False, polish_calls=50, polish_seconds=1.0)
    assert (
        off.solve(X, y, function_set=PHYSICS.with_vars(4), calls=2_000, seconds=30, seed=0).start
        != result.start
    )
