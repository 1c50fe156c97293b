"""Noise too faint for the floor's estimate (0.1% of y): the data look exact, no program fits
exactly, and the law must still win. The finisher refits the front, near shape fits join it,
and the chosen law snaps by description length."""

from __future__ import annotations

import numpy as np

from pipelines.search.budget import Budget
from pipelines.search.finish import finish, finish_reserve, snap_gain
from pipelines.search.planner import Planner
from pipelines.search.problem import Problem
from pipelines.search.shapes import NEAR_BAR, ShapeFitter
from pipelines.search.types import Candidate
from simulator.execute import evaluate_many
from simulator.language import FunctionSet
from simulator.program import parse

PHYSICS = ["add", "sub", "mul", "div", "sin", "cos", "exp", "log", "sqrt", "const"]


def _noisy(law, low: float, high: float, d: int = 1, level: float = 0.001, n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(low, high, (n, d))
    y = law(X)
    return X, y + rng.normal(0, level * np.sqrt(np.mean(y**2)), n)


def test_an_inverse_root_is_a_shape_written_with_its_shift_as_one():
    X = np.random.default_rng(0).uniform(0, 0.9, (40, 2))
    y = X[:, 0] / np.sqrt(1 - X[:, 1] ** 2)
    fits = ShapeFitter().fit(X, y, FunctionSet.from_names(PHYSICS, 2), 1e-10)
    assert fits.programs, "x1/sqrt(1 - x2**2) is a product of a base and an inverse root"
    law = fits.programs[0]
    assert "sqrt" in law.tokens and "div" in law.tokens
    assert 1.0 in law.consts or -1.0 in law.consts  # sqrt(c*L + 1): the shift scaled to one


def test_a_near_shape_is_offered_when_none_meets_the_bar():
    X, y = _noisy(lambda X: np.exp(-0.3 * X[:, 0]) * np.cos(2 * X[:, 0]), 0, 10)
    fits = ShapeFitter().fit(X, y, FunctionSet.from_names(PHYSICS, 1), 1e-10)
    assert not fits.programs and fits.near
    Y, ok = evaluate_many(fits.near, X)
    assert ok.any() and min(np.mean((Y[ok] - y) ** 2, axis=1) / np.var(y)) <= NEAR_BAR


def test_the_front_is_refitted_before_the_choice():
    """A row whose constant its parent left (2.9 where 3.0 fits) is refitted on all points, so
    a larger row that was fitted does not win the choice by that fit alone."""
    X, y = _noisy(lambda X: 3.0 * np.sqrt(X[:, 0]), 0.5, 4)
    planner = Planner()
    problem = Problem(X, y, FunctionSet.from_names(PHYSICS, 1))
    state = planner.solve_state(problem, Budget(20_000, 10.0, reserve=finish_reserve(20_000)))
    for text in ("2.9*sqrt(x1)", "sqrt(9.0*x1 + 0.001*x1*x1)"):
        program = parse(text)
        Y, _ = evaluate_many([program], X)
        state.admit(
            Candidate(program, float(np.mean((Y[0] - y) ** 2) / np.var(y)), (), "start", "a test"), None, 0
        )
    # by accuracy, so that no simplification of the larger row stands in for the refit
    result = finish(state, "accuracy", "calls", None, snap=False)
    row = next(r for r in result.front if r.complexity == 4)
    assert abs(row.program.consts[0] - 3.0) < 0.01 and row.loss < 1e-4
    assert result.calls <= 20_000


def test_the_snap_gain_is_what_a_constant_saves_by_description_length():
    n = 40
    assert np.isclose(n / 2 * np.log(snap_gain(n)), np.log(n) / 2)
    assert snap_gain(10_000) < snap_gain(40) < snap_gain(10)


def test_a_budget_reserve_is_held_from_the_search_and_released_to_the_finisher():
    budget = Budget(20_000, 10.0, reserve=finish_reserve(20_000))
    assert finish_reserve(20_000) == 200 and finish_reserve(5_000) == 0
    budget.charge(19_800)
    assert budget.exhausted() == "calls" and budget.remaining == 0
    budget.release()
    assert budget.exhausted() is None and budget.remaining == 200
