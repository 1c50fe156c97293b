"""The pipeline as a user composes it: stages swap, traces replay, the estimator behaves."""

import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_estimator

from pipelines.interface.estimator import ProgramRegressor
from pipelines.interface.pipeline import PLANNER_SETTINGS, InductionPipeline, PipelineError, preset_stages
from pipelines.search.locate import GradientLocate
from pipelines.search.subgoal import LibrarySubgoal
from simulator.edits import apply
from simulator.suites import get_task


def test_reasoning_stages_recover_and_the_trace_replays():
    task = get_task("Nguyen-8")
    X, y = task.sample("train", seed=0)
    pipe = InductionPipeline(locate=GradientLocate(), subgoal=LibrarySubgoal(), width=48)
    res = pipe.solve(X, y, function_set=task.function_set, calls=50_000, seconds=600, seed=0)
    assert res.loss < 1e-12 and res.stopped == "exact fit"
    assert res.replay().tokens == res.program.tokens
    stages = {s.stage for s in res.trace}
    assert stages <= {"propose", "subgoal"} and res.trace
    assert np.allclose(res.predict(X), y)
    assert res.torch_module()(__import__("torch").as_tensor(X)).shape == (len(y),)
    assert "sqrt" in res.latex()


def test_trace_records_losses_and_reasons():
    task = get_task("Nguyen-1")
    X, y = task.sample("train", seed=0)
    res = InductionPipeline.preset("uniform").solve(X, y, function_set="koza", calls=5000, seconds=600)
    p = res.start
    for step in res.trace:
        assert step.reason and step.stage == "propose"
        p = apply(p, step.edit)
    assert p.tokens == res.program.tokens
    assert res.trace[-1].loss_after < res.trace[0].loss_before


def test_budgets_bound_the_search():
    X = np.linspace(0.1, 3, 20)[:, None]
    y = np.sin(X[:, 0]) * np.exp(X[:, 0]) / (X[:, 0] + 3.7)
    res = InductionPipeline.preset("uniform").solve(X, y, function_set="koza", calls=400, seconds=600)
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
    assert preset_stages("no-subgoal")["subgoal"] == "plain"
    with pytest.raises(PipelineError, match="unknown pipeline preset"):
        preset_stages("no-screen")  # full runs every legal edit: there is no screen to take out
    with pytest.raises(PipelineError, match="unknown pipeline preset"):
        preset_stages("no-such")


def test_no_subgoal_keeps_the_library_and_drops_its_learned_parts():
    """Its stand-in is plain's sub-goal stage, so the ablation measures learning, not the library;
    only ``uniform`` has no library."""
    from pipelines.interface.pipeline import preset_spec
    from pipelines.search.subgoal import LibrarySubgoal, NoSubgoal

    assert preset_spec("no-subgoal")["subgoal"] == preset_spec("plain")["subgoal"]
    assert preset_spec("full")["subgoal"] != preset_spec("plain")["subgoal"]
    stage = InductionPipeline.preset("no-subgoal").planner.subgoal
    assert isinstance(stage, LibrarySubgoal)
    assert stage.reverse_flow is None and stage.decomposer is None and stage.recognizer is None
    assert isinstance(InductionPipeline.preset("uniform").planner.subgoal, NoSubgoal)


