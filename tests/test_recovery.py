"""Exact recovery: equivalent forms count, numerical look-alikes do not."""

from __future__ import annotations

import time

import pytest
import sympy as sp

from simulator.recovery import _time_limit, _Timeout, is_recovered, round_floats

EQUIVALENT = [
    ("x1**0.5", "sqrt(x1)"),
    ("exp(x2*log(x1))", "x1**x2"),
    ("log(x1 + 1) + log(x1**2 + 1)", "log((x1 + 1)*(x1**2 + 1))"),
    ("3.3901*x1", "3.39*x1"),
    ("3.39*x1**3 + 2.1204*x1**2 + 1.78*x1", "3.39*x1**3 + 2.12*x1**2 + 1.78*x1"),
    ("x1*x1*x1 + x1*x1 + x1", "x1**3 + x1**2 + x1"),
    ("x1*(x1 + 1)*(x1**2 + 1)", "x1**4 + x1**3 + x1**2 + x1"),
    ("x1**4 - x1**3 + 0.5*x2**2 - x2", "x1**4 - x1**3 + x2**2/2 - x2"),
    ("x1**4 - x1**3 + x2*x2/(x2 + x2) * x2 - x2", "x1**4 - x1**3 + x2**2/2 - x2"),
    ("sin(x1)**2 + cos(x1)**2", "1"),
    ("sin(x1)*cos(x2) + sin(x1)*cos(x2)", "2*sin(x1)*cos(x2)"),
    ("sin(x1 + x2) + sin(x1 - x2)", "2*sin(x1)*cos(x2)"),
    ("sin(x1) + sin(x1*(x1 + 1))", "sin(x1) + sin(x1 + x1**2)"),
    ("x1/x1", "1"),
    ("exp(log(x1))", "x1"),
    ("sin(x1**2)*cos(x1) - 0.7499", "sin(x1**2)*cos(x1) - 0.75"),
    ("2.37679*sin(1)*sin(x1)*cos(x2)", "2*sin(x1)*cos(x2)"),
    ("exp(0.5*log(x1) + 0.10354)", "sqrt(1.23*x1)"),
]

DIFFERENT = [
    ("x1", "x1 + 0.01*x1**2"),
    ("sin(x1)", "cos(x1)"),
    ("x1**3 + x1**2", "x1**3 + x1**2 + x1"),
    ("3.38*x1", "3.39*x1"),
    ("sqrt(x1**2)", "x1"),
    ("x1", "x2"),
    ("exp(x1)", "1 + x1 + x1**2/2 + x1**3/6"),
    ("log(x1 + 1.4) + log(x1**2 + 1.3)", "log(x1 + 1.4) + log(x1**2 + 1.31)"),
]


@pytest.mark.parametrize(("found", "truth"), EQUIVALENT)
def test_equivalent_pairs_are_recovered(found: str, truth: str) -> None:
    assert is_recovered(found, truth)
    assert is_recovered(truth, found)


@pytest.mark.parametrize(("found", "truth"), DIFFERENT)
def test_different_pairs_are_not(found: str, truth: str) -> None:
    assert not is_recovered(found, truth)
    assert not is_recovered(truth, found)


def test_domain_decides_sign_dependent_identities() -> None:
    assert is_recovered("exp(x2*log(x1))", "x1**x2", domain=[(0, 1), (0, 1)])  # Nguyen-11
    assert not is_recovered("exp(x2*log(x1))", "x1**x2", domain=[(-1, 1), (0, 1)])
    assert is_recovered("sqrt(x1**2)", "x1", domain=[(0, 4)])
    assert not is_recovered("sqrt(x1**2)", "x1", domain=[(-1, 1)])
    assert is_recovered("2*log(x1)", "log(x1**2)", domain=[(0, 2)])
    assert is_recovered("1.065*log(x5**2) + 3", "3 + 2.13*log(Abs(x5))", domain=[(-50, 50)] * 5)
    assert not is_recovered("log(x1**2)", "2*log(x1)", domain=[(-1, 1)])  # not where x1 < 0


def test_accepts_sympy_and_mixed_symbol_assumptions() -> None:
    plain = sp.Symbol("x1")
    assert is_recovered(plain**2 + plain, "x1*(x1 + 1)")
    assert is_recovered(sp.Symbol("x1", positive=True) * 2, sp.Symbol("x1", real=True) + plain)


def test_bad_input_is_not_recovered() -> None:
    assert not is_recovered("x1 +* (", "x1")
    assert not is_recovered(object(), "x1")
    assert not is_recovered(sp.nan, "x1")
    assert not is_recovered(sp.zoo * sp.Symbol("x1"), "x1")


def test_round_floats_is_exact_decimal() -> None:
    x = sp.Symbol("x1")
    assert round_floats(sp.Float(3.3901) * x) == sp.Rational(339, 100) * x
    assert round_floats(x ** sp.Float(0.5)) == sp.sqrt(x)


def test_time_limit_interrupts() -> None:
    start = time.monotonic()
    with pytest.raises(_Timeout), _time_limit(0.05):
        while True:
            pass
    assert time.monotonic() - start < 30  # it stopped an endless loop; how soon depends on the machine
    assert is_recovered("x1 + 1", "1 + x1", timeout=10)  # a limit that does not fire changes nothing


def test_forms_sympy_will_not_combine_are_recovered_and_near_misses_are_not() -> None:
    # a constant inside a root (sqrt(2) in sqrt(2*(p1 - p2)/rho)) rounds like a written one
    bernoulli = "sqrt(2*(x1 - x2)/x3)"
    domain = [(200, 400), (10, 100), (1, 10)]
    assert is_recovered("1.41421356237313*sqrt(x1 - x2)/sqrt(x3)", bernoulli, domain=domain)
    assert not is_recovered("1.41621356237313*sqrt(x1 - x2)/sqrt(x3)", bernoulli, domain=domain)
    # roots written apart: equal squares and equal sampled values
    dilation, domain = "x1/sqrt(1 - x2**2/x3**2)", [(1, 10), (0, 1), (2, 3)]
    assert is_recovered("x1*sqrt(1/((x3 - x2)*(x2 + x3)))*Abs(x3)", dilation, domain=domain)
    assert not is_recovered("-x1*sqrt(1/((x3 - x2)*(x2 + x3)))*Abs(x3)", dilation, domain=domain)
    assert not is_recovered("x1*sqrt(1/((x3 - x2)*(x2 + x3)))*Abs(x2)", dilation, domain=domain)


def test_a_constant_written_as_a_quotient_is_recovered_from_its_fitted_value() -> None:
    """Rounding 14.2/3 and 4.73333333333333 to 3 decimals splits them; as fractions they agree."""
    truth = "0.23 + 14.2*(x4 + x2)/(3*x5)"
    assert is_recovered("4.73333333333333*x2/x5 + 4.73333333333333*x4/x5 + 0.23", truth)
    assert not is_recovered("4.7334*x2/x5 + 4.73333333333333*x4/x5 + 0.23", truth)
    assert not is_recovered("4.7333*(x2 + x4)/x5 + 0.23", truth)  # 1e-5 off is not the constant
