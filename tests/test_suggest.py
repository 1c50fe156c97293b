"""Which point to measure next: the committee's disagreement, the picks, the CLI and the estimator."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.interface.suggest import SuggestError, committee, disagreement, parse_bounds, suggest
from pipelines.search.result import FrontRow
from simulator.program import parse

FAST = ["--pipeline", "plain", "--calls", "2000", "--seconds", "600"]


def fake_result(chosen: str, *others: tuple[str, float], loss: float = 0.0, names=None):
    """A solve's result with a chosen law and front rows (text, loss): no search needed."""
    program = parse(chosen)
    rows = [FrontRow(program.complexity, loss, program)]
    rows += [FrontRow(parse(t).complexity, value, parse(t)) for t, value in others]
    return SimpleNamespace(program=program, loss=loss, front=rows, noise_floor=0.0, variable_names=names)


# x1 on x1 <= 1, 2*x1 - 1 beyond: the two agree on [-2, 1] and part only past 1
KINK = "x1 + (x1 - 1 + abs(x1 - 1)) / 2"


def test_disagreement_is_zero_where_the_members_agree_and_grows_where_they_part():
    X = np.linspace(-2, 3, 51)[:, None]
    score = disagreement([parse("x1"), parse(KINK)], X, scale=1.0)
    assert np.all(score[X[:, 0] <= 1] < 1e-12)
    assert np.all(np.diff(score[X[:, 0] >= 1]) > 0)


def test_suggestions_land_where_the_committee_parts():
    X = np.linspace(-2, 1, 12)[:, None]
    result = fake_result("x1", (KINK, 1e-3))
    found = suggest(X, X[:, 0], result, bounds={"x1": (-2, 3)}, n=3, seed=0)
    points = found.points[:, 0]
    assert len(points) == 3 and np.all(points > 1) and np.all(points <= 3)
    assert np.min(np.diff(np.sort(points))) > 0.5  # spread out, not three copies of x = 3
    again = suggest(X, X[:, 0], result, bounds={"x1": (-2, 3)}, n=3, seed=0)
    assert np.array_equal(points, again.points[:, 0])  # seeded: the same points


def test_gap_points_go_where_nothing_was_measured():
    """Measured on [-2, 1] and near 3; the committee parts past 1, most at 3: the
    disagreement pick goes near 3, the gap point into the unmeasured middle of (1, 3)."""
    X = np.concatenate([np.linspace(-2, 1, 12), [2.9, 3.0]])[:, None]
    result = fake_result("x1", (KINK, 1e-3))
    found = suggest(X, X[:, 0], result, bounds={"x1": (-2, 3)}, n=2, seed=0, gaps=1)
    top, gap = found.points[:, 0]
    assert top > 2.5 and 1.6 < gap < 2.4, (top, gap)
    with pytest.raises(SuggestError, match="gaps must be an integer from 0 to n - 1"):
        suggest(X, X[:, 0], result, n=2, gaps=2)


def test_never_where_the_chosen_law_is_undefined_first_where_a_member_is():
    X = np.linspace(0.1, 1, 10)[:, None]
    found = suggest(X, X[:, 0], fake_result("x1", ("log(x1)", 0.1)), {"x1": (-1, 1)}, n=2, seed=0)
    assert np.all(found.points <= 0) and np.all(np.isinf(found.scores))  # log undefined: refutes it
    found = suggest(X, X[:, 0], fake_result("sqrt(x1)", ("x1", 0.1)), {"x1": (-1, 1)}, n=4, seed=0)
    assert np.all(found.points >= 0)  # the chosen law is undefined below 0: never suggested


def test_committee_holds_the_near_fits_and_at_least_two_rivals():
    result = fake_result("x1", ("x1 + 0.001", 1e-12), ("sin(x1)", 0.2), ("cos(x1)", 0.5), ("1", 1.0))
    programs, losses = committee(result)
    assert [str(p) for p in programs[:2]] == ["x1", "x1 + 0.001"] and len(programs) == 3
    assert losses == sorted(losses)
    noisy = fake_result("x1", ("sin(x1)", 0.11), ("cos(x1)", 0.14), ("exp(x1)", 0.5), loss=0.1)
    assert len(committee(noisy)[0]) == 3  # within 1.5x of 0.1: sin and cos, not exp
    with pytest.raises(SuggestError, match="committee of one"):
        suggest(np.ones((3, 1)), np.arange(3.0), fake_result("x1"))