def test_pipeline_config_yaml(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("preset: uniform\nparsimony: 0.05\n")
    pipe = InductionPipeline.from_config(cfg)
    assert pipe.settings.parsimony == 0.05 and pipe.name == "uniform"
    cfg.write_text("preset: uniform\nfoo: 1\n")
    with pytest.raises(PipelineError, match="unknown key"):
        InductionPipeline.from_config(cfg)


def test_every_stage_and_setting_from_yaml(tmp_path):
    """class_path/init_args reach every stage's arguments, ``planner`` every planner setting."""
    cfg = tmp_path / "p.yaml"
    cfg.write_text(
        "name: mine\n"
        "locate: {class_path: pipelines.search.locate.GradientLocate, init_args: {floor: 0.5}}\n"
        "propose: {class_path: pipelines.search.propose.UniformPropose}\n"
        "screen: {class_path: pipelines.search.screen.NoScreen}\n"
        "subgoal: {class_path: pipelines.search.subgoal.LibrarySubgoal, init_args: {max_size: 5, pace: 1}}\n"
        "verify: {class_path: pipelines.search.verify.Verify, init_args: {fit_top: 2}}\n"
        "planner: {width: 12, max_size: 20, parsimony: 0.1, tol: 1.0e-10, similarity_weight: 0.0,\n"
        "          const_tol: 1.0e-18, polish_calls: 10, polish_seconds: 1.0}\n"
    )
    pipe = InductionPipeline.from_config(cfg)
    p = pipe.planner
    assert pipe.name == "mine" and p.locate.floor == 0.5 and p.verify.fit_top == 2
    assert (p.subgoal.max_size, p.subgoal.pace) == (5, 1)
    assert (p.settings.width, p.settings.max_size, p.settings.parsimony, p.settings.polish_calls) == (
        12,
        20,
        0.1,
        10,
    )
    X = np.linspace(-1, 1, 20)[:, None]
    assert pipe.solve(X, X[:, 0] ** 2 + X[:, 0], calls=3000, seconds=600).loss < 1e-12


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("locate: {class_path: os.system}", "outside this project"),
        ("locate: {class_path: pipelines.search.locate.NoSuchLocate}", "no class"),
        ("locate: {class_path: pipelines.search.locate.GradientLocate, init_args: {flor: 1}}", "flor"),
        ("planner: {widht: 3}", "widht"),
        ("preset: full\nplanner: 3", "planner must be a mapping"),
    ],
)
def test_bad_pipeline_configs_name_the_problem(tmp_path, text, fragment):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(text + "\n")
    with pytest.raises(PipelineError, match=fragment):
        InductionPipeline.from_config(cfg)


def test_shipped_full_config_equals_the_preset():
    pipe, preset = InductionPipeline.from_config("full"), InductionPipeline.preset("full")
    for stage in ("locate", "propose", "screen", "subgoal", "verify"):
        a, b = getattr(pipe.planner, stage), getattr(preset.planner, stage)
        assert type(a) is type(b) and vars(a) == vars(b), stage
    for setting in PLANNER_SETTINGS:  # every planner setting, noise_floor and select included
        assert getattr(pipe.settings, setting) == getattr(preset.settings, setting), setting


def test_one_pipeline_reused_for_three_tasks():
    """Per-solve state belongs to each solve: a reused pipeline answers each task right."""
    pipe = InductionPipeline.preset("full")
    for name in ("Nguyen-8", "Nguyen-1", "Nguyen-5"):
        task = get_task(name)
        X, y = task.sample("train", seed=0)
        res = pipe.solve(X, y, function_set=task.function_set, calls=60_000, seconds=600, seed=0)
        assert res.loss < 1e-12 and np.allclose(res.predict(X), y), (name, str(res.program))


def test_estimator_reaches_every_planner_setting_and_stage():
    from pipelines.interface.pipeline import PLANNER_SETTINGS, STAGE_KEYS
    from pipelines.search.propose import UniformPropose

    params = ProgramRegressor().get_params()
    assert set(PLANNER_SETTINGS) <= set(params) and set(STAGE_KEYS) <= set(params)
    est = ProgramRegressor(pipeline="full", width=7, propose=UniformPropose())
    pipe = est._build_pipeline()
    assert pipe.settings.width == 7 and isinstance(pipe.planner.propose, UniformPropose)


def test_program_regressor_fit_predict_score():
    X = np.random.default_rng(0).uniform(-1, 1, (20, 1))
    y = X[:, 0] ** 2 + X[:, 0]
    est = ProgramRegressor(function_set="koza", calls=5000, seconds=600, pipeline="uniform").fit(X, y)
    assert np.allclose(est.predict(X), y) and est.score(X, y) > 0.999
    assert est.n_features_in_ == 1 and len(est.equations_)


