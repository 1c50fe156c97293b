"""Built-in suites and the YAML task-file format of docs/task-files.md."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from simulator.suites import SUITES, TASKS, Sampling, Task, TaskError, get_suite, get_task, load_tasks


@pytest.mark.parametrize("name", SUITES["all"])
def test_builtin_task_parses_samples_and_is_finite(name: str) -> None:
    task = get_task(name)
    assert task.truth_sympy().free_symbols
    assert task.program().n_vars <= task.n_vars
    X, y = task.sample("train", seed=3)
    assert X.shape == (20, task.n_vars) and y.shape == (20,)
    assert np.isfinite(y).all()
    Xt, yt = task.sample("test", seed=3)
    assert Xt.shape == (1000, task.n_vars) and np.isfinite(yt).all()
    low, high = task.train.bounds(task.n_vars)
    assert (X >= low).all() and (X <= high).all() and (Xt >= low).all() and (Xt <= high).all()


def test_suites_and_lookup() -> None:
    assert len(SUITES["nguyen"]) == 13 and "Nguyen-12a" in SUITES["nguyen"]
    assert SUITES["nguyen-c"] == ["Nguyen-1c", "Nguyen-5c", "Nguyen-7c", "Nguyen-8c", "Nguyen-10c"]
    assert [t.name for t in get_suite("ALL")] == SUITES["all"] == list(TASKS)
    assert get_task("nguyen-12A").name == "Nguyen-12a"
    assert get_task("NGUYEN_7").name == "Nguyen-7"
    with pytest.raises(TaskError, match="Nguyen-1"):
        get_task("nguyen-13")
    with pytest.raises(TaskError, match="nguyen"):
        get_suite("nguyn")


def test_builtin_details_match_the_table() -> None:
    assert get_task("Nguyen-12a").train.high == (10.0,)
    assert get_task("Nguyen-7").domain() == [(0.0, 2.0)]
    assert get_task("Nguyen-11").n_vars == 2
    assert get_task("Nguyen-1").function_set.has_const is False
    assert get_task("Nguyen-1c").function_set.has_const is True
    assert get_task("Nguyen-10").function_set.n_vars == 2


def test_seeds_and_splits_differ_but_repeat() -> None:
    task = get_task("Nguyen-9")
    a, _ = task.sample("train", seed=0)
    assert np.array_equal(a, task.sample("train", seed=0)[0])
    assert not np.array_equal(a, task.sample("train", seed=1)[0])
    assert not np.array_equal(a, task.sample("test", seed=0)[0][:20])
    with pytest.raises(TaskError):
        task.sample("valid")


def test_grid_is_inclusive_cartesian_product() -> None:
    grid = Sampling("grid", low=[0, -1], high=[1, 1], step=[0.1, 0.5])
    X = grid.sample(2, np.random.default_rng(0))
    assert X.shape == (11 * 5, 2) == (grid.size(2), 2)
    assert np.isclose(X[:, 0].max(), 1.0) and np.isclose(X[:, 1].max(), 1.0)
    assert Sampling("grid", 0, 1, step=0.25).sample(1, np.random.default_rng(0)).ravel().tolist() == [
        0.0,
        0.25,
        0.5,
        0.75,
        1.0,
    ]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tasks.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_task_file_with_ranges_grid_and_constants(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        tasks:
          - name: Ranges
            expression: "1.5*x1*x2 + log(x3)"
            train: {distribution: uniform, low: [0, -2, 1], high: [1, 2, 10], points: 30}
            test: {distribution: grid, low: [0, -2, 1], high: [1, 2, 10], step: [0.5, 1, 3]}
            function_set: [add, mul, log, const]
          - name: Koza-named
            expression: "x1**2"
            variables: 2
            train: {low: -1, high: 1, points: 5}
            function_set: Koza
        """,
    )
    ranges, named = load_tasks(path)
    assert ranges.n_vars == 3 and ranges.function_set.has_const
    X, y = ranges.sample("train", seed=1)
    assert X.shape == (30, 3) and np.isfinite(y).all()
    assert (X[:, 2] >= 1).all() and (X[:, 1] <= 2).all()
    Xt, _ = ranges.sample("test")
    assert Xt.shape == (3 * 5 * 4, 3)
    assert named.n_vars == 2 and named.function_set.n_vars == 2 and not named.function_set.has_const
    assert named.sample("test")[0].shape == (1000, 2)  # test defaults to the train range, 1000 points
    assert ranges.domain() == [(0.0, 1.0), (-2.0, 2.0), (1.0, 10.0)]


def test_bare_list_and_round_trip(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump([task.to_dict() for task in get_suite("all")]))
    loaded = load_tasks(path)
    assert [t.to_dict() for t in loaded] == [t.to_dict() for t in get_suite("all")]


GOOD = {
    "name": "Foo",
    "expression": "x1 + x2",
    "train": "{distribution: uniform, low: -1, high: 1, points: 20}",
    "function_set": "[add, mul]",
}


