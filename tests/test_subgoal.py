"""The sub-goal library grows in two priced steps, and tidying keeps exact programs short."""

import numpy as np

from pipelines.budget import Budget
from pipelines.problem import Problem
from pipelines.subgoal import LibrarySubgoal
from pipelines.tidy import constant_digits, shorter_forms, without_one_constant
from simulator.enumerate import enumerate_exhaustive
from simulator.execute import evaluate
from simulator.language import FunctionSet
from simulator.program import parse


def _problem() -> Problem:
    X = np.random.default_rng(0).uniform(-1, 1, (20, 1))
    return Problem(X, X[:, 0] ** 3, FunctionSet.from_names("Koza"))


def test_library_waits_then_grows_and_counts_each_program_once():
    stage = LibrarySubgoal(first_size=5, first_after=300, max_size=7, start_after=2_000)
    problem = _problem()
    session = stage.start(problem)
    budget = Budget(200_000, 60, calls=100)
    assert session.grow(budget) == 0 and session.library is None

    budget.calls = 300
    n5 = len(enumerate_exhaustive(problem.function_set, problem.X, 5)[0])
    assert session.grow(budget) == n5 and max(len(p) for p in session.library.programs) <= 5
    assert session.grow(budget) == 0  # nothing new at the same size

    budget.calls = 2_000
    n7 = len(enumerate_exhaustive(problem.function_set, problem.X, 7, 20_000)[0])
    assert session.grow(budget) == n7 - n5  # the small library's programs are not paid twice
    assert max(len(p) for p in session.library.programs) == 7
    assert budget.calls == 2_000  # the stage reports its cost; only the planner charges it


def test_small_library_offers_only_exact_programs():
    stage = LibrarySubgoal(first_after=0, start_after=10**9)
    problem = _problem()
    offer = stage.start(problem).candidates(parse("x1"), Budget(200_000, 60))
    assert offer.calls > 0
    assert any(c.program.key == parse("x1*(x1*x1)").key for c in offer.candidates)
    assert all(np.allclose(evaluate(c.program, problem.X), problem.y) for c in offer.candidates)


def test_each_solve_gets_its_own_library():
    """A session is built on its own problem's X: never served from another task's."""
    stage = LibrarySubgoal(first_after=0, start_after=10**9)
    X1 = np.linspace(0.1, 1, 20)[:, None]
    X2 = np.linspace(2, 3, 20)[:, None]
    fs = FunctionSet.from_names("Koza")
    budget = Budget(200_000, 60)
    first = stage.start(Problem(X1, X1[:, 0] ** 3, fs))
    first.candidates(parse("x1"), budget)
    second = stage.start(Problem(X2, X2[:, 0] ** 3, fs))
    offer = second.candidates(parse("x1"), budget)
    assert np.array_equal(second.library.X, X2) and first.library is not second.library
    assert offer.calls > 0  # the second library is paid for too
    assert all(np.allclose(evaluate(c.program, X2), X2[:, 0] ** 3, rtol=1e-3) for c in offer.candidates)


def test_without_one_constant_and_constant_digits():
    p = parse("x1/0.5*(2.5*x1 + 1.5)")
    variants = {str(v) for v in without_one_constant(p)}
    assert variants == {"x1*(2.5*x1 + 1.5)", "x1/0.5*(x1 + 1.5)", "x1/0.5*(2.5*x1)"}
    assert constant_digits(parse("2.12*x1 + 1.78")) == 6
    assert constant_digits(parse("0.4716981132*x1")) > 6


def test_shorter_forms_absorb_a_phase_by_swapping_sin_and_cos():
    ckoza = FunctionSet.from_names("CKoza", n_vars=2)
    forms = {str(v) for v in shorter_forms(parse("sin(0.5*(1.5 - x2))*x1"), ckoza)}
    assert "cos(0.5*x2)*x1" in forms


def test_shorter_forms_offer_the_expanded_polynomial():
    forms = [
        v for v in shorter_forms(parse("3.39*x1*(x1*(x1 + 0.625) + 0.525)"), FunctionSet.from_names("CKoza"))
    ]
    expanded = [v for v in forms if v.tokens.count("const") == 3 and "pow" not in v.tokens]
    assert any(abs(sorted(v.consts)[-1] - 3.39) < 1e-12 for v in expanded), [str(v) for v in forms]