def test_check_estimator():
    """scikit-learn's estimator checks, with a tiny budget so each fit is quick.

    The noise floor is fixed at 0: its Gaussian-process estimate (tested in test_noise.py) took
    two thirds of this test's time on the checks' many-feature data.

    Nothing is skipped: the checks that PySR skips (complex data) fail here with a clear
    error as scikit-learn expects of a real-valued regressor.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(
            ProgramRegressor(calls=300, seconds=600, pipeline="uniform", noise_floor=0.0), on_fail=None
        )
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
    res = full_pipeline.solve(X, y, function_set=task.function_set, calls=60_000, seconds=600, seed=0)
    assert is_recovered(res.sympy(), task.truth_sympy(), domain=task.domain()), str(res.program)


@pytest.mark.parametrize("preset", ["no-locate", "no-propose", "no-subgoal", "no-similarity"])
def test_each_stand_in_swaps_in(preset):
    task = get_task("Nguyen-6")
    X, y = task.sample("train", seed=1)
    pipe = InductionPipeline.preset(preset)
    res = pipe.solve(X, y, function_set=task.function_set, calls=1500, seconds=600, seed=0)
    assert res.calls <= 1500 and np.isfinite(res.loss)
    assert res.replay().tokens == res.program.tokens


def test_verify_stamps_each_candidate_when_it_is_known():
    from pipelines.search.problem import Problem
    from pipelines.search.verify import Verify
    from simulator.edits import legal_edits
    from simulator.language import FunctionSet
    from simulator.program import parse

    X = np.linspace(0.5, 2, 20)[:, None]
    problem = Problem(X, X[:, 0] + 1.7, FunctionSet.from_names("CKoza"))
    parent = parse("x1")
    edits = legal_edits(parent, problem.function_set, 30)
    out = Verify(fit_top=2).edits(problem, parent, edits, "propose", ["r"] * len(edits), limit=100)
    assert out.calls == len(edits) + min(2, sum(1 for c in out.candidates if c.program.consts))
    fitted = [i for i, c in enumerate(out.candidates) if c.program.consts and c.loss < 1e-20]
    assert fitted and all(out.stamps[i] > len(edits) for i in fitted)  # known after their fit
    plain = [s for i, s in enumerate(out.stamps) if i not in fitted]
    assert plain == sorted(plain) and all(1 <= s <= len(edits) for s in plain)


def test_plain_preset_counts_lookups_and_uniform_has_none():
    task = get_task("Nguyen-2")
    X, y = task.sample("train", seed=0)
    plain = InductionPipeline.preset("plain")
    assert plain.settings.width == 48 and plain.planner.subgoal.reverse_flow is None
    res = plain.solve(X, y, function_set=task.function_set, calls=30_000, seconds=600, seed=0)
    assert res.loss < 1e-12 and res.candidates_scored > 0
    assert res.to_dict()["candidates_scored"] == res.candidates_scored and res.found_at <= res.calls
    uniform = InductionPipeline.preset("uniform").solve(X, y, calls=2_000, seconds=600)
    assert uniform.candidates_scored == 0


def test_no_token_outside_the_function_set_is_ever_returned():
    """A random sweep of function sets: every program on the front uses allowed tokens only."""
    from simulator.language import BINARY, UNARY, FunctionSet

    rng = np.random.default_rng(0)
    X = np.linspace(0.3, 2.0, 20)[:, None]
    y = np.exp(-0.3 * X[:, 0]) * np.cos(2 * X[:, 0])
    pipe = InductionPipeline.preset("plain", polish_calls=50)
    for _ in range(6):
        binary = [b for b in BINARY if rng.random() < 0.5] or ["mul"]
        unary = [u for u in UNARY if rng.random() < 0.3]
        names = binary + unary + ["const"]
        fs = FunctionSet.from_names(names)
        res = pipe.solve(X, y, function_set=fs, calls=2_500, seconds=600, seed=0)
        allowed = set(fs.tokens)
        for row in res.front:
            assert set(row.program.tokens) <= allowed, (names, str(row.program))
        assert set(res.program.tokens) <= allowed, (names, str(res.program))
