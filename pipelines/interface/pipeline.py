"""InductionPipeline: composable stages around the planner.

A pipeline is a planner with one object per stage. Every stage and planner setting can be
written in a pipeline YAML, stages as LightningCLI writes modules::

    name: my-pipeline
    locate: {class_path: pipelines.search.locate.GradientLocate, init_args: {floor: 0.3}}
    subgoal: {class_path: pipelines.search.subgoal.LibrarySubgoal, init_args: {max_size: 6}}
    planner: {width: 48, parsimony: 0.02}

or start from a preset and change a few things (``preset: full`` plus the same keys).
Presets name the compositions the benchmark compares: ``full`` uses every learned part;
``plain`` is the same machinery (library and splits included) with every learned decision
replaced by its stand-in, the baseline a learned part must beat; ``uniform`` has no library
and verifies every legal edit; each ``no-<stage>`` swaps one stage for its stand-in.
"""

from __future__ import annotations

import copy
import difflib
import importlib
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from pipelines.interface.data_checks import inspect_data
from pipelines.search.planner import OnExpand, Planner, Progress
from pipelines.search.problem import Problem
from pipelines.search.result import Result
from pipelines.search.settings import PlannerSettings, SettingsError
from pipelines.search.stages import Locate, Propose, Screen, Subgoal
from pipelines.search.verify import Verify
from pipelines.shipped import config_path, describe_checkpoints, recording_checkpoints, shipped_configs
from simulator.data import check_xy
from simulator.language import FunctionSet, variables
from simulator.units import Units, UnitsError

DEFAULT_WIDTH = 48
# The learned stages a preset turns on or off. The screen (the forward flow) is not one of
# them: the presets run every legal edit of a node (``verify_all``), so no screen is ever
# asked; a pipeline YAML with ``verify_all: false`` may still name FlowScreen.
STAGES = ("locate", "propose", "subgoal", "similarity")
STAGE_KEYS = ("locate", "propose", "screen", "subgoal", "verify")
PRESETS = ("full", "plain", "uniform", *(f"no-{s}" for s in STAGES))
PLANNER_SETTINGS = PlannerSettings.names()


class PipelineError(ValueError):
    """A bad argument to a solve: budget, function set, preset, config or data."""


