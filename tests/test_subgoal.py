"""The sub-goal library grows in two priced steps, and tidying keeps exact programs short."""

import numpy as np

from pipelines.problem import Problem
from pipelines.subgoal import LibrarySubgoal
from pipelines.tidy import constant_digits, shorter_forms, without_one_constant
from simulator.enumerate import enumerate_exhaustive
from simulator.execute import evaluate
from simulator.language import FunctionSet
from simulator.program import parse


def _problem(calls: int) -> Problem:
    X = np.random.default_rng(0).uniform(-1, 1, (20, 1))
    fs = FunctionSet.from_names("Koza")
    return Problem(X, X[:, 0] ** 3, fs, np.random.default_rng(0), 200_000, 60, calls=calls)


def test_library_waits_then_grows_and_counts_each_program_once():
    stage = LibrarySubgoal(first_size=5, first_after=300, max_size=7, start_after=2_000)
    problem = _problem(calls=100)
    assert stage.library(problem) is None and problem.calls == 100

    problem.calls = 300
    small = stage.library(problem)
    n5 = len(enumerate_exhaustive(problem.function_set, problem.X, 5)[0])
    assert problem.calls == 300 + n5 and max(len(p) for p in small.programs) <= 5

    problem.calls = 2_000
    big = stage.library(problem)
    n7 = len(enumerate_exhaustive(problem.function_set, problem.X, 7, 20_000)[0])
    assert problem.calls == 2_000 + n7 - n5  # the small library's programs are not paid twice
    assert max(len(p) for p in big.programs) == 7


def test_small_library_offers_only_exact_programs():
    stage = LibrarySubgoal(first_after=0, start_after=10**9)
    problem = _problem(calls=0)

    class Node:
        program = parse("x1")

    cands = stage.candidates(problem, Node())
    assert any(c.program.key == parse("x1*(x1*x1)").key for c in cands)
    assert all(np.allclose(evaluate(c.program, problem.X), problem.y) for c in cands)


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
