"""Separability: power factors peeled off a many-variable law, the rest solved on fewer variables."""

from __future__ import annotations

import dataclasses

import numpy as np

from pipelines.interface.pipeline import InductionPipeline
from pipelines.search.separate import PowerSplit, offset_products, power_splits, sum_splits, symmetry_splits
from pipelines.search.starts import SEPARATE_AFTER
from pipelines.search.subgoal import NoSubgoal
from simulator.execute import evaluate
from simulator.language import FunctionSet
from simulator.program import parse

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
    fs = PHYSICS.with_vars(4)
    results = {}
    for separate in (True, False):
        pipe = InductionPipeline.preset("plain", separate=separate, polish_calls=50, polish_seconds=1.0)
        pipe = pipe.replace(subgoal=NoSubgoal())  # no library: the edit search alone is slow here
        results[separate] = pipe.solve(X, y, function_set=fs, calls=6_000, seconds=60, seed=0)
    split = results[True]
    assert split.loss < 1e-20 and str(split.start).endswith("*x1*x2*x2/x3")  # R(x4) times the powers
    assert SEPARATE_AFTER < split.found_at <= split.calls  # after the search found it hard
    assert split.split == "powers peeled: x1^1 x2^2 x3^-1 · R(x4)" and results[False].split == ""
    assert results[False].loss > 1e-6  # without the split, not within this budget


def test_a_sum_of_parts_on_disjoint_variables_splits_and_the_first_part_is_exact():
    X = _uniform(0, 1, (20, 2))
    y = X[:, 0] ** 4 - X[:, 0] ** 3 + X[:, 1] ** 2 / 2 - X[:, 1]  # Nguyen-12
    (split,) = sum_splits(X, y)
    assert {split.first, split.second} == {(0,), (1,)} and not split.second_is_zero
    part = X[:, 0] ** 4 - X[:, 0] ** 3 if split.first == (0,) else X[:, 1] ** 2 / 2 - X[:, 1]
    assert np.allclose(split.first_target, part, atol=1e-12)  # G(0) = 0: no constant moves


def test_variables_that_do_not_enter_are_dropped_and_products_do_not_split_as_sums():
    X = _uniform(1, 3, (60, 3))
    (split,) = sum_splits(X, 1.5 + 2 * X[:, 1] ** 2)
    assert split.first == (1,) and split.second_is_zero
    assert sum_splits(X, X[:, 0] * X[:, 1] * X[:, 2]) == []


def test_the_planner_solves_a_sum_through_the_split():
    X = _uniform(0, 1, (20, 2))
    y = X[:, 0] ** 4 - X[:, 0] ** 3 + X[:, 1] ** 2 / 2 - X[:, 1]
    pipe = InductionPipeline.preset("plain", linear=False)  # a polynomial: the linear fit would meet it
    seen = []  # the progress bar's feed keeps moving through the sub-searches
    result = pipe.solve(
        X,
        y,
        function_set="koza",
        calls=30_000,
        seconds=60,
        seed=0,
        progress=lambda b, n: seen.append(b.calls),
    )
    assert result.loss < 1e-12 and result.stopped == "exact fit"
    assert seen == sorted(seen) and seen[-1] <= result.calls and any(c > SEPARATE_AFTER for c in seen)
    assert result.trace == [] and "x2" in str(result.start) and "x1" in str(result.start)
    assert result.split == "a sum split: F(x1) + G(x2)" and "split:    sum split, y = F(x1) + G(x2)" in str(
        result
    )
    named = dataclasses.replace(result, variable_names=("t", "v"))
    assert (
        named.named_split() == "a sum split: F(t) + G(v)" and named.to_dict()["split"] == named.named_split()
    )


def test_a_difference_or_ratio_of_two_variables_becomes_one_variable():
    X = _uniform(1, 3, (100, 3))
    y = np.exp(-((X[:, 0] - X[:, 1]) ** 2)) * X[:, 2]
    (split,) = symmetry_splits(X, y)
    assert (split.i, split.j, split.op) == (0, 1, "sub")
    assert np.allclose(split.reduced(X)[:, 0], X[:, 0] - X[:, 1])
    program = split.combine(parse("x2*exp(x1*x1)"), FunctionSet.from_names("koza", 3))
    assert np.allclose(evaluate(program, X), np.exp((X[:, 0] - X[:, 1]) ** 2) * X[:, 2])
    (ratio,) = symmetry_splits(X, np.sin(X[:, 0] / X[:, 2]) + X[:, 1])
    assert (ratio.i, ratio.j, ratio.op) == (0, 2, "div")
    assert symmetry_splits(X, X[:, 0] * X[:, 1] ** 2 + X[:, 2]) == []  # x1, x2 apart


def test_a_split_under_validation_selection_solves_its_parts_without_a_split_of_their_own():
    X = _uniform(0, 1, (40, 2))
    y = X[:, 0] ** 4 - X[:, 0] ** 3 + X[:, 1] ** 2 / 2 - X[:, 1]
    pipe = InductionPipeline.preset("plain", select="validation", linear=False)
    result = pipe.solve(X, y, function_set="koza", calls=30_000, seconds=60, seed=0, validation=0.25)
    assert result.split.startswith("a sum split") and result.selection == "validation"


def test_a_product_of_powers_plus_a_constant_is_found_before_any_search():
    X = _uniform(1, 5, (100, 3))
    y = 3.3 + 2 * X[:, 0] * X[:, 1] ** 2 / X[:, 2]
    (split,) = offset_products(X, y)
    assert split.powers == ((0, 1.0), (1, 2.0), (2, -1.0)) and abs(split.offset - 3.3) < 1e-6
    assert offset_products(X, 2 * X[:, 0] * X[:, 1] ** 2 / X[:, 2]) == []  # no offset needed
    assert offset_products(X, 2 * X[:, 0] + X[:, 1] ** 2 / X[:, 2]) == []
    pipe = InductionPipeline.preset("plain", polish_calls=50, polish_seconds=1.0)
    result = pipe.solve(X, y, function_set=PHYSICS.with_vars(3), calls=5_000, seconds=60, seed=0)
    assert result.loss < 1e-20 and result.split.startswith("a product of powers: 3.3 + x1^1")
