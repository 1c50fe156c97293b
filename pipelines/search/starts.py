"""Start providers: whole programs that join the search as starts, behind one protocol.

The search's edits grow programs one node at a time; a provider offers whole programs found
another way (the leaves, a product of powers, a split into parts on fewer variables, a shape
with inner constants, a linear or rational fit over a basis). Each is asked once, when the
search has spent ``after`` calls without a hit, so that easy tasks never pay for it; every
program it offers is verified like any other candidate, and what it spent is charged.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from pipelines.search.linear import LinearFitter
from pipelines.search.separate import (
    PowerSplit,
    offset_products,
    power_splits,
    rename,
    sum_splits,
    symmetry_splits,
)
from pipelines.search.shapes import ShapeFitter
from pipelines.search.types import Candidate
from simulator.execute import evaluate
from simulator.language import CONST
from simulator.program import Program

if TYPE_CHECKING:
    from pipelines.search.planner import Planner, SolveState
    from pipelines.search.problem import Problem

Starts = list[tuple[Candidate, int]]  # verified programs, each with the calls spent when it was known

# Power splits are tried on tasks with at least this many variables, sum splits on any with
# two or more. A product of powers is tried before the search; splits that need sub-searches
# once the search has spent SEPARATE_AFTER calls without a hit. Each sub-search may spend
# SEPARATE_SHARE of what is left of the calls and seconds.
SEPARATE_MIN_VARS = 3
SEPARATE_AFTER = 1_000
SEPARATE_SHARE = 0.3
# Shapes are fitted after SHAPES_AFTER calls: a fraction of a second that easy tasks never
# pay, and before the sub-goal library's first build (300 calls; 20,000 programs on five
# variables). Linear and rational fits cost a few dozen calls: tried at the same point.
SHAPES_AFTER = 200
SHAPE_BAR = 1e-10
LINEAR_AFTER = SHAPES_AFTER


@runtime_checkable
class StartProvider(Protocol):
    """Whole programs offered once the search has spent ``after`` calls (0: before it starts)."""

    name: str
    after: int

    def applies(self, problem: Problem) -> bool:
        """Whether this provider has anything to offer on this task at all."""
        ...

    def starts(self, planner: Planner, state: SolveState) -> Starts:
        """The provider's programs, verified and charged to ``state``'s budget."""
        ...


class LeafStarts:
    """Every leaf of the function set: where the edits begin."""

    name, after = "leaves", 0

    def applies(self, problem: Problem) -> bool:
        return True

    def starts(self, planner: Planner, state: SolveState) -> Starts:
        leaves = state.problem.function_set.leaves
        return state.verify([Candidate(Program((leaf,)), math.inf, (), "start", "a leaf") for leaf in leaves])


def _powers(state: SolveState) -> list[PowerSplit]:
    """The task's power splits, found once per solve for the products and the splits."""
    if "powers" not in state.memo:
        X, y = state.problem.X, state.problem.y
        found = (
            power_splits(X, y, state.seed, noisy=state.floor > 0) if X.shape[1] >= SEPARATE_MIN_VARS else []
        )
        state.memo["powers"] = found
    return state.memo["powers"]


def _offer(state: SolveState, out: Starts, program: Program | None, reason: str) -> bool:
    """Verify a recombined program into ``out``; whether it fits exactly (no other split is
    needed)."""
    if program is None:
        return False
    verified = state.verify([Candidate(program, math.inf, (), "separate", reason)])
    out.extend(verified)
    return any(c.loss <= state.tol for c, _ in verified)


class ProductStarts:
    """Products of powers with nothing left to solve, alone or plus a constant: whole
    programs at the cost of a verification each, tried before any search."""

    name, after = "products of powers", 0

    def applies(self, problem: Problem) -> bool:
        return True

    def starts(self, planner: Planner, state: SolveState) -> Starts:
        X, y, fs = state.problem.X, state.problem.y, state.problem.function_set
        out: Starts = []
        for split in (s for s in _powers(state) if not s.rest):
            r = split.remainder(X, y)[1]
            rest = Program((CONST,), (float(np.median(r)),)) if fs.has_const else None
            if _offer(state, out, split.combine(rest, fs), f"a product of powers: {split}"):
                return out
        if fs.has_const and X.shape[1] >= SEPARATE_MIN_VARS:  # c0 + k * product: both fitted
            for split in offset_products(X, y):
                scale = Program((CONST,), (float(np.median(split.remainder(X, y)[1])),))
                if _offer(state, out, split.combine(scale, fs), f"a product of powers: {split}"):
                    return out
        return out