def _task(**fields: str | None) -> str:
    merged = {**GOOD, **fields}
    lines = [f"  {k}: {v}" for k, v in merged.items() if v is not None]
    return "tasks:\n- " + "\n".join(lines)[2:] + "\n"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("tasks: [\n  {name: a\n", "not valid YAML"),
        ("hello", "expected a non-empty list"),
        ("tasks: []", "expected a non-empty list"),
        ("tasks: [{expression: x1}]\nextra: 1", "unknown top-level key 'extra'"),
        (_task(expression=None), "expression is missing"),
        (_task(expression='"x1 +* )"'), "expression 'x1 +* )' cannot be parsed"),
        (_task(function_set="[add, frob]"), "function_set: unknown operator 'frob'"),
        (_task(function_set="Kozza"), "function_set: unknown operator"),
        (_task(function_set=None), "function_set is missing"),
        (_task(train="{distribution: normal, low: 0, high: 1, points: 20}"), "train.distribution must be"),
        (_task(train="{distribution: uniform, low: 1, high: 1, points: 20}"), "train.low must be below high"),
        (_task(train="{low: [0, 2], high: [1, 1], points: 20}"), "train.low must be below high for x2"),
        (_task(train="{low: [0, 0, 0], high: 1, points: 20}"), "train.low has 3 values but the task has 2"),
        (_task(train="{low: 0, high: [1, 2, 3], points: 20}"), "train.high has 3 values"),
        (
            _task(train="{low: -1, high: 1, points: -3}"),
            "task 'Foo': train.points must be a positive integer, got -3",
        ),
        (_task(train="{low: -1, high: 1, points: 2.5}"), "train.points must be a positive integer"),
        (_task(train="{low: -1, high: 1}"), "train.points is missing"),
        (_task(train="{low: x, high: 1, points: 20}"), "train.low must be a number"),
        (_task(train="{distribution: grid, low: -1, high: 1}"), "train.step is required"),
        (_task(train="{distribution: grid, low: -1, high: 1, step: 0}"), "train.step must be positive"),
        (_task(train="{distribution: grid, low: -1, high: 1, points: 9, step: 0.1}"), "train.points applies"),
        (_task(train="{low: -1, high: 1, points: 9, step: 0.1}"), "train.step applies to a grid"),
        (_task(train="{low: -1, high: 1, points: 9, spread: 2}"), "train.spread: unknown key"),
        (_task(test="{low: -1, high: 1, points: 0}"), "test.points must be a positive integer"),
        (_task(train=None), "train is missing"),
        (_task(colour="red"), "unknown key 'colour'"),
        (_task(variables="1"), "variables is 1 but the expression uses x2"),
        (_task(variables="two"), "variables must be a positive integer"),
        (_task(expression='"log(x1) + x2"'), "ground truth is not finite on the train range"),
        (_task(name=None, colour="red"), "task #1: unknown key 'colour'"),
        ("- " + _task()[9:] + "- " + _task()[9:], "name is used twice"),
    ],
)
def test_malformed_task_file(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "tasks.yaml"
    path.write_text(text)
    with pytest.raises(TaskError) as info:
        load_tasks(path)
    message = str(info.value)
    assert needle in message, message
    assert message.startswith(str(path)) and "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="no such task file"):
        load_tasks(tmp_path / "nope.yaml")


def test_good_fixture_is_good(tmp_path: Path) -> None:
    path = tmp_path / "tasks.yaml"
    path.write_text(_task())
    (task,) = load_tasks(path)
    assert isinstance(task, Task) and task.name == "Foo" and task.n_vars == 2


def test_a_truth_outside_the_search_language_loads_samples_and_runs(tmp_path):
    """sinh(x1) with the Koza set is a fair task: the truth is sympy text, apart from the set."""
    import sympy

    from pipelines.cli import main
    from simulator.suites import load_tasks

    path = tmp_path / "t.yaml"
    path.write_text(
        'tasks:\n  - name: Sinh\n    expression: "sinh(x1) + asin(x2/2)*pi"\n'
        "    train: {distribution: uniform, low: -1, high: 1, points: 20}\n    function_set: Koza\n"
    )
    (task,) = load_tasks(path)
    assert task.n_vars == 2 and task.function_set.n_vars == 2
    X, y = task.sample("train", seed=0)
    np.testing.assert_allclose(y, np.sinh(X[:, 0]) + np.arcsin(X[:, 1] / 2) * np.pi)
    x1, x2 = sympy.symbols("x1 x2", real=True)
    assert sympy.simplify(task.truth_sympy() - (sympy.sinh(x1) + sympy.asin(x2 / 2) * sympy.pi)) == 0
    assert main(["solve", "Sinh", "--tasks", str(path), "--pipeline", "plain", "--calls", "500"]) == 0


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("__import__('os').system('true')", "unsupported syntax"),
        ("frobnicate(x1)", "unknown function 'frobnicate'"),
        ("y + 1", "unknown name 'y'"),
        ("sinh(x1, x2)", "argument"),
    ],
)
def test_truths_are_parsed_never_evaluated(text, fragment):
    from simulator.program import ParseError
    from simulator.truth import parse_truth

    with pytest.raises(ParseError, match=fragment):
        parse_truth(text)