def preset_stages(name: str) -> dict[str, str]:
    """Which stages are learned ("learned") or stand-ins ("plain") in a named preset."""
    name = name.lower()
    if name == "full":
        return {s: "learned" for s in STAGES}
    if name in ("uniform", "plain"):
        return {s: "plain" for s in STAGES}
    if name.startswith("no-") and name[3:] in STAGES:
        return {s: ("plain" if s == name[3:] else "learned") for s in STAGES}
    close = difflib.get_close_matches(name, PRESETS, n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise PipelineError(f"unknown pipeline preset {name!r}; {hint}presets: {', '.join(PRESETS)}")


def _spec(class_path: str, **init_args: Any) -> dict:
    return {"class_path": class_path, "init_args": init_args}


# Each stage's learned form (with the shipped checkpoint it reads, by its name in
# pipelines.shipped.CHECKPOINTS) and its plain stand-in.
LEARNED_STAGES = {
    "locate": _spec("pipelines.search.locate.GradientLocate"),  # plus the similarity model when learned
    "propose": _spec("pipelines.search.propose.FlowPropose", checkpoint="edit_flow"),
    "subgoal": _spec(
        "pipelines.search.subgoal.LibrarySubgoal",
        reverse_flow="reverse_flow",
        decomposer="decomposition_policy",
        recognizer="recognition",
    ),
}
PLAIN_STAGES = {
    "locate": _spec("pipelines.search.locate.UniformLocate"),
    "propose": _spec("pipelines.search.propose.UniformPropose"),
    # the learned parts out (reverse flow, decomposition policy, recognition order), the library
    # and its splits kept: without them a run measures the library, not learning
    "subgoal": _spec("pipelines.search.subgoal.LibrarySubgoal", reverse_flow=None),
}


def preset_spec(name: str) -> dict:
    """A named preset as the same ``class_path``/``init_args`` mapping a pipeline YAML holds.

    The learned stages read the shipped checkpoints; the similarity model is one file that
    the locate stage (its loss is backpropagated through M) and verify (the planner's
    distance to the goal) share.
    """
    name = name.lower()
    kinds = preset_stages(name)
    spec: dict[str, Any] = {"name": name}
    for stage in LEARNED_STAGES:
        spec[stage] = copy.deepcopy((LEARNED_STAGES if kinds[stage] == "learned" else PLAIN_STAGES)[stage])
    sim = "similarity" if kinds["similarity"] == "learned" else None
    if kinds["locate"] == "learned":
        spec["locate"]["init_args"]["similarity"] = sim
    spec["screen"] = _spec("pipelines.search.screen.NoScreen")  # verify_all: every edit is run
    spec["verify"] = _spec("pipelines.search.verify.Verify", similarity=sim)
    if name == "uniform":  # the all-plain baseline with no library: every legal edit is run
        spec["subgoal"] = _spec("pipelines.search.subgoal.NoSubgoal")
        spec["planner"] = {"linear": False}  # nor the algebra of linear and rational fits
    else:  # learned proposals pick a few edits
        spec["planner"] = {"width": DEFAULT_WIDTH}
    return spec


def instantiate(spec: Any, where: str) -> Any:
    """An object from ``{class_path, init_args}`` (LightningCLI's form); other values pass through.

    ``class_path`` must name a class in this project's packages, so a config file can
    compose stages but cannot call arbitrary code.
    """
    if not isinstance(spec, dict):
        return spec
    unknown = set(spec) - {"class_path", "init_args"}
    if "class_path" not in spec or unknown:
        raise PipelineError(
            f"{where}: a stage is a mapping with class_path and init_args, got keys {sorted(spec)}"
        )
    path = str(spec["class_path"])
    module_name, _, class_name = path.rpartition(".")
    if module_name.split(".")[0] not in ("pipelines", "flows", "similarity", "simulator"):
        raise PipelineError(f"{where}: class_path {path!r} is outside this project's packages")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError):
        raise PipelineError(f"{where}: no class {path!r}") from None
    if not inspect.isclass(cls):
        raise PipelineError(f"{where}: {path!r} is not a class")
    args = spec.get("init_args") or {}
    if not isinstance(args, dict):
        raise PipelineError(f"{where}: init_args must be a mapping")
    try:
        inspect.signature(cls).bind(**args)
    except TypeError as err:
        raise PipelineError(f"{where}: {class_name}: {err}") from None
    return cls(**{k: instantiate(v, f"{where}.{k}") for k, v in args.items()})


