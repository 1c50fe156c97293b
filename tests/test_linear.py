"""Linear and rational fits over a basis, written in the task's own tokens."""

import numpy as np
import pytest

from pipelines.search.linear import LinearFitter
from pipelines.search.spelling import Speller
from simulator.execute import evaluate
from simulator.language import FunctionSet
from simulator.scoring import nmse

KOZA = "add,sub,mul,div,sin,cos,exp,log"
rng = np.random.default_rng(0)


def fits(f, names, lo=-1.0, hi=1.0, n=20, d=1, bar=1e-12, noise=0.0):
    X = rng.uniform(lo, hi, (n, d))
    y = f(*X.T)
    if noise:
        y = y + noise * np.sqrt(np.mean(y**2)) * rng.normal(size=n)
    fs = FunctionSet.from_names(names, d)
    out = LinearFitter().fit(X, y, fs, bar, noisy=noise > 0)
    for program, _ in out.programs:
        assert set(program.tokens) <= set(fs.tokens), "only the task's tokens"
    return X, y, out


@pytest.mark.parametrize(
    "f, lo, hi",
    [
        (lambda x: x**6 - 2 * x**4 + x**2, -1, 1),  # integer coefficients, no constants
        (lambda x: 5 * x**5 + 2 * x**3 + 3 * x, -1, 1),
        (lambda x: x**2 * np.cos(x) + 4, -1, 1),  # an integer offset with no constants
        (np.sinh, -1, 1),  # exp(x)/2 - exp(-x)/2
        (lambda x: (x**2 + 2) / (x + 1), 0, 2),  # a ratio of polynomials
        (lambda x: x**4 / (x**2 + x + 1), -1, 1),
    ],
)
def test_exact_algebra_without_constants(f, lo, hi):
    X, y, out = fits(f, KOZA, lo, hi)
    assert out.programs, "an exact fit is found"
    program, reason = out.programs[0]
    assert nmse(evaluate(program, X), y)[0] < 1e-20
    assert "const" not in program.tokens
    assert out.calls > 0 and out.scored > 0  # every basis column is a call


def test_rational_with_constants_many_variables():
    X, y, out = fits(
        lambda x1, x2, x3: 30 * (x1 - 1) * (x3 - 1) / ((x1 - 10) * x2**2),
        "add,sub,mul,div,const",
        0.05,
        2.0,
        n=300,
        d=3,
        bar=1e-20,
    )
    program, reason = out.programs[0]
    assert "rational" in reason and nmse(evaluate(program, X), y)[0] < 1e-20


@pytest.mark.parametrize("f", [np.exp, np.sinh, lambda x: np.log(x + 2)])
def test_no_false_exact_fit_of_smooth_functions(f):
    """Taylor and Pade look-alikes of smooth functions reach 1e-23, not rounding error."""
    _, _, out = fits(f, "add,sub,mul,div,const", bar=1e-20)
    assert out.programs == []


def test_noisy_saturating_law_is_a_short_rational():
    X, y, out = fits(
        lambda s: 2.3 * s / (0.7 + s), "add,sub,mul,div,exp,const", 0.1, 5, n=30, noise=0.01, bar=0.01
    )
    program, reason = out.programs[0]
    assert program.complexity <= 7 and "rational" in reason


def test_noisy_hill_curve_is_a_sparse_rational_without_a_pole():
    """c²/(K + c²) at 2% noise: a dense 2/2 fit puts a pole between the points; the sparse one
    is the law, and comes first."""
    for _ in range(3):  # three draws of the noise
        X, y, out = fits(
            lambda c: c**2 / (0.8 + c**2),
            "add,sub,mul,div,exp,log,const",
            0.1,
            3,
            n=30,
            noise=0.02,
            bar=0.004,
        )
        program, reason = out.programs[0]
        assert "sparse rational" in reason and program.tokens[0] == "div" and program.complexity <= 11, str(
            program
        )


def test_speller_writes_integers_in_the_sets_tokens():
    X = np.linspace(-1, 1, 21)[:, None]  # holds 0: x/x is invalid there
    speller = Speller(FunctionSet.from_names(KOZA, 1), X)
    for k in (1, 2, 5, 12):
        tokens = speller.integer(k)
        from simulator.program import Program

        assert np.allclose(evaluate(Program(tokens), X), k)


def test_a_law_under_a_unary_is_a_fit_of_its_inverse():
    """y = x2/sqrt(x1² + x2² + x3²) is sqrt of a rational fit of y²; log of a cubic is a fit of exp(y)."""
    X = np.random.default_rng(0).uniform(0, 3, (100, 3))
    y = X[:, 1] / np.sqrt(X[:, 0] ** 2 + X[:, 1] ** 2 + X[:, 2] ** 2)
    fits = LinearFitter().fit(
        X, y, FunctionSet.from_names(["add", "sub", "mul", "div", "sqrt", "const"], 3), 1e-20
    )
    program, reason = fits.programs[0]
    assert program.tokens[0] == "sqrt" and reason.endswith("of y**2")
    assert nmse(evaluate(program, X), y)[0] < 1e-20
    x = np.linspace(0, 2, 20)[:, None]
    y = np.log(x[:, 0] + 1) + np.log(x[:, 0] ** 2 + 1)
    program, reason = LinearFitter().fit(x, y, FunctionSet.from_names("koza", 1), 1e-12).programs[0]
    assert program.tokens[0] == "log" and reason.endswith("of exp(y)") and "const" not in program.tokens
    assert nmse(evaluate(program, x), y)[0] < 1e-12


def test_the_result_says_the_law_came_from_a_rational_fit():
    from pipelines.interface.pipeline import InductionPipeline

    X = np.linspace(0.5, 3, 30)[:, None]
    y = (X[:, 0] ** 2 + 2) / (X[:, 0] + 1)
    res = InductionPipeline.preset("uniform", linear=True).solve(X, y, "koza", calls=5_000, seconds=60)
    assert res.loss < 1e-12 and res.origin.startswith("a rational fit")
    assert f"from:     {res.origin}" in str(res) and res.to_dict()["origin"] == res.origin