class SplitStarts:
    """Splits of the task (:mod:`pipelines.search.separate`) whose parts need a sub-search each
    (itself free to split again), the parts recombined: powers peeled off, a sum of parts on
    disjoint variables, or two variables seen only through their difference or ratio. Every
    sub-search's calls, fit passes and candidates scored are charged to this solve."""

    name, after = "separation", SEPARATE_AFTER

    def applies(self, problem: Problem) -> bool:
        return True

    def starts(self, planner: Planner, state: SolveState) -> Starts:
        X, y, fs = state.problem.X, state.problem.y, state.problem.function_set
        out: Starts = []
        for split in (s for s in _powers(state) if s.rest):
            rest = planner.sub_solve(state, X[:, list(split.rest)], split.remainder(X, y)[1])
            if rest is not None and _offer(state, out, split.combine(rest, fs), f"powers peeled: {split}"):
                return out
        noise = state.noise_slack  # noisy data fit no polynomial better than this
        for split in sum_splits(X, y, state.seed, noise):
            first = planner.sub_solve(state, X[:, list(split.first)], split.first_target)
            if first is None:
                continue
            second = None
            if not split.second_is_zero:
                with np.errstate(all="ignore"):
                    left = y - evaluate(rename(first, split.first), X)
                state.budget.charge(1)
                second = planner.sub_solve(state, X[:, list(split.second)], left)
                if second is None:
                    continue
            if _offer(state, out, split.combine(first, second, fs), f"a sum split: {split}"):
                return out
        for split in symmetry_splits(X, y, state.seed, noise):
            reduced = planner.sub_solve(state, split.reduced(X), y)
            if reduced is not None and _offer(state, out, split.combine(reduced, fs), f"a symmetry: {split}"):
                return out
        return out


class ShapeStarts:
    """Whole programs ``a + b*u(c*L + d)`` and products of two such factors, the inner
    constants found by a grid and Levenberg-Marquardt (:mod:`pipelines.search.shapes`), that meet
    the search's bar; the bases' evaluations, grid points and LM iterations are charged.
    When none meets it, the near fits join the front only (:meth:`SolveState.remember`)."""

    name, after = "shapes", SHAPES_AFTER

    def applies(self, problem: Problem) -> bool:
        return problem.function_set.has_const

    def starts(self, planner: Planner, state: SolveState) -> Starts:
        problem = state.problem
        # the fit's LM sees a subset of the rows and need not reach const_tol: verification's
        # Levenberg-Marquardt polishes what comes within SHAPE_BAR
        fits = ShapeFitter().fit(problem.X, problem.y, problem.function_set, max(state.bar, SHAPE_BAR))
        state.budget.charge(fits.calls, fits.passes, fits.scored)
        near = [
            Candidate(p, math.inf, (), "shape", "a near shape with fitted inner constants") for p in fits.near
        ]
        for cand, stamp in state.verify(near):
            state.remember(cand, stamp)
        return state.verify(
            [
                Candidate(p, math.inf, (), "shape", "a shape with fitted inner constants")
                for p in fits.programs
            ]
        )


class LinearStarts:
    """Whole programs from linear and rational fits over a basis (:mod:`pipelines.search.linear`)
    that meet the search's bar; the basis columns are charged as calls, the supports solved
    as scored."""

    name, after = "linear and rational fits", LINEAR_AFTER

    def applies(self, problem: Problem) -> bool:
        return True

    def starts(self, planner: Planner, state: SolveState) -> Starts:
        problem = state.problem
        fits = LinearFitter().fit(
            problem.X, problem.y, problem.function_set, state.bar, noisy=state.floor > 0
        )
        state.budget.charge(fits.calls, scored=fits.scored)
        return state.verify([Candidate(p, math.inf, (), "linear", reason) for p, reason in fits.programs])
