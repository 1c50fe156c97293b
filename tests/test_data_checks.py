"""Data a solve can use but that may mislead: each finding is a warning the user sees."""

import json

import numpy as np
import pytest

from pipelines.cli import main
from pipelines.interface.data_checks import inspect_data, outlier_rows
from pipelines.search.settings import PlannerSettings, SettingsError


def _square(n=30, seed=0):
    x = np.random.default_rng(seed).uniform(1, 5, n)
    return x[:, None], 3 * x**2


def test_two_points_ten_times_off_are_found_and_nothing_else():
    X, y = _square()
    y[[3, 17]] *= 10
    assert outlier_rows(X, y).tolist() == [3, 17]


@pytest.mark.parametrize("law", [np.exp, lambda x: 1 / x, lambda x: np.sin(3 * x), np.sqrt])
def test_a_steep_smooth_law_has_no_outliers(law):
    x = np.random.default_rng(1).uniform(0.2, 5, 40)
    y = law(x)
    assert outlier_rows(x[:, None], y).size == 0
    noisy = y + np.random.default_rng(2).normal(0, 0.01 * np.sqrt(np.mean(y**2)), 40)
    assert outlier_rows(x[:, None], noisy).size == 0


def test_constant_column_repeated_rows_and_swamping_noise_are_named():
    X, y = _square()
    warned = inspect_data(np.c_[X, np.full(30, 2.0)], y, ["x", "c"]).warnings
    assert len(warned) == 1 and "column 'c' is 2 on every point" in warned[0]
    warned = inspect_data(np.r_[X[:5], X[:5]], np.r_[y[:5], y[:5]], ["x"]).warnings
    assert warned == ["5 rows repeat an earlier row exactly: the law rests on 5 distinct inputs, not 10"]
    noisy = X[:, 0] + np.random.default_rng(0).normal(0, 10, 30)
    assert "the noise looks larger than the signal" in inspect_data(X, noisy).warnings[0]
    assert inspect_data(X, y).warnings == []


def test_the_outliers_setting_is_checked():
    assert PlannerSettings(outliers="drop").outliers == "drop"
    with pytest.raises(SettingsError, match="outliers must be keep or drop"):
        PlannerSettings(outliers="huber")


def test_outliers_warn_by_default_and_drop_on_request(tmp_path, capsys):
    X, y = _square()
    y[[3, 17]] *= 10
    data = tmp_path / "outliers.csv"
    data.write_text("x,y\n" + "".join(f"{a},{b}\n" for a, b in zip(X[:, 0], y, strict=True)))
    argv = ["solve", "--csv", str(data), "--target", "y", "--seconds", "600"]
    out = tmp_path / "kept.json"
    assert main([*argv, "--calls", "500", "--json", str(out)]) == 0  # no law fits: a short search
    kept = json.loads(out.read_text())
    assert kept["outliers"] == {"rows": [3, 17], "dropped": False}
    assert "lie far from their neighbours" in capsys.readouterr().out
    out = tmp_path / "dropped.json"
    assert main([*argv, "--calls", "20000", "--outliers", "drop", "--json", str(out)]) == 0
    dropped = json.loads(out.read_text())
    assert dropped["sympy"] == "3*x**2" and dropped["outliers"] == {"rows": [3, 17], "dropped": True}
    assert "left out of the search (rows 3, 17)" in capsys.readouterr().out


def test_the_estimator_raises_each_finding_as_a_user_warning():
    from pipelines.interface.estimator import ProgramRegressor

    x = np.random.default_rng(0).uniform(1, 3, 3)
    model = ProgramRegressor(function_set="ckoza", calls=3000, seconds=600, pipeline="plain")
    with pytest.warns(UserWarning, match="'x2' is 1 on every point"):
        model.fit(np.column_stack([x, np.ones(3)]), 1.5 * x**2 + 0.7 * x + 2)
    assert model.result_.warnings
    # three constants fit any three points: such a law is never chosen, nor put on the front
    assert len(model.result_.program.consts) < 3
    assert all(len(row.program.consts) < 3 for row in model.result_.front)