@pytest.mark.parametrize(
    "text, fragment",
    [("x=0-3", "cannot read 'x=0-3'"), ("x=0:3,x=1:2", "bounded twice"), (" , ", "is empty")],
)
def test_parse_bounds_errors(text, fragment):
    with pytest.raises(SuggestError, match=fragment):
        parse_bounds(text)


@pytest.fixture
def square_csv(tmp_path):
    path = tmp_path / "square.csv"
    path.write_text("x,y\n" + "".join(f"{x},{x**2}\n" for x in (0, 0.1, 0.25, 0.4, 0.5, 0.7, 0.85, 1)))
    return path


def test_cli_writes_n_points_inside_the_bounds(square_csv, tmp_path, capsys):
    argv = ["suggest", "--csv", str(square_csv), "--target", "y", "-n", "4", "--bounds", "x=0:3", *FAST]
    assert main(argv) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[0] == "x" and len(lines) == 5
    assert all(0 <= float(v) <= 3 for v in lines[1:])
    assert "committee" in captured.err and "x**2" in captured.err  # the law and committee: stderr
    out = tmp_path / "next.csv"
    assert main([*argv, "--out", str(out), "--explain"]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns[:2]) == ["x", "disagreement"] and len(frame) == 4
    assert main([*argv, "--out", str(out)]) == 2  # no overwrite without --force
    assert "--force" in capsys.readouterr().err
    assert main([*argv, "--out", str(out), "--force"]) == 0


def test_cli_without_bounds_stays_in_the_data_range(square_csv, capsys):
    assert main(["suggest", "--csv", str(square_csv), "--target", "y", "-n", "3", *FAST]) == 0
    values = [float(v) for v in capsys.readouterr().out.split()[1:]]
    assert len(values) == 3 and all(0 <= v <= 1 for v in values)


@pytest.mark.parametrize(
    "bounds, fragment",
    [
        ("x=0-3", "--bounds: cannot read 'x=0-3'"),
        ("xx=0:3", "no input column named 'xx'; did you mean x?"),
        ("x=3:1", "the low end must be below the high end"),
        ("y=0:1", "no input column named 'y'"),
    ],
)
def test_cli_bad_bounds_is_one_line_and_exit_2(square_csv, capsys, bounds, fragment):
    argv = ["suggest", "--csv", str(square_csv), "--target", "y", "--bounds", bounds, *FAST]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1, err


def test_estimator_suggests_a_dataframe_inside_the_bounds():
    from sklearn.exceptions import NotFittedError

    from pipelines.interface.estimator import ProgramRegressor

    est = ProgramRegressor(function_set="koza", calls=2000, seconds=600, pipeline="plain", random_state=0)
    with pytest.raises(NotFittedError):
        est.suggest(3)
    X = pd.DataFrame({"radius": np.linspace(0.5, 2, 12), "height": np.linspace(1, 3, 12) ** 0.5})
    est.fit(X, X["radius"] ** 2 * X["height"])
    frame = est.suggest(3, bounds={"radius": (0, 5)})
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["radius", "height"]
    assert len(frame) == 3 and frame["radius"].between(0, 5).all()
    assert frame["height"].between(X["height"].min(), X["height"].max()).all()  # no bound: data range
    plain = ProgramRegressor(function_set="koza", calls=2000, seconds=600, pipeline="plain")
    plain.fit(X.to_numpy(), X["radius"] ** 2)
    assert list(plain.suggest(2, seed=1).columns) == ["x1", "x2"]  # the names the law prints with


def test_a_constant_column_stays_put_and_n_is_checked():
    X = np.column_stack([np.linspace(0, 1, 8), np.full(8, 2.0)])
    found = suggest(X, X[:, 0] ** 2, fake_result("x1*x1", ("x1", 0.1)), n=3, seed=0)
    assert np.all(found.points[:, 1] == 2.0) and len(np.unique(found.points[:, 0])) == 3
    with pytest.raises(SuggestError, match="n must be"):
        suggest(X, X[:, 0], fake_result("x1", ("x1 + 1", 0.1)), n=0)
