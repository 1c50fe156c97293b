"""Constants fitted by the batched Levenberg-Marquardt."""

import numpy as np

from pipelines.search.constants import fit_constants_many
from simulator.execute import evaluate
from simulator.program import parse


def test_many_programs_fitted_at_once_each_to_its_own_optimum():
    X = np.linspace(-2, 2, 30)[:, None]
    y = 2.1 * np.sin(1.3 * X[:, 0] + 0.4) + 0.7
    programs = [
        parse("1.0*sin(1.0*x1 + 1.0) + 1.0"),  # the law's shape: fitted exactly from all ones
        parse("3.0*x1 + 1.0"),  # a line: the least-squares line
        parse("sin(x1)"),  # no constants: unchanged, no walks
        parse("2.0*exp(x1)"),
    ]
    fitted, walks = fit_constants_many(programs, X, y)
    assert np.allclose(fitted[0].consts, [2.1, 1.3, 0.4, 0.7], atol=1e-9)
    assert np.mean((evaluate(fitted[0], X) - y) ** 2) < 1e-24
    slope, intercept = np.polyfit(X[:, 0], y, 1)
    assert np.allclose(fitted[1].consts, [slope, intercept], rtol=1e-9)
    assert fitted[2] is programs[2]
    assert np.mean((evaluate(fitted[3], X) - y) ** 2) < np.mean((evaluate(programs[3], X) - y) ** 2)
    assert 3 <= walks <= 3 * 31


def test_a_fit_never_makes_a_program_worse_or_non_finite():
    X = np.linspace(0.1, 2, 20)[:, None]
    y = np.log(X[:, 0]) * 3
    start = parse("2.0/(x1 - 1.55)")  # a pole inside the data: steps that cross it are rejected
    (fitted,), _ = fit_constants_many([start], X, y)
    before = np.mean((evaluate(start, X) - y) ** 2)
    after = np.mean((evaluate(fitted, X) - y) ** 2)
    assert np.isfinite(after) and after <= before
