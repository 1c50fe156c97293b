"""The textbook laws (benchmarks/suites/laws.yaml, the physics suite first) and the two kinds
of noise on a task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.suites import Sampling, Task, TaskError, load_tasks, task_from_dict

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
LAWS = BENCHMARKS / "suites" / "laws.yaml"


def test_the_physics_laws_load_with_unique_names_and_finite_varied_data():
    tasks = load_tasks(LAWS)  # the bench's own loader: every expression parses, every split is finite
    names = [t.name for t in tasks]
    assert len(tasks) >= 60 and len(set(names)) == len(names)
    physics = [t.name for t in load_tasks(BENCHMARKS / "physics" / "laws.yaml")]
    assert len(physics) == 22 and names[:22] == physics  # the physics suite comes first, unchanged
    for task in tasks:
        assert 1 <= task.n_vars <= 6, task.name
        task.truth_sympy()
        for split in ("train", "test"):
            _, y = task.sample(split, seed=0)
            assert np.all(np.isfinite(y)), (task.name, split)
            assert np.max(np.abs(y)) < 1e12, (task.name, split)
            assert np.std(y) > 1e-3 * abs(np.mean(y)), (task.name, split)  # not a constant


def _growth(kind: str = "additive", noise: float = 0.05) -> Task:
    """exp(x1) on [0, 5]: y from 1 to 148, so additive and multiplicative noise differ."""
    return Task("growth", "exp(x1)", 1, Sampling("uniform", 0.0, 5.0, 4000), noise=noise, noise_kind=kind)


def test_multiplicative_noise_is_in_proportion_to_y_and_additive_is_unchanged():
    level, seed = 0.05, 3
    task = _growth("multiplicative", level)
    X, y = task.sample("train", seed)
    truth = task.truth(X)
    relative = y / truth - 1
    assert np.std(relative) == pytest.approx(level, rel=0.1)
    small, large = truth < 5, truth > 50  # the same relative spread at both ends
    assert np.std(relative[small]) == pytest.approx(np.std(relative[large]), rel=0.25)
    assert np.std((y - truth)[large]) > 5 * np.std((y - truth)[small])
    X_test, y_test = task.sample("test", seed)
    assert np.array_equal(y_test, task.truth(X_test))  # the test split stays noiseless

    additive = _growth("additive", level)
    X, y = additive.sample("train", seed)
    truth = additive.truth(X)
    sd = level * np.sqrt(np.mean(truth**2))
    expected = truth + np.random.default_rng([seed, 2]).normal(0.0, sd, size=len(truth))
    assert np.array_equal(y, expected)  # the same numbers as before the kinds, so old runs match
    assert np.array_equal(_growth(noise=level).sample("train", seed)[1], y)  # additive by default


def test_noise_kind_names_file_key_and_one_line_error():
    task = _growth("additive", 0.0)
    assert task.with_noise(0.01).name == "growth noise=0.01"  # today's names for additive
    loud = task.with_noise(0.01, "multiplicative")
    assert loud.name == "growth noise=0.01x" and loud.noise_kind == "multiplicative"
    assert loud.with_noise(0.1).name == "growth noise=0.1x"  # the task's own kind by default
    assert loud.with_noise(0.1, "additive").name == "growth noise=0.1"
    assert loud.with_noise(0).name == "growth"
    base = {"expression": "x1", "function_set": "Koza", "train": {"low": 1, "high": 2, "points": 5}}
    entry = {**base, "name": "line", "noise": 0.1, "noise_kind": "multiplicative"}
    read = task_from_dict(entry)
    assert read.noise_kind == "multiplicative" and read.to_dict()["noise_kind"] == "multiplicative"
    assert task_from_dict(read.to_dict()) == read
    assert "noise_kind" not in task_from_dict(base).to_dict()
    with pytest.raises(
        ValueError, match="noise_kind must be additive or multiplicative, got 'relative'"
    ) as err:
        task_from_dict({**entry, "noise_kind": "relative"})
    assert isinstance(err.value, TaskError) and "\n" not in str(err.value)
    with pytest.raises(TaskError, match="noise_kind must be"):
        task.with_noise(0.1, "proportional")
