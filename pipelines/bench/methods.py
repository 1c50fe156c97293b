"""A method is anything the bench runs on a task: a pipeline preset or a peer system.

Every method has one interface (:class:`Method`): a ``name``; ``available()`` and
``why_not()`` (why it cannot run here, or None); ``prepare()``, which loads it into this
process before any clock runs; and ``run(task, seed, calls, seconds)``, which returns the
run's runs.jsonl record. The runner sends method *names* to its workers and each worker
looks them up here, so a preset's pipeline is built once per worker process
(:func:`pipeline`) and reused for every run.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from pipelines.bench import peers
from pipelines.bench.record import Outcome, score

if TYPE_CHECKING:
    from simulator.suites import Task


class UnknownMethod(ValueError):
    """A method name that is neither a pipeline preset nor a peer."""


@runtime_checkable
class Method(Protocol):
    name: str

    def available(self) -> bool:
        """Whether this method can run in this environment."""

    def why_not(self) -> str | None:
        """Why this method cannot run in this environment, or None when it can."""

    def prepare(self) -> None:
        """Load the method into this process (models, imports), so a run's clock starts warm."""

    def run(self, task: Task, seed: int, calls: int, seconds: float) -> dict:
        """One run on the task's data for this seed, within the budget; the runs.jsonl record."""


class _Base:
    """The shared half of a run: the same data per (task, seed), and the same judging."""

    name: str

    def available(self) -> bool:
        return self.why_not() is None

    def why_not(self) -> str | None:
        return None

    def prepare(self) -> None:
        pass

    def run(self, task: Task, seed: int, calls: int, seconds: float) -> dict:
        X, y = task.sample("train", seed)
        X_test, _ = task.sample("test", seed)
        outcome = self.fit(X, y, task.function_set, calls, seconds, seed, X_test, task.dimensions())
        return score(task, seed, self.name, calls, seconds, outcome)

    def fit(self, X, y, function_set, calls: int, seconds: float, seed: int, X_test, units=None) -> Outcome:
        """One solve; ``units`` (the task's, or None) is for the methods that take them."""
        raise NotImplementedError


class PresetMethod(_Base):
    """A pipeline preset (``full``, ``plain``, ``uniform``, ``no-<stage>``) or pipeline YAML."""

    def __init__(self, name: str):
        self.name = name

    def prepare(self) -> None:
        pipeline(self.name)

    def fit(self, X, y, function_set, calls, seconds, seed, X_test, units=None) -> Outcome:
        result = pipeline(self.name).solve(
            X, y, function_set=function_set, calls=calls, seconds=seconds, seed=seed, units=units
        )
        with np.errstate(all="ignore"):
            test_pred = result.predict(X_test)
        return Outcome(
            found=result.sympy(),
            nmse_train=result.loss,
            calls=result.calls,
            seconds=result.seconds,
            complexity=result.program.complexity,
            fit_passes=result.fit_passes,
            scored=result.candidates_scored,
            history=list(result.history),
            found_at=result.found_at,
            test_pred=test_pred,
            front=[row.program.to_sympy() for row in result.front],
        )


class PeerMethod(_Base):
    """A peer system (Operon, gplearn), run through :func:`pipelines.bench.peers.run_peer`."""

    def __init__(self, name: str):
        self.name = name

    def why_not(self) -> str | None:
        return peers.why_not(self.name)

    def prepare(self) -> None:
        peers.load(self.name)

    def fit(self, X, y, function_set, calls, seconds, seed, X_test, units=None) -> Outcome:
        res = peers.run_peer(self.name, X, y, function_set, calls, seconds, seed, X_test=X_test)
        return Outcome(
            found=res["found_sympy"],
            nmse_train=res["nmse_train"],
            calls=res["simulator_calls"],
            seconds=res["seconds"],
            complexity=res["complexity"],
            fit_passes=res.get("fit_forward_passes", 0),
            history=res.get("history") or [],
            test_pred=res.get("y_test_pred"),
        )


# --- the registry ---------------------------------------------------------------------------------


def presets() -> tuple[str, ...]:
    """Every pipeline preset: ``full``, ``plain``, ``uniform`` and one ``no-<stage>`` per stage."""
    from pipelines.interface import pipeline

    named = getattr(pipeline, "PRESETS", None)  # the pipeline's own list, where it keeps one
    return tuple(named or ("full", "plain", "uniform", *(f"no-{s}" for s in pipeline.STAGES)))


def names() -> tuple[str, ...]:
    """Every method the bench knows, presets first."""
    return (*presets(), *peers.PEERS)


def installed() -> tuple[str, ...]:
    """The default ``--methods``: every preset, and each peer whose package imports."""
    return (*presets(), *(p for p in peers.PEERS if peers.why_not(p) is None))


def is_pipeline_file(name: str) -> bool:
    """A method given as a pipeline YAML (``docs/pipelines.md``), e.g. a round of ``induce improve``."""
    return name.endswith((".yaml", ".yml"))


def same_method(name: str) -> str:
    """What makes two method names one method: a pipeline YAML's resolved path, else the name."""
    if is_pipeline_file(name):
        from pathlib import Path

        return str(Path(name).resolve())
    return name.lower()


@cache
def get(name: str) -> Method:
    """The method of that name (lower case, or a pipeline YAML path); UnknownMethod when there is none."""
    if name in peers.PEERS:
        return PeerMethod(name)
    if name in presets():
        return PresetMethod(name)
    if is_pipeline_file(name):
        from pathlib import Path

        if not Path(name).is_file():
            raise UnknownMethod(f"method {name!r}: no such pipeline YAML")
        return PresetMethod(name)
    raise UnknownMethod(f"unknown method {name!r}; methods: {', '.join(names())}, or a pipeline YAML")


def parse(text: str | None) -> list[str]:
    """Method names from a comma list (None: the installed ones); unknown names are an error."""
    if text is None:
        return list(installed())
    raw = (m.strip() for m in text.split(",") if m.strip())
    # a method named twice runs once (it is never paired against itself): a preset in any
    # case, a pipeline YAML however its path is spelled; the first spelling names it
    first: dict[str, str] = {}
    for m in raw:
        name = m if is_pipeline_file(m) else m.lower()
        first.setdefault(same_method(name), name)
    chosen = list(first.values())
    if not chosen:
        raise UnknownMethod("--methods needs at least one method")
    for name in chosen:
        get(name)
    return chosen


_PIPELINES: dict[str, Any] = {}


def pipeline(name: str):
    """A preset's (or pipeline YAML's) pipeline, built once per process and reused by every run."""
    if name not in _PIPELINES:
        from pipelines.interface.pipeline import InductionPipeline

        _PIPELINES[name] = InductionPipeline.load(name)
    return _PIPELINES[name]
