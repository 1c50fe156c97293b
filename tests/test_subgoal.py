"""The sub-goal library grows on demand, priced per program, and tidying keeps exact programs short."""

import numpy as np

from pipelines.search.budget import Budget
from pipelines.search.problem import Problem
from pipelines.search.subgoal import LibrarySubgoal
from pipelines.search.tidy import constant_digits, shorter_forms, without_one_constant
from simulator.enumerate import enumerate_exhaustive
from simulator.execute import evaluate
from simulator.language import FunctionSet
from simulator.program import parse


def _problem() -> Problem:
    X = np.random.default_rng(0).uniform(-1, 1, (20, 1))
    return Problem(X, X[:, 0] ** 3, FunctionSet.from_names("Koza"))


def test_library_grows_on_demand_in_order_and_counts_each_program_once():
    """The library starts at ``first_entries``, doubles only once it has cost at most ``pace``
    times the rest of the search, pays for each program once, and is the same prefix of the
    enumeration that a single build would give."""
    stage = LibrarySubgoal(first_entries=100, growth=2.0, pace=1.0, max_size=7)
    problem = _problem()
    session = stage.start(problem)
    budget = Budget(200_000, 60, calls=10)
    assert session.wants_call(budget)
    assert session.grow(budget) == 100 and len(session.library) <= 100
    budget.calls += 100  # the planner charges what the stage reports
    assert not session.wants_call(budget) and session.grow(budget) == 0  # 100 > 1.0 * 10
    budget.calls = 200
    assert session.wants_call(budget) and session.grow(budget) == 100  # 200 in all, 100 new
    full, _ = enumerate_exhaustive(problem.function_set, session.problem.X, 7, 200)
    assert {p.key for p in session.library.programs} == {p.key for p in full}  # the same prefix
    sizes = [len(p.tokens) for p in session.library.programs]
    assert sizes == sorted(sizes)  # listed smallest first
    budget.calls = 10**6
    while session.wants_call(budget):
        session.grow(budget)
    everything = enumerate_exhaustive(problem.function_set, session.problem.X, 7, 20_000)[0]
    assert session.complete and session.enumerated == len(everything) < 20_000
    assert session.grow(budget) == 0 and budget.calls == 10**6  # only the planner charges


def test_small_library_offers_only_exact_programs():
    stage = LibrarySubgoal(foothold_entries=10**9)
    problem = _problem()
    offer = stage.start(problem).candidates(parse("x1"), Budget(200_000, 60))
    assert offer.calls > 0
    assert any(c.program.key == parse("x1*(x1*x1)").key for c in offer.candidates)
    assert all(np.allclose(evaluate(c.program, problem.X), problem.y) for c in offer.candidates)


def test_each_solve_gets_its_own_library():
    """A session is built on its own problem's X: never served from another task's."""
    stage = LibrarySubgoal(foothold_entries=10**9)
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
