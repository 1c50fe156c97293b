"""Readable constants: fitted constants snapped to simple forms where the loss allows."""

from __future__ import annotations

import json

import numpy as np
import sympy

from pipelines import cli
from pipelines.interface.estimator import ProgramRegressor
from pipelines.interface.pipeline import InductionPipeline
from pipelines.search.budget import Budget
from pipelines.search.constants import fit_constants_many
from pipelines.search.finish import finish
from pipelines.search.planner import Planner
from pipelines.search.problem import Problem
from pipelines.search.settings import PlannerSettings
from pipelines.search.snap import nested_cap, simple_forms, snap_constants
from pipelines.search.types import Candidate
from simulator.execute import evaluate_many
from simulator.language import FunctionSet
from simulator.program import parse

FLOOR = 4.1e-4  # about what the noise-floor estimate says of the Kepler data below


def _kepler(n: int = 40, noise: float = 0.01, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """T = a**1.5 with Gaussian noise of ``noise`` times the RMS of T (SRBench's convention)."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 5, n)
    T = a**1.5
    return a[:, None], T + noise * np.sqrt(np.mean(T**2)) * rng.standard_normal(n)


def _fitted(text: str, X: np.ndarray, y: np.ndarray) -> tuple[Problem, object, float]:
    problem = Problem(X, y, FunctionSet.from_names("ckoza", X.shape[1]))
    (program,), _ = fit_constants_many([parse(text)], X, y)
    Y, _ = evaluate_many([program], X)
    return problem, program, float(problem.nmse(Y)[0])


def test_simple_forms_come_shortest_first_and_never_zero():
    assert simple_forms(1.50128)[0] == sympy.Rational(3, 2)
    assert simple_forms(-3.1416)[:2] == [-3, -sympy.pi]  # 3 is tried first, then pi
    assert simple_forms(1.4142)[0] == sympy.sqrt(2)
    assert simple_forms(0.33)[0] == sympy.Rational(1, 3)
    assert simple_forms(6.28)[:2] == [6, 2 * sympy.pi]  # an integer is shorter than 2*pi
    assert simple_forms(1002.33) == [1000, 1002] and simple_forms(-0.0498)[0] == -sympy.Rational(1, 20)
    assert simple_forms(1.03e-5) == [sympy.Rational(1, 100_000)]  # short decimals at any scale
    assert simple_forms(0.0) == [] and simple_forms(float("nan")) == []
    assert all(abs(float(f) - 12.1) <= 1.21 for f in simple_forms(12.1))


def test_the_fitter_holds_frozen_constants():
    X, y = _kepler()
    (free,), _ = fit_constants_many([parse("1.0*x1**1.4")], X, y)
    (held,), _ = fit_constants_many([parse("1.0*x1**1.5")], X, y, frozen=[[1]])
    assert held.consts[1] == 1.5 and free.consts[1] != 1.4 and held.consts[0] != 1.0


def test_noisy_kepler_snaps_to_three_halves_and_counts_its_calls():
    X, y = _kepler()
    problem, program, loss = _fitted("1.0*x1**1.4", X, y)
    assert abs(program.consts[1] - 1.5) > 1e-4  # the fit chases the noise
    budget = Budget(100, 10.0)
    snapped, new, record = snap_constants(program, loss, problem, budget, loss + 0.5 * FLOOR)
    assert snapped.consts == (1.0, 1.5) and new <= loss + 0.5 * FLOOR
    assert record.fitted == program.consts and record.texts() == ["1", "3/2"]
    assert 2 <= budget.calls <= 3 and budget.fit_passes > 0  # a refit while the other is free
    assert snap_constants(program, loss, problem, Budget(0, 10.0), 1.0) is None  # no calls left


def test_a_floor_set_too_high_on_few_points_cannot_snap_two_pi_to_six():
    """Eight points, 1% noise: the floor's estimate (0.05) would allow 6 for 2*pi; the
    nested-model F test does not, and a form near 2*pi passes it."""
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(0.1, 2, 8), rng.uniform(10, 100, 8)])
    T = 2 * np.pi * np.sqrt(X[:, 0] / X[:, 1])
    y = T + 0.01 * np.sqrt(np.mean(T**2)) * rng.standard_normal(8)
    problem, program, loss = _fitted("6.0*sqrt(x1/x2)", X, y)
    loose = snap_constants(program, loss, problem, Budget(100, 10.0), 0.05)
    assert loose is not None and loose[0].consts == (6.0,)  # what the floor alone allowed
    snapped, new, record = snap_constants(program, loss, problem, Budget(100, 10.0), 0.05, level=0.01)
    assert abs(snapped.consts[0] - 2 * np.pi) < 0.01 and new <= nested_cap(loss, 8, 1, 1, 0.01)
    assert nested_cap(loss, 1, 1, 1, 0.01) < 0  # as many constants as points: nothing can be tested


def test_exact_data_snap_only_what_stays_exact():
    X = np.linspace(0.5, 3, 30)[:, None]
    bar = 1e-20
    problem, program, loss = _fitted("3.0*x1 + 1.0", X, 3.39 * X[:, 0] + 1.5)
    snapped, new, record = snap_constants(program, loss, problem, Budget(1000, 10.0), bar)
    assert record.texts() == [None, "3/2"] and snapped.consts[0] == program.consts[0] and new <= bar


def test_settings_cli_and_regressor_share_snap():
    assert PlannerSettings().snap is True and PlannerSettings.from_mapping({"snap": False}).snap is False
    assert InductionPipeline.preset("plain", snap=False).settings.snap is False
    assert "snap" in ProgramRegressor().get_params()


def _state(X: np.ndarray, y: np.ndarray, texts: list[str], floor: float = FLOOR, calls: int = 1_000):
    """A solve's state whose front holds ``texts``, each fitted, as if a search had found them."""
    planner = Planner()
    state = planner.solve_state(
        Problem(X, y, FunctionSet.from_names("ckoza", X.shape[1])), Budget(calls, 10.0), floor=floor
    )
    for text in texts:
        problem, program, loss = _fitted(text, X, y)
        state.admit(Candidate(program, loss, (), "start", "a test's start"), None, 0)
    return state


def test_the_finisher_snaps_the_choice_and_every_front_row():
    X, y = _kepler()
    texts = ["x1", "1.0*x1", "exp(1.4*log(x1))", "1.0*exp(1.4*log(x1))"]
    result = finish(_state(X, y, texts), "auto", "noise floor reached", None, snap=True)
    a = sympy.Symbol("x1", real=True)
    assert result.sympy() == a ** sympy.Rational(3, 2) and "found:    x1**(3/2)" in str(result)
    assert "fitted:   x1**1.50" in str(result) and result.calls <= 1_000
    rows = {r.complexity: result.named(r.program) for r in result.front}
    assert rows[5] == a ** sympy.Rational(3, 2)
    assert rows[3] != 2 * a  # 2*x1 would lose more than the noise allows over 1.958*x1
    # 1*x1**(3/2) fits no better than the row above: 1.0016*x1**1.5013 stays on the front, fitted
    assert rows[7] == result.front[-1].program.to_sympy() and result.front[-1].program not in result.snaps
    out = result.to_dict()
    assert out["constants"] == [1.5] and out["snapped_constants"] == ["3/2"]
    assert abs(out["fitted_constants"][0] - 1.5) > 1e-4 and out["nmse_fitted"] < out["nmse_train"]
    assert out["sympy"] == "x1**(3/2)"
    assert [r["snapped_constants"] for r in out["front"]] == [[], [None], ["3/2"], [None, None]]
    assert out["found_at"] == 0  # snapping finds no new program: the fit's stamp stays


def test_without_snap_or_on_exact_data_the_fitted_constants_stay():
    X, y = _kepler()
    texts = ["exp(1.4*log(x1))"]
    result = finish(_state(X, y, texts), "auto", "noise floor reached", None, snap=False)
    assert result.program.consts[0] != 1.5 and not result.snaps and "fitted:" not in str(result)
    assert result.to_dict()["snapped_constants"] == [None]
    exact = 3.39 * X[:, 0] ** 1.5  # exact data: 3.39 is not 7/2 or pi, but the exponent is 3/2
    result = finish(_state(X, exact, ["1.0*exp(1.4*log(x1))"], 0.0), "auto", "exact fit", None, snap=True)
    assert result.to_dict()["snapped_constants"] == [None, "3/2"] and result.loss < 1e-20
    # an exact fit keeps the exact rule even where the floor's estimate saw noise
    result = finish(_state(X, exact, ["1.0*exp(1.4*log(x1))"]), "auto", "exact fit", None, snap=True)
    assert result.to_dict()["snapped_constants"] == [None, "3/2"] and result.loss < 1e-20


def test_sub_searches_leave_their_constants_as_fitted(monkeypatch):
    seen: list[bool] = []
    search = Planner.search

    def spy(self, *args, **kwargs):
        seen.append(self.settings.snap)
        return search(self, *args, **kwargs)

    monkeypatch.setattr(Planner, "search", spy)
    X, y = _kepler()
    planner = Planner(separate=False, shapes=False, linear=False)
    state = planner.solve_state(Problem(X, y, FunctionSet.from_names("ckoza", X.shape[1])), Budget(400, 1.0))
    planner.sub_solve(state, X, y)
    assert seen == [False] and planner.settings.snap


def _product(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """y = 2.5*x1*x2 with 1% noise: a law the uniform pipeline finds in about a second."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.5, 5, (n, 2))
    y = 2.5 * X[:, 0] * X[:, 1]
    return X, y + 0.01 * np.sqrt(np.mean(y**2)) * rng.standard_normal(n)


# a quick noisy solve: the floor given (its estimate takes seconds), a short polish
QUICK = {"pipeline": "uniform", "calls": 20_000, "seconds": 5, "noise_floor": 6e-4, "polish_calls": 100}


def test_the_regressor_snaps_by_default():
    X, y = _product()
    reg = ProgramRegressor(**QUICK, polish_seconds=0.1).fit(X, y)
    x1, x2 = sympy.symbols("x1 x2", real=True)
    assert reg.sympy() == sympy.Rational(5, 2) * x1 * x2 and reg.result_.calls <= 20_000
    assert reg.result_.to_dict()["snapped_constants"] in (["5/2"], ["2/5"])  # 5/2*x or x/(2/5)


def test_solve_no_snap_keeps_the_fitted_value(tmp_path, capsys):
    X, y = _product()
    csv = tmp_path / "product.csv"
    csv.write_text("a,b,y\n" + "".join(f"{a!r},{b!r},{t!r}\n" for (a, b), t in zip(X.tolist(), y.tolist())))
    config = tmp_path / "quick.yaml"
    config.write_text("preset: uniform\nnoise_floor: 6.0e-4\npolish_calls: 100\npolish_seconds: 0.1\n")
    args = ["solve", "--csv", str(csv), "--target", "y", "--config", str(config), "--seconds", "5"]
    assert cli.main([*args, "--no-snap", "--json", str(tmp_path / "off.json")]) == 0
    text = capsys.readouterr().out
    assert "found:    2.50" in text and "fitted:" not in text
    off = json.loads((tmp_path / "off.json").read_text())
    assert off["constants"] == off["fitted_constants"] and off["snapped_constants"] == [None]