def _merge(base: dict, override: dict) -> dict:
    """``override`` on top of ``base``; a stage given with a new class_path replaces the old
    one, one with the same class (or init_args only) updates its arguments."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            if "class_path" in old and value.get("class_path", old["class_path"]) == old["class_path"]:
                args = {**(old.get("init_args") or {}), **(value.get("init_args") or {})}
                out[key] = {"class_path": old["class_path"], "init_args": args}
            elif "class_path" in old:
                out[key] = value
            else:
                out[key] = {**old, **value}
        else:
            out[key] = value
    return out


class InductionPipeline:
    """Stages plus planner settings. ``solve`` validates input and runs the planner.

    A pipeline holds no per-solve state: reuse one object for any number of solves.
    """

    def __init__(
        self,
        locate: Locate | None = None,
        propose: Propose | None = None,
        screen: Screen | None = None,
        subgoal: Subgoal | None = None,
        verify: Verify | None = None,
        name: str = "custom",
        **planner_settings: Any,
    ):
        try:
            settings = PlannerSettings.from_mapping(planner_settings)
        except SettingsError as err:
            raise PipelineError(str(err)) from None
        self.planner = Planner(locate, propose, screen, subgoal, verify, settings)
        self.name = name

    @property
    def settings(self) -> PlannerSettings:
        """The planner's settings (frozen: :meth:`replace` makes a changed pipeline)."""
        return self.planner.settings

    def replace(self, **changes: Any) -> InductionPipeline:
        """A copy with stages (``locate``, ..., ``verify``: objects) or planner settings
        changed; settings are checked again, as when the pipeline was built."""
        stages = {k: getattr(self.planner, k) for k in STAGE_KEYS}
        stages.update({k: changes.pop(k) for k in STAGE_KEYS if k in changes})
        return InductionPipeline(**stages, name=self.name, **{**self.settings.to_dict(), **changes})

    @classmethod
    def from_spec(cls, spec: dict, where: str = "pipeline") -> InductionPipeline:
        """A pipeline from a mapping: stages as class_path/init_args, ``planner`` settings, ``name``,
        optionally on top of a ``preset``."""
        if not isinstance(spec, dict):
            raise PipelineError(f"{where}: a pipeline config must be a mapping")
        spec = dict(spec)
        if "preset" in spec:
            spec = _merge(preset_spec(str(spec.pop("preset"))), spec)
        allowed = {"name", "planner", *STAGE_KEYS}
        unknown = set(spec) - allowed
        if unknown:
            raise PipelineError(
                f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed | {'preset'})}"
            )
        planner = spec.get("planner") or {}
        if not isinstance(planner, dict):
            raise PipelineError(f"{where}: planner must be a mapping of settings")
        stages = {k: instantiate(spec[k], f"{where}.{k}") for k in STAGE_KEYS if spec.get(k) is not None}
        try:
            return cls(**stages, name=str(spec.get("name", "custom")), **planner)
        except PipelineError as err:
            raise PipelineError(f"{where}: {err}") from None

    @classmethod
    def preset(cls, name: str = "full", **planner_settings: Any) -> InductionPipeline:
        """A named composition: ``full``, ``uniform``, or ``no-<stage>``; keyword arguments
        override its planner settings."""
        return cls.from_spec({"preset": name, "planner": planner_settings})

    @classmethod
    def from_pretrained(cls, **planner_settings: Any) -> InductionPipeline:
        """The default pipeline, built from the checkpoints that ship in the package."""
        return cls.preset("full", **planner_settings)

    @classmethod
    def from_config(cls, path: str | Path) -> InductionPipeline:
        """A pipeline described in YAML (see the module docstring); a bare name that is not a
        file is a pipeline YAML shipped in the package (``pipelines/configs/pipelines/``)."""
        path = config_path(path, "pipelines")
        try:
            cfg = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            shipped = shipped_configs("pipelines")
            close = difflib.get_close_matches(
                path.stem, list(dict.fromkeys([*shipped, *PRESETS])), n=3, cutoff=0.5
            )
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise PipelineError(
                f"no pipeline config {str(path)!r}: not a file, nor a shipped config "
                f"(pipelines/configs/pipelines/: {', '.join(shipped)}); {hint}presets: {', '.join(PRESETS)}"
            ) from None
        except (OSError, yaml.YAMLError) as err:
            raise PipelineError(f"{path}: cannot read pipeline config ({type(err).__name__})") from None
        if isinstance(cfg, dict) and "preset" in cfg:  # the short form: preset plus planner settings
            settings = {k: cfg.pop(k) for k in list(cfg) if k in PLANNER_SETTINGS}
            if settings:
                cfg["planner"] = {**(cfg.get("planner") or {}), **settings}
        return cls.from_spec(cfg, where=str(path))

    @classmethod
    def load(cls, pipeline: str | Path, **planner_settings: Any) -> InductionPipeline:
        """A preset name or a pipeline YAML path, with planner settings overridden."""
        text = str(pipeline)
        if text.endswith((".yaml", ".yml")) or Path(text).exists():
            return cls.from_config(text).replace(**planner_settings)
        return cls.preset(text, **planner_settings)

    def solve(
        self,
        X,
        y,
        function_set: str | list | FunctionSet = "koza",
        calls: int = 200_000,
        seconds: float = 60.0,
        seed: int = 0,
        progress: Progress | None = None,
        on_expand: OnExpand | None = None,
        validation: float = 0.0,
        names: list[str] | tuple[str, ...] | None = None,
        units: str | Mapping[str, str] | Units | None = None,
        target: str = "y",
    ) -> Result:
        """Find a program φ with g(φ, X) ≈ y within the budget (``on_expand``: see ``Planner.search``).

        ``validation`` > 0 holds that fraction of the points out of the search (a seeded
        draw); the front then reports each program's loss on them, and ``select="validation"``
        chooses by it. ``names`` name X's columns (a DataFrame's own are used when not given).
        The result's ``warnings`` say what the data checks found (:mod:`pipelines.interface.data_checks`);
        with the ``outliers="drop"`` setting, the rows they flag are left out of the search.
        ``units`` (``"a=m,T=s"``, a mapping, or :class:`simulator.units.Units`) give each
        column's and the target's (named ``target``) physical units: only dimensionally
        consistent programs are chosen, and the result says each constant's units.
        """
        if names is None and hasattr(X, "columns"):  # a DataFrame's
            names = tuple(str(c) for c in X.columns)
        X, y = check_xy(X, y)
        report = inspect_data(X, y, names)
        outliers = [int(i) for i in report.outliers]
        drop = bool(outliers) and self.planner.settings.outliers == "drop"
        warnings = [w for w in report.warnings if not (drop and w.startswith(f"{len(outliers)} point"))]
        if drop:
            keep = np.setdiff1d(np.arange(len(y)), report.outliers)
            X, y = X[keep], y[keep]
            warnings.append(
                f"{len(outliers)} outlying point(s) left out of the search (rows "
                f"{', '.join(map(str, outliers))}); the loss is on the other {len(y)}"
            )
        if not isinstance(calls, (int, np.integer)) or isinstance(calls, bool) or calls <= 0:
            raise PipelineError(f"calls must be a positive integer, got {calls!r}")
        if not isinstance(seconds, (int, float)) or not np.isfinite(seconds) or seconds <= 0:
            raise PipelineError(f"seconds must be a positive number, got {seconds!r}")
        fs = function_set if isinstance(function_set, FunctionSet) else FunctionSet.from_names(function_set)
        if fs.n_vars != X.shape[1]:
            fs = fs.with_vars(X.shape[1])
        problem = Problem(X, y, fs, units=self._units(units, X.shape[1], names, target))
        if validation:
            problem = _hold_out(problem, validation, int(seed))
        with recording_checkpoints() as used:  # the model files the stages read, for the record
            result = self.planner.search(problem, int(calls), float(seconds), int(seed), progress, on_expand)
        result.checkpoints = describe_checkpoints(used)
        result.variable_names = tuple(names) if names is not None else None
        free = len(result.program.consts)
        distinct = len(np.unique(problem.X, axis=0))
        if free and free >= distinct - 1:  # the planner never chooses free >= distinct
            warnings.append(
                f"the law has {free} free constants and the search saw {distinct} distinct points: "
                "at most one point tests it; measure more before trusting it"
            )
        result.warnings, result.outliers, result.outliers_dropped = warnings + result.warnings, outliers, drop
        return result

    def _units(self, units, n_vars: int, names, target: str) -> Units | None:
        """The data's units, read and checked against the columns (None: none given, or the
        ``use_units`` setting is off)."""
        if units is None or not self.planner.settings.use_units:
            return None
        if isinstance(units, Units):
            if len(units.variables) != n_vars:
                raise PipelineError(
                    f"units are given for {len(units.variables)} columns, the data have {n_vars}"
                )
            return units
        try:
            return Units.parse(units, list(variables(n_vars) if names is None else names), target)
        except UnitsError as err:
            raise PipelineError(str(err)) from None


def _hold_out(problem: Problem, fraction: float, seed: int) -> Problem:
    """The problem with ``fraction`` of its points moved to a validation split."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise PipelineError(f"validation must be a fraction between 0 and 1, got {fraction!r}")
    n = len(problem.y)
    held = int(round(fraction * n))
    if held < 1 or n - held < 2:
        raise PipelineError(f"validation={fraction:g} of {n} points leaves no usable split")
    order = np.random.default_rng([seed, 3]).permutation(n)
    val, train = order[:held], order[held:]
    X, y = problem.X, problem.y
    return Problem(X[train], y[train], problem.function_set, (X[val], y[val]), problem.units)
