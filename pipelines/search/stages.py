"""The stage interfaces the planner composes, as ``typing.Protocol``s.

A stage is a plain object with a ``name`` and one method; anything with that shape plugs
into the planner, in Python or from a pipeline YAML (``class_path``/``init_args``). Stages
never touch the budget: they read the :class:`Problem` and return what they spent, and the
planner charges it. A stage that needs memory across one solve (the sub-goal library) hands
the planner a fresh session from ``start(problem)``, which the planner owns for that solve.
The stand-ins (``UniformLocate``, ``UniformPropose``, ``NoScreen``, ``NoSubgoal``) live beside
the learned stages they replace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from pipelines.search.budget import Budget
from pipelines.search.problem import Problem
from pipelines.search.verify import Candidate
from simulator.edits import Edit
from simulator.program import Program


@runtime_checkable
class Locate(Protocol):
    """Where to edit: a prior over the program's nodes (one positive score per node)."""

    name: str

    def scores(self, problem: Problem, program: Program) -> np.ndarray: ...


@runtime_checkable
class Propose(Protocol):
    """Which legal edits to try: a log-score per edit (higher is tried first)."""

    name: str

    def log_scores(self, problem: Problem, program: Program, edits: Sequence[Edit]) -> np.ndarray: ...


@runtime_checkable
class Screen(Protocol):
    """Which proposed edits reach the simulator: the indices to verify."""

    name: str

    def select(
        self, problem: Problem, program: Program, edits: Sequence[Edit], log_scores: np.ndarray
    ) -> np.ndarray: ...


@dataclass
class SubgoalOffer:
    """Whole-subtree replacements for one program, the simulator calls spent finding them
    (library programs enumerated), and the candidates scored without a call (lookups)."""

    candidates: list[Candidate] = field(default_factory=list)
    calls: int = 0
    scored: int = 0


@runtime_checkable
class SubgoalSession(Protocol):
    """A sub-goal stage's memory for one solve (its library on that solve's X)."""

    def candidates(
        self, program: Program, budget: Budget, location_scores: np.ndarray | None = None
    ) -> SubgoalOffer:
        """Replacements for ``program``; ``budget`` is read (to pace the work), never charged."""
        ...

    def wants_call(self, budget: Budget) -> bool:
        """Whether the stage has new work due now, whatever its share (a library due to grow)."""
        ...


@runtime_checkable
class Subgoal(Protocol):
    """Sub-goals: replacement subtrees from the values a node must produce."""

    name: str

    def start(self, problem: Problem) -> SubgoalSession: ...
