"""Planner settings: one frozen object, checked the same way from YAML, Python and the CLI."""

import dataclasses

import pytest

from pipelines.interface.estimator import ProgramRegressor
from pipelines.interface.pipeline import PLANNER_SETTINGS, InductionPipeline, PipelineError
from pipelines.search.settings import PlannerSettings, SettingsError


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"width": 0}, "width must be a positive integer"),
        ({"max_size": 2.5}, "max_size must be a positive integer"),
        ({"subgoal_share": 0}, "subgoal_share must be a number > 0"),
        ({"tol": -1}, "tol must be a number > 0"),
        ({"linear": "yes"}, "linear must be true or false"),
        ({"noise_floor": 2}, "noise floor must be auto"),
        ({"select": "best"}, "unknown selection criterion"),
        ({"parsimny": 0.1}, "did you mean parsimony"),
    ],
)
def test_a_bad_setting_is_a_one_line_error(changes, words):
    with pytest.raises(SettingsError, match=words) as err:
        PlannerSettings().replace(**changes)
    assert "\n" not in str(err.value)


def test_settings_are_frozen_and_replace_checks_again():
    s = PlannerSettings(width=8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.width = 9  # type: ignore[misc]
    t = s.replace(width=16, noise_floor="AUTO")
    assert (s.width, t.width, t.noise_floor) == (8, 16, "auto")
    assert PlannerSettings.names() == PLANNER_SETTINGS


def test_every_route_checks_the_same_way(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("preset: plain\nplanner: {width: -3}\n")
    with pytest.raises(PipelineError, match="width must be a positive integer"):
        InductionPipeline.from_config(cfg)
    with pytest.raises(PipelineError, match="width must be a positive integer"):
        InductionPipeline.preset("plain", width=-3)
    with pytest.raises(PipelineError, match="width must be a positive integer"):
        ProgramRegressor(pipeline="plain", width=-3).fit([[1.0], [2.0], [3.0]], [1.0, 2.0, 3.0])
    pipe = InductionPipeline.load("plain", width=5)
    changed = pipe.replace(parsimony=0.1)
    assert (pipe.settings.parsimony, changed.settings.parsimony, changed.settings.width) == (0.02, 0.1, 5)
    assert changed.planner.subgoal is pipe.planner.subgoal  # the stages are shared, not rebuilt
