"""InductionPipeline: composable stages around the planner.

A pipeline is a planner with one object per stage. Presets name the compositions the
benchmark compares: ``full`` uses every learned part, ``uniform`` none, and each
``no-<stage>`` swaps one stage for its uniform or plain stand-in.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from pipelines.locate import GradientLocate, UniformLocate
from pipelines.planner import NoSubgoal, Planner, Progress
from pipelines.problem import Problem
from pipelines.propose import UniformPropose
from pipelines.result import Result
from pipelines.screen import NoScreen
from pipelines.verify import Verify
from simulator.data import check_xy
from simulator.language import FunctionSet

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
DEFAULT_WIDTH = 48
STAGES = ("locate", "propose", "screen", "subgoal", "similarity")


class PipelineError(ValueError):
    """A bad argument to a solve: budget, function set, preset or data."""


def build_stages(kinds: dict[str, str]) -> dict[str, object]:
    """The stage objects for a preset: learned parts from the shipped checkpoints, or stand-ins.

    The similarity model is loaded once and shared: the planner's distance-to-goal and the
    locate stage's loss (backpropagated through M) both use it.
    """
    learned = {s for s, k in kinds.items() if k == "learned"}
    similarity = None
    if "similarity" in learned:
        from similarity.metric import SimilarityModule

        similarity = SimilarityModule.from_pretrained()
    stages: dict[str, object] = {"similarity": similarity}
    stages["locate"] = GradientLocate(similarity=similarity) if "locate" in learned else UniformLocate()
    if "propose" in learned:
        from pipelines.propose import FlowPropose

        stages["propose"] = FlowPropose.from_pretrained()
    else:
        stages["propose"] = UniformPropose()
    if "screen" in learned:
        from pipelines.screen import FlowScreen

        stages["screen"] = FlowScreen.from_pretrained()
    else:
        stages["screen"] = NoScreen()
    if "subgoal" in learned:
        from flows.reverse_flow import ReverseFlow
        from pipelines.subgoal import LibrarySubgoal

        stages["subgoal"] = LibrarySubgoal(reverse_flow=ReverseFlow.from_pretrained())
    else:
        stages["subgoal"] = NoSubgoal()
    return stages


def preset_stages(name: str) -> dict[str, str]:
    """Which stages are learned ("learned") or stand-ins ("plain") in a named preset."""
    name = name.lower()
    if name == "full":
        return {s: "learned" for s in STAGES}
    if name == "uniform":
        return {s: "plain" for s in STAGES}
    if name.startswith("no-") and name[3:] in STAGES:
        return {s: ("plain" if s == name[3:] else "learned") for s in STAGES}
    known = ", ".join(["full", "uniform"] + [f"no-{s}" for s in STAGES])
    raise PipelineError(f"unknown pipeline preset {name!r}; presets: {known}")


class InductionPipeline:
    """Stages plus planner settings. ``solve`` validates input and runs the planner."""

    def __init__(
        self,
        locate=None,
        propose=None,
        screen=None,
        subgoal=None,
        similarity=None,
        verify: Verify | None = None,
        width: int | None = None,
        max_size: int = 30,
        parsimony: float = 0.02,
        tol: float = 1e-12,
        const_tol: float = 1e-20,
        name: str = "custom",
    ):
        verify = verify or Verify(similarity=similarity)
        self.planner = Planner(
            locate, propose, screen, subgoal, verify, width, max_size, parsimony, tol, const_tol=const_tol
        )
        self.name = name

    @classmethod
    def preset(cls, name: str = "full", **planner_kwargs) -> InductionPipeline:
        """A named composition: ``full``, ``uniform``, or ``no-<stage>``."""
        stages = build_stages(preset_stages(name))
        if name.lower() != "uniform":  # learned proposals pick a few edits; the baseline runs them all
            planner_kwargs.setdefault("width", DEFAULT_WIDTH)
        return cls(**stages, **planner_kwargs, name=name.lower())

    @classmethod
    def from_pretrained(cls, **planner_kwargs) -> InductionPipeline:
        """The default pipeline, built from the checkpoints that ship in ``checkpoints/``."""
        return cls.preset("full", **planner_kwargs)

    @classmethod
    def from_config(cls, path: str | Path) -> InductionPipeline:
        """A pipeline preset described in YAML: ``preset: NAME`` plus planner settings."""
        path = Path(path)
        if not path.exists() and (CONFIG_DIR / path).exists():
            path = CONFIG_DIR / path
        try:
            cfg = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise PipelineError(f"{path}: cannot read pipeline config ({type(err).__name__})") from None
        if not isinstance(cfg, dict):
            raise PipelineError(f"{path}: a pipeline config must be a mapping")
        allowed = {"preset", "width", "max_size", "parsimony", "tol", "const_tol"}
        unknown = set(cfg) - allowed
        if unknown:
            raise PipelineError(f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
        preset = cfg.pop("preset", "full")
        return cls.preset(preset, **cfg)

    def solve(
        self,
        X,
        y,
        function_set: str | list | FunctionSet = "koza",
        calls: int = 200_000,
        seconds: float = 60.0,
        seed: int = 0,
        progress: Progress | None = None,
    ) -> Result:
        """Find a program φ with g(φ, X) ≈ y within the budget."""
        X, y = check_xy(X, y)
        if not isinstance(calls, (int, np.integer)) or isinstance(calls, bool) or calls <= 0:
            raise PipelineError(f"calls must be a positive integer, got {calls!r}")
        if not isinstance(seconds, (int, float)) or not np.isfinite(seconds) or seconds <= 0:
            raise PipelineError(f"seconds must be a positive number, got {seconds!r}")
        fs = function_set if isinstance(function_set, FunctionSet) else FunctionSet.from_names(function_set)
        if fs.n_vars != X.shape[1]:
            fs = fs.with_vars(X.shape[1])
        problem = Problem(X, y, fs, np.random.default_rng(seed), int(calls), float(seconds))
        return self.planner.search(problem, progress)
