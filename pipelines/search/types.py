"""The search's core records: a candidate program, what one verification returned, and a
node of the search tree. Every stage, start provider and the finisher speak in these."""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.edits import Edit
from simulator.program import Program


@dataclass(frozen=True)
class Candidate:
    """A verified program, the edits that made it from its parent, and which stage asked."""

    program: Program
    loss: float
    edits: tuple[Edit, ...] | None  # None: not yet derived (a whole subtree from the sub-goal stage)
    stage: str
    reason: str
    distance: float = 0.0  # learned distance-to-goal M(ŷ, y) when a similarity model is set


@dataclass
class Verified:
    """The finite candidates of one verification, and what it spent (the planner charges it).

    ``stamps[i]`` is how many of this verification's calls had been spent when candidate i
    was known (its own run, or its constant fit): the planner adds it to the calls spent
    before, so a hit is dated when it happened, not when the expansion ended.
    """

    candidates: list[Candidate] = field(default_factory=list)
    calls: int = 0
    fit_passes: int = 0
    stamps: list[int] = field(default_factory=list)


@dataclass(eq=False)
class Node:
    """A verified program in the search tree, linked to the node it was edited from."""

    cand: Candidate
    parent: Node | None
    score: float
    calls: int = 0  # simulator calls spent when it was found

    @property
    def program(self) -> Program:
        return self.cand.program

    @property
    def loss(self) -> float:
        return self.cand.loss

    def root(self) -> Node:
        """The start this node was edited from."""
        node = self
        while node.parent is not None:
            node = node.parent
        return node
