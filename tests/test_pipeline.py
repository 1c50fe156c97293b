"""The pipeline as a user composes it: stages swap, traces replay, the estimator behaves."""

import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_estimator

from pipelines.estimator import ProgramRegressor
from pipelines.locate import GradientLocate
from pipelines.pipeline import InductionPipeline, PipelineError, preset_stages
from pipelines.subgoal import LibrarySubgoal
from simulator.edits import apply
from simulator.suites import get_task


def test_reasoning_stages_recover_and_the_trace_replays():
    task = get_task("Nguyen-8")
    X, y = task.sample("train", seed=0)
    pipe = InductionPipeline(locate=GradientLocate(), subgoal=LibrarySubgoal(), width=48)
    res = pipe.solve(X, y, function_set=task.function_set, calls=50_000, seconds=20, seed=0)
    assert res.loss < 1e-12 and res.stopped == "recovered"
    assert res.replay().tokens == res.program.tokens
    stages = {s.stage for s in res.trace}
    assert stages <= {"propose", "subgoal"} and res.trace
    assert np.allclose(res.predict(X), y)
    assert res.torch_module()(__import__("torch").as_tensor(X)).shape == (len(y),)
    assert "sqrt" in res.latex()


def test_trace_records_losses_and_reasons():
    task = get_task("Nguyen-1")
    X, y = task.sample("train", seed=0)
    res = InductionPipeline.preset("uniform").solve(X, y, function_set="koza", calls=5000, seconds=10)
    p = res.start
    for step in res.trace:
        assert step.reason and step.stage == "propose"
        p = apply(p, step.edit)
    assert p.tokens == res.program.tokens
    assert res.trace[-1].loss_after < res.trace[0].loss_before


def test_budgets_bound_the_search():
    X = np.linspace(0.1, 3, 20)[:, None]
    y = np.sin(X[:, 0]) * np.exp(X[:, 0]) / (X[:, 0] + 3.7)
    res = InductionPipeline.preset("uniform").solve(X, y, function_set="koza", calls=400, seconds=10)
    assert res.calls <= 400 and res.stopped == "calls"
    assert res.front and all(a.loss > b.loss for a, b in zip(res.front, res.front[1:]))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"calls": 0}, "calls must be a positive integer"),
        ({"seconds": -1.0}, "seconds must be a positive number"),
        ({"function_set": ["add", "nope"]}, "unknown operator 'nope'"),
    ],
)
def test_bad_arguments(kwargs, fragment):
    X = np.linspace(0, 1, 10)
    with pytest.raises(ValueError, match=fragment):
        InductionPipeline.preset("uniform").solve(X, X * 2, **kwargs)


def test_bad_data_in_python():
    with pytest.raises(ValueError, match="NaN"):
        InductionPipeline.preset("uniform").solve([1, 2, np.nan, 4], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="rows but y has"):
        InductionPipeline.preset("uniform").solve([1, 2, 3, 4], [1, 2, 3])


def test_presets_name_every_ablation():
    assert set(preset_stages("full").values()) == {"learned"}
    assert set(preset_stages("uniform").values()) == {"plain"}
    assert preset_stages("no-screen")["screen"] == "plain"
    with pytest.raises(PipelineError, match="unknown pipeline preset"):
        preset_stages("no-such")


def test_pipeline_config_yaml(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("preset: uniform\nparsimony: 0.05\n")
    pipe = InductionPipeline.from_config(cfg)
    assert pipe.planner.parsimony == 0.05 and pipe.name == "uniform"
    cfg.write_text("preset: uniform\nfoo: 1\n")
    with pytest.raises(PipelineError, match="unknown key"):
        InductionPipeline.from_config(cfg)


def test_program_regressor_fit_predict_score():
    X = np.random.default_rng(0).uniform(-1, 1, (20, 1))
    y = X[:, 0] ** 2 + X[:, 0]
    est = ProgramRegressor(function_set="koza", calls=5000, seconds=10, pipeline="uniform").fit(X, y)
    assert np.allclose(est.predict(X), y) and est.score(X, y) > 0.999
    assert est.n_features_in_ == 1 and est.equations_


def test_check_estimator():
    """scikit-learn's estimator checks, with a tiny budget so each fit is quick.

    Nothing is skipped: the checks that PySR skips (complex data) fail here with a clear
    error as scikit-learn expects of a real-valued regressor.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(ProgramRegressor(calls=300, seconds=1, pipeline="uniform"), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:120]) for r in results if r["status"] == "failed"]
    assert not failed, failed


@pytest.fixture(scope="module")
def full_pipeline():
    return InductionPipeline.from_pretrained()


@pytest.mark.parametrize("name", ["Nguyen-1", "Nguyen-5", "Nguyen-8", "Nguyen-1c"])
def test_default_pipeline_recovers(full_pipeline, name):
    from simulator.recovery import is_recovered

    task = get_task(name)
    X, y = task.sample("train", seed=0)
    res = full_pipeline.solve(X, y, function_set=task.function_set, calls=60_000, seconds=40, seed=0)
    assert is_recovered(res.sympy(), task.truth_sympy(), domain=task.domain()), str(res.program)


@pytest.mark.parametrize("preset", ["no-locate", "no-propose", "no-screen", "no-subgoal", "no-similarity"])
def test_each_stand_in_swaps_in(preset):
    task = get_task("Nguyen-6")
    X, y = task.sample("train", seed=1)
    pipe = InductionPipeline.preset(preset)
    res = pipe.solve(X, y, function_set=task.function_set, calls=1500, seconds=10, seed=0)
    assert res.calls <= 1500 and np.isfinite(res.loss)
    assert res.replay().tokens == res.program.tokens
