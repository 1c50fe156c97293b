"""The planner: best-first search over programs, one verified edit at a time.

Each expansion asks the stages in turn: locate (where), propose (which edit), screen
(which to run), sub-goal (whole replacement subtrees), verify (the simulator). Children
are de-duplicated by canonical key, a Pareto front of complexity against loss is kept,
and the search stops at the recovery tolerance or when the budget is spent.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from pipelines.budget import Budget
from pipelines.linear import LinearFitter
from pipelines.locate import UniformLocate
from pipelines.noise import check_noise_floor, estimate_noise
from pipelines.problem import Problem
from pipelines.propose import UniformPropose
from pipelines.result import FrontRow, Result, TraceStep
from pipelines.screen import NoScreen
from pipelines.selection import beats_mean, check_criterion, criterion_values, distinct, select
from pipelines.separate import (
    PowerSplit,
    offset_products,
    power_splits,
    rename,
    sum_splits,
    symmetry_splits,
)
from pipelines.shapes import ShapeFitter
from pipelines.stages import Locate, Propose, Screen, Subgoal, SubgoalSession
from pipelines.subgoal import NoSubgoal
from pipelines.tidy import description_length, shorter_forms, simpler_forms
from pipelines.verify import Candidate, Verified, Verify
from simulator.edits import Edit, edit_path, legal_edits
from simulator.execute import evaluate
from simulator.language import CONST
from simulator.program import Program
from simulator.scoring import nmse

Progress = Callable[[Budget, "Node"], None]
OnExpand = Callable[["Expansion"], None]
# The stop reason when a program reaches the tolerance: an exact fit of the training data.
# Whether it is the true law is for a ground truth to say (the recovery check), not the search.
EXACT_FIT = "exact fit"
# The stop reason on noisy data: a program reached the estimated noise floor (pipelines/noise.py).
NOISE_FLOOR = "noise floor reached"
# The law's own loss on noisy data scatters around the estimated floor (the estimate is from
# a few points, and fitted constants absorb a little noise): within this factor counts.
FLOOR_SLACK = 1.5
# A noisy hit is often a start (a rational or shape fit) met within a few hundred calls: the
# search then goes on for at least this many polish windows before it stops, so that the
# law, if it is another program, has time to be found and compared by description length.
NOISY_POLISH = 4
# Separability (pipelines/separate.py): power splits are tried on tasks with at least this
# many variables, sum splits on any with two or more. A product of powers is tried before
# the search; splits that need sub-searches once the search has spent SEPARATE_AFTER calls
# without a hit, so that easy tasks never pay for them. Each sub-search may spend
# SEPARATE_SHARE of what is left of the calls and seconds.
SEPARATE_MIN_VARS = 3
SEPARATE_AFTER = 1_000
SEPARATE_SHARE = 0.3
# Shapes with fitted inner constants (pipelines/shapes.py) are fitted once the search has
# spent SHAPES_AFTER calls without a hit: a fraction of a second that easy tasks never pay,
# and before the sub-goal library's first build (300 calls; 20,000 programs on five variables).
SHAPES_AFTER = 200
SHAPE_BAR = 1e-10
# Linear and rational fits over a basis (pipelines/linear.py) cost a few dozen calls: tried
# at the same point as the shapes, so easy tasks never pay for them.
LINEAR_AFTER = SHAPES_AFTER
# Exact fits are told apart by how exact: on data that spans many orders of magnitude,
# dropping a real additive constant (2.1 - 2.1*exp(-0.5*x)) can cost less than the tolerance
# of the variance. A program counts as exact as another when its loss is within EXACT_SLACK
# of the other's (or below EXACT_FLOOR times the tolerance).
EXACT_SLACK = 1e4
EXACT_FLOOR = 1e-6
# The sub-goal stage's share of the search is counted in work, not seconds, so that a seed
# gives the same search everywhere: its calls plus its lookups at this many to a call (fewer
# lookups to a call: the stage is asked less often). On the development suite, with two runs
# sharing two cores, the median run that did not recover ran at 2,464 calls/s at 1e6 lookups
# to a call and 3,534 at 5e5; at 1.5e5 the stage takes a smaller share than half the seconds.
SCORED_PER_CALL = 150_000


def as_exact(loss: float, tol: float) -> float:
    """The loss up to which a program is as exact as one of ``loss`` (both within ``tol``)."""
    return min(tol, max(EXACT_SLACK * loss, EXACT_FLOOR * tol))


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


@dataclass
class Expansion:
    """What one expansion saw and did, for observers such as the trace recorder.

    ``log_scores`` holds the planner's score of every legal edit (proposal plus location
    prior); ``proposed`` the indices the proposal picked (its top ``width``, or ``width // 2``
    with ``verify_all``), ``verified`` those run (every edit with ``verify_all``, else the
    ones the screen let through); ``children`` every kept child with the calls spent when it
    was known.
    """

    problem: Problem
    parent: Node
    edits: list[Edit]
    log_scores: np.ndarray
    proposed: np.ndarray
    verified: np.ndarray
    children: list[tuple[Candidate, int]]
    calls: int


@dataclass
class SolveState:
    """Everything one solve owns: the budget, the random stream, and the stages' sessions.

    The planner makes a fresh one per ``search``, so a planner (and its pipeline) can be
    reused for any number of solves, in any order.
    """

    problem: Problem
    budget: Budget
    rng: np.random.Generator
    subgoal: SubgoalSession
    on_expand: OnExpand | None = None
    floor: float = 0.0  # the data's estimated noise floor (NMSE); 0 for exact data
    progress: Progress | None = None
    edit_work: int = 0  # simulator calls spent running edits
    subgoal_work: float = 0.0  # the sub-goal stage's calls plus its lookups (SCORED_PER_CALL to a call)

    def subgoals_due(self, share: float) -> bool:
        """Whether the sub-goal stage is within ``share`` of the work (deterministic: counted
        in calls, not timed, so a seed gives the same search on any machine)."""
        return self.subgoal_work * (1 - share) <= self.edit_work * share  # share 1: always

    def run(self, verified: Verified) -> list[tuple[Candidate, int]]:
        """Charge what a verification spent; its candidates, each with the simulator calls
        spent when it was known."""
        before = self.budget.calls
        self.budget.charge(verified.calls, verified.fit_passes)
        return [(c, before + stamp) for c, stamp in zip(verified.candidates, verified.stamps, strict=True)]


class Planner:
    """Best-first search under a budget of simulator calls and seconds.

    ``width`` caps how many proposed edits of one parent are verified (None: all of them);
    ``parsimony`` weighs complexity against log-error in the search score. ``max_size`` caps
    the programs searched: edits never grow past it, and a sub-goal replacement past it joins
    the search only if it meets the stop bar, so failing searches do not fill with bloat.

    The search stops once a program's loss is within ``tol``. Fitted constants make
    near-misses cheap (many-term least-squares fits, or cos(x) written as sin(x + 1.5708)
    both reach 1e-13), so with constants the bar is ``const_tol``; after the first hit the
    search spends up to ``polish_calls`` (and ``polish_seconds``) more looking for a smaller
    program that also meets it, and the result has its redundant constants dropped.

    Noisy data: ``noise_floor`` is the NMSE the law itself would score ("auto": estimated
    from the data, :func:`pipelines.noise.noise_floor`; 0: exact data). Losses below it
    count as the floor in the search score, so near-fits that chase the noise earn nothing
    over smaller programs. Once a program is within ``FLOOR_SLACK`` of it, the search goes
    on, unrestricted, for as many calls and seconds again as it took (at least the polish),
    then stops ("noise floor reached"). ``select`` names how the result is chosen from
    the Pareto front (:mod:`pipelines.selection`).

    ``separate``: split the task into parts on fewer variables (:mod:`pipelines.separate`):
    power-law factors peeled off (a product of powers alone before the search starts), a
    sum of parts on disjoint variables, or two variables seen only through their difference
    or ratio, each part solved by a sub-search with its own share
    of the budget once the search has found the task hard; the recombined program joins the
    search as a start.

    ``shapes``: once the search has spent ``SHAPES_AFTER`` calls without a hit, fit whole
    programs ``a + b*u(c*L + d)`` and products of two such factors (:mod:`pipelines.shapes`),
    the inner constants found by a grid and Levenberg-Marquardt; those that fit (exactly, or
    to the noise floor) join the search as starts.

    ``verify_all``: an expansion runs every legal edit of its node in one vectorised pass
    (each a simulator call) and keeps the ``width // 2`` lowest losses plus the proposal's
    top ``width // 2``; the screen is not asked. Off, it runs the proposal's top ``width``
    that pass the screen, and keeps all. Running is cheaper than judging: the simulator
    scores a child in microseconds, a learned screen in about as many milliseconds.

    ``subgoal_share``: the sub-goal stage may take this share of the search's work (its
    calls and lookups against the edits' calls; ``SCORED_PER_CALL``), about that share of
    the seconds. An expanded node waits for its sub-goals while the stage is over its
    share, and the best waiting node is served first; 1 asks the stage at every expansion.
    """

    def __init__(
        self,
        locate: Locate | None = None,
        propose: Propose | None = None,
        screen: Screen | None = None,
        subgoal: Subgoal | None = None,
        verify: Verify | None = None,
        width: int | None = None,
        max_size: int = 30,
        parsimony: float = 0.02,
        tol: float = 1e-12,
        similarity_weight: float = 0.5,
        const_tol: float = 1e-20,
        polish_calls: int = 1_000,
        polish_seconds: float = 5.0,
        noise_floor: float | str = "auto",
        select: str = "auto",
        separate: bool = True,
        shapes: bool = True,
        linear: bool = True,
        verify_all: bool = True,
        subgoal_share: float = 0.5,
    ):
        self.locate = locate or UniformLocate()
        self.propose = propose or UniformPropose()
        self.screen = screen or NoScreen()
        self.subgoal = subgoal or NoSubgoal()
        self.verify = verify or Verify()
        self.width = width
        self.max_size = max_size
        self.parsimony = parsimony
        self.tol = tol
        self.similarity_weight = similarity_weight
        self.const_tol = const_tol
        self.polish_calls = polish_calls
        self.polish_seconds = polish_seconds
        self.noise_floor = check_noise_floor(noise_floor)
        self.select = check_criterion(select)
        self.separate = bool(separate)
        self.shapes = bool(shapes)
        self.linear = bool(linear)
        self.verify_all = bool(verify_all)
        if not 0 < subgoal_share <= 1:
            raise ValueError(f"subgoal_share must be in (0, 1], got {subgoal_share}")
        self.subgoal_share = float(subgoal_share)

    def score(self, cand: Candidate, floor: float = 0.0) -> float:
        """Lower is better: log-error (no better than the noise floor), the learned distance to
        the goal (if any), and size."""
        return (
            math.log10(max(cand.loss, floor) + 1e-16)
            + self.similarity_weight * cand.distance
            + self.parsimony * cand.program.complexity
        )

    def search(
        self,
        problem: Problem,
        max_calls: int = 200_000,
        max_seconds: float = 60.0,
        seed: int = 0,
        progress: Progress | None = None,
        on_expand: OnExpand | None = None,
    ) -> Result:
        """Search for a program that fits ``problem`` within the budget; a fresh state per call.

        ``on_expand``, when given, sees every expansion (:class:`Expansion`) as it happens.
        """
        check_criterion(self.select, has_validation=problem.validation is not None)
        setting = check_noise_floor(self.noise_floor)  # it may have been assigned after __init__
        budget = Budget(max_calls, max_seconds)
        estimate = estimate_noise(problem.X, problem.y, seed) if setting == "auto" else None
        floor = estimate.floor if estimate is not None else setting
        state = SolveState(
            problem,
            budget,
            np.random.default_rng(seed),
            self.subgoal.start(problem),
            on_expand,
            float(floor),
            progress,
        )
        fs = problem.function_set
        tol = self.const_tol if fs.has_const else self.tol
        bar = max(tol, FLOOR_SLACK * state.floor)  # a program this good ends the search after the polish
        tie = itertools.count()
        frontier: list[tuple[float, int, Node]] = []
        waiting: list[tuple[float, int, Node, np.ndarray]] = []  # expanded, sub-goals not yet asked
        seen: set[str] = set()
        front: dict[int, Node] = {}
        history: list[tuple[int, float]] = []
        best: Node | None = None
        stopped = ""

        allowed = set(fs.tokens)

        def admit(cand: Candidate, parent: Node | None, stamp: int) -> Node | None:
            nonlocal best
            key = cand.program.key
            if key in seen or not allowed.issuperset(cand.program.tokens):
                return None  # seen already, or a token the task does not allow (never returned)
            seen.add(key)
            if cand.program.complexity > self.max_size and cand.loss > bar:
                return None  # no bloat: a sub-goal replacement past the size cap joins only if exact
            node = Node(cand, parent, self.score(cand, state.floor), stamp)
            heapq.heappush(frontier, (node.score, next(tie), node))
            c = cand.program.complexity
            if c not in front or cand.loss < front[c].loss:
                front[c] = node
            if best is None or node.score < best.score or (cand.loss <= bar and best.loss > bar):
                best = node
                history.append((stamp, cand.loss))
            return node

        starts = [Candidate(Program((leaf,)), math.inf, (), "start", "a leaf") for leaf in fs.leaves]
        for cand, stamp in state.run(self.verify.programs(problem, starts, budget.remaining)):
            admit(cand, None, stamp)
        try:
            powers: list[PowerSplit] = []  # the power splits, found once for both phases
            if self.separate and problem.X.shape[1] >= SEPARATE_MIN_VARS:
                powers = power_splits(problem.X, problem.y, seed, noisy=state.floor > 0)
            if self.separate:  # products of powers cost nothing: tried before any search
                for cand, stamp in self._products(state, powers):
                    admit(cand, None, stamp)
            separated = not self.separate
            shaped = not (self.shapes and fs.has_const)
            fitted = not self.linear
            polish_until: tuple[int, float] | None = None  # (calls, seconds)
            noisy = False  # the best program meets the noise floor but fits inexactly
            while frontier and not stopped:
                if best is not None and best.loss <= bar:
                    noisy = best.loss > tol
                    if not fs.has_const and not noisy:
                        stopped = EXACT_FIT
                        break
                    if polish_until is None:
                        # A noisy hit may be a look-alike of the law that the search met first:
                        # the search goes on, unrestricted, as long again as it took (at least
                        # the polish), in calls and in seconds, before it stops.
                        windows, again = (NOISY_POLISH, 1) if noisy else (1, 0)
                        polish_until = (
                            budget.calls + max(self.polish_calls * windows, budget.calls * again),
                            budget.elapsed + max(self.polish_seconds * windows, budget.elapsed * again),
                        )
                    spent = (budget.calls >= polish_until[0], budget.elapsed >= polish_until[1])
                    if all(spent) if noisy else any(spent):
                        stopped = NOISE_FLOOR if noisy else EXACT_FIT
                        break
                stopped = budget.exhausted() or ""
                if stopped:
                    break
                if not separated and budget.calls >= SEPARATE_AFTER and polish_until is None:
                    separated = True  # the task was not easy: split it and solve the parts
                    for cand, stamp in self._split(state, powers, seed):
                        admit(cand, None, stamp)
                    continue
                if not fitted and budget.calls >= LINEAR_AFTER and polish_until is None:
                    fitted = True
                    for cand, stamp in self._linear(state, bar):
                        admit(cand, None, stamp)
                    continue
                if not shaped and budget.calls >= SHAPES_AFTER and polish_until is None:
                    shaped = True
                    for cand, stamp in self._shapes(state, bar):
                        admit(cand, None, stamp)
                    continue
                _, _, node = heapq.heappop(frontier)
                polishing = polish_until is not None and not noisy
                if polishing:
                    smallest = min(n.program.complexity for n in front.values() if n.loss <= bar)
                    c = node.program.complexity
                    if c > smallest or (c == smallest and node.loss > bar):
                        continue  # polishing looks only for smaller programs that meet the bar
                children, loc = self._edit_children(state, node)
                for cand, stamp in children:
                    admit(cand, node, stamp)
                if not polishing:  # sub-goals go to the best expanded node still waiting for them
                    heapq.heappush(waiting, (node.score, next(tie), node, loc))
                    if state.subgoals_due(self.subgoal_share) or state.subgoal.wants_call(budget):
                        _, _, target, target_loc = heapq.heappop(waiting)
                        for cand, stamp in self._subgoal_children(state, target.program, target_loc, seen):
                            admit(cand, target, stamp)
                if progress is not None and best is not None:
                    progress(budget, best)
            if not stopped:
                if best is not None and best.loss <= bar:
                    stopped = EXACT_FIT if best.loss <= tol else NOISE_FLOOR
                else:
                    stopped = "exhausted search"
        except KeyboardInterrupt:
            stopped = "interrupted"
        if best is None:
            raise RuntimeError("no valid program found on this data: every candidate was non-finite")
        exact = [n for n in front.values() if n.loss <= tol]
        if exact:  # only those as exact as the most exact
            exact_bar = as_exact(min(n.loss for n in exact), tol)
            exact = [n for n in exact if n.loss <= exact_bar]
        if self.select == "auto" and exact:  # the exact program with the shortest description
            chosen = min(exact, key=lambda n: description_length(n.program))
        else:
            chosen = self._choose(state, front, tol)
        if fs.has_const and chosen.loss <= tol:
            chosen = self._tidy(state, front, tol, chosen)
        elif chosen.loss > tol and self.select in ("auto", "mdl"):
            chosen = self._simplify(state, front, tol, chosen)
        rows, start = self._front(state, front, tol, chosen.program), _root(chosen)
        return Result(
            program=chosen.program,
            loss=chosen.loss,
            front=rows,
            start=start.program,
            trace=_trace(chosen),
            calls=budget.calls,
            fit_passes=budget.fit_passes,
            candidates_scored=budget.scored,
            seconds=budget.elapsed,
            stopped=stopped,
            history=history,
            found_at=chosen.calls,
            noise_floor=state.floor,
            noise=estimate.to_dict() if estimate is not None else None,
            selection=self.select,
            split=start.cand.reason if start.cand.stage == "separate" else "",
        )

    def expand(
        self, state: SolveState, node: Node, seen: set[str] = frozenset(), subgoals: bool = True
    ) -> list[tuple[Candidate, int]]:
        """This node's children from the stages, verified (skipping ``seen`` keys), each with the
        simulator calls spent when it was known.

        ``subgoals=False`` leaves out the sub-goal stage, whose library costs thousands of calls.
        """
        children, loc = self._edit_children(state, node)
        if subgoals:
            children += self._subgoal_children(state, node.program, loc, seen)
        return children

    def _edit_children(self, state: SolveState, node: Node) -> tuple[list[tuple[Candidate, int]], np.ndarray]:
        """The node's verified one-edit children, and the locate stage's scores of its nodes.

        With ``verify_all`` every legal edit is run in one vectorised pass; the children kept
        are the best half of ``width`` by loss and the proposal's top half (the other runs
        are counted and dropped). Otherwise the proposal's top ``width`` that pass the screen
        are run, and all are kept.
        """
        problem, budget, program = state.problem, state.budget, node.program
        edits = legal_edits(program, problem.function_set, self.max_size)
        loc = self.locate.scores(problem, program)
        if not edits:
            return [], loc
        logp = self.propose.log_scores(problem, program, edits)
        logp = logp + np.log(loc[[e.loc for e in edits]])
        order = np.argsort(-(logp + state.rng.gumbel(size=len(logp))))
        if self.verify_all:
            half = None if self.width is None else max(self.width // 2, 1)
            picks = order[:half]
            reasons = [f"one of the {half} lowest losses of {len(edits)} edits run"] * len(edits)
            for i in picks:
                reasons[i] = f"{self.propose.name} log-score {logp[i]:.2f}, {self.locate.name} location"
            keep = None if half is None else (lambda loss: np.union1d(picks, np.argsort(loss)[:half]))
            verified = self.verify.edits(problem, program, edits, "propose", reasons, budget.remaining, keep)
            proposed, run = picks, np.arange(len(edits))
        else:
            proposed = order if self.width is None else order[: self.width]
            chosen = [edits[i] for i in proposed]
            keep = self.screen.select(problem, program, chosen, logp[proposed])
            run = proposed[keep]
            reasons = [
                f"{self.propose.name} log-score {logp[i]:.2f}, {self.locate.name} location" for i in run
            ]
            verified = self.verify.edits(
                problem, program, [edits[i] for i in run], "propose", reasons, budget.remaining
            )
        children = state.run(verified)
        state.edit_work += verified.calls
        if state.on_expand is not None:
            state.on_expand(Expansion(problem, node, edits, logp, proposed, run, children, budget.calls))
        return children, loc

    def _subgoal_children(
        self, state: SolveState, program: Program, loc: np.ndarray, seen: set[str]
    ) -> list[tuple[Candidate, int]]:
        """Whole-subtree replacements from the sub-goal stage, verified; what the stage spent
        is added to its work, since the search gives it only a share (``subgoal_share``)."""
        budget = state.budget
        calls, scored = budget.calls, budget.scored
        offer = state.subgoal.candidates(program, budget, loc)
        budget.charge(offer.calls, scored=offer.scored)
        wholes = [c for c in offer.candidates if c.program.key not in seen]
        children = state.run(self.verify.programs(state.problem, wholes, budget.remaining))
        state.subgoal_work += budget.calls - calls + (budget.scored - scored) / SCORED_PER_CALL
        return children

    def _offer(self, state: SolveState, out: list, program: Program | None, reason: str) -> bool:
        """Verify a recombined program into ``out``; whether it fits exactly (no other split
        is needed)."""
        if program is None:
            return False
        problem = state.problem
        cand = Candidate(program, math.inf, (), "separate", reason)
        verified = state.run(self.verify.programs(problem, [cand], state.budget.remaining))
        out.extend(verified)
        exact = self.const_tol if problem.function_set.has_const else self.tol
        return any(c.loss <= exact for c, _ in verified)

    def _products(self, state: SolveState, powers: list[PowerSplit]) -> list[tuple[Candidate, int]]:
        """Products of powers with nothing left to solve, alone or plus a constant: whole
        programs at the cost of a verification each, tried before any search."""
        X, y, fs = state.problem.X, state.problem.y, state.problem.function_set
        out: list[tuple[Candidate, int]] = []
        for split in (s for s in powers if not s.rest):
            r = split.remainder(X, y)[1]
            rest = Program((CONST,), (float(np.median(r)),)) if fs.has_const else None
            if self._offer(state, out, split.combine(rest, fs), f"a product of powers: {split}"):
                return out
        if fs.has_const and X.shape[1] >= SEPARATE_MIN_VARS:  # c0 + k * product: both fitted
            for split in offset_products(X, y):
                scale = Program((CONST,), (float(np.median(split.remainder(X, y)[1])),))
                if self._offer(state, out, split.combine(scale, fs), f"a product of powers: {split}"):
                    return out
        return out

    def _shapes(self, state: SolveState, bar: float) -> list[tuple[Candidate, int]]:
        """Whole programs of one or two inner-constant factors that meet ``bar``, verified;
        the bases' evaluations, grid points and LM iterations are charged to this solve."""
        problem = state.problem
        # the fit's LM sees a subset of the rows and need not reach const_tol: verification's
        # Levenberg-Marquardt polishes what comes within SHAPE_BAR
        fits = ShapeFitter().fit(problem.X, problem.y, problem.function_set, max(bar, SHAPE_BAR))
        state.budget.charge(fits.calls, fits.passes, fits.scored)
        cands = [
            Candidate(p, math.inf, (), "shape", "a shape with fitted inner constants") for p in fits.programs
        ]
        return state.run(self.verify.programs(problem, cands, state.budget.remaining))

    def _linear(self, state: SolveState, bar: float) -> list[tuple[Candidate, int]]:
        """Whole programs from linear and rational fits over a basis that meet ``bar``,
        verified; the basis columns are charged as calls, the supports solved as scored."""
        problem = state.problem
        fits = LinearFitter().fit(problem.X, problem.y, problem.function_set, bar, noisy=state.floor > 0)
        state.budget.charge(fits.calls, scored=fits.scored)
        cands = [Candidate(p, math.inf, (), "linear", reason) for p, reason in fits.programs]
        return state.run(self.verify.programs(problem, cands, state.budget.remaining))

    def _split(self, state: SolveState, powers: list[PowerSplit], seed: int) -> list[tuple[Candidate, int]]:
        """Whole programs from splits of the task (:mod:`pipelines.separate`) whose parts need
        a sub-search each (itself free to split again), the parts recombined. Every
        sub-search's calls, fit passes and candidates scored are charged to this solve."""
        X, y, fs = state.problem.X, state.problem.y, state.problem.function_set
        out: list[tuple[Candidate, int]] = []
        for split in (s for s in powers if s.rest):
            rest = self._sub_solve(state, X[:, list(split.rest)], split.remainder(X, y)[1], seed)
            if rest is not None and self._offer(
                state, out, split.combine(rest, fs), f"powers peeled: {split}"
            ):
                return out
        noise = FLOOR_SLACK * state.floor  # noisy data fit no polynomial better than this
        for split in sum_splits(X, y, seed, noise):
            first = self._sub_solve(state, X[:, list(split.first)], split.first_target, seed)
            if first is None:
                continue
            second = None
            if not split.second_is_zero:
                with np.errstate(all="ignore"):
                    left = y - evaluate(rename(first, split.first), X)
                state.budget.charge(1)
                second = self._sub_solve(state, X[:, list(split.second)], left, seed)
                if second is None:
                    continue
            if self._offer(state, out, split.combine(first, second, fs), f"a sum split: {split}"):
                return out
        for split in symmetry_splits(X, y, seed, noise):
            reduced = self._sub_solve(state, split.reduced(X), y, seed)
            if reduced is not None and self._offer(
                state, out, split.combine(reduced, fs), f"a symmetry: {split}"
            ):
                return out
        return out

    def _sub_solve(self, state: SolveState, X: np.ndarray, target: np.ndarray, seed: int) -> Program | None:
        """The program a sub-search finds for ``target`` on the inputs ``X`` (fewer variables
        than the task's), within ``SEPARATE_SHARE`` of what is left of the budget; None when
        too little is left."""
        budget = state.budget
        calls = int(budget.remaining * SEPARATE_SHARE)
        seconds = (budget.max_seconds - budget.elapsed) * SEPARATE_SHARE
        if calls < 1 or seconds <= 0 or not (np.isfinite(target).all() and np.isfinite(X).all()):
            return None
        fs = state.problem.function_set.with_vars(X.shape[1])
        progress = None
        if state.progress is not None:  # the sub-search's calls, counted on top of this solve's
            progress = lambda b, node: state.progress(replace(b, calls=budget.calls + b.calls), node)  # noqa: E731
        planner = self
        if self.select == "validation":  # a part has no held-out split of its own
            planner = copy.copy(self)
            planner.select = "auto"
        found = planner.search(Problem(X, target, fs), calls, seconds, seed, progress)
        budget.charge(found.calls, found.fit_passes, found.candidates_scored)
        return found.program

    def _tidy(self, state: SolveState, front: dict[int, Node], tol: float, node: Node) -> Node:
        """Rewrite the chosen exact program while its description length drops and it stays
        exact; each rewrite also takes its size's place on the Pareto front.
        Exact means as exact as the program was (:func:`as_exact`), not only within ``tol``.
        """
        budget = state.budget
        while budget.remaining > 0:
            bar = as_exact(node.loss, tol)
            forms = [
                Candidate(p, math.inf, (), "tidy", "a constant absorbed or the form expanded")
                for p in shorter_forms(node.program, state.problem.function_set)
            ]
            verified = state.run(self.verify.programs(state.problem, forms, budget.remaining))
            better = [
                (c, stamp)
                for c, stamp in verified
                if c.loss <= bar and description_length(c.program) < description_length(node.program)
            ]
            if not better:
                break
            cand, stamp = min(better, key=lambda cs: description_length(cs[0].program))
            node = Node(cand, node, self.score(cand, state.floor), stamp)
            front[cand.program.complexity] = node  # shorter to write than any exact one there
        return node

    def _simplify(self, state: SolveState, front: dict[int, Node], tol: float, node: Node) -> Node:
        """On data no program fits exactly: replace the chosen program by a one-step simpler
        form (a subtree hoisted or collapsed, a constant absorbed) while that lowers its
        description length; each step takes its size's place on the front if it fits better.
        """
        problem, budget = state.problem, state.budget
        n, tokens = len(problem.y), len(problem.function_set.tokens)

        def mdl(cand: Candidate) -> float:
            p = cand.program
            return float(
                criterion_values("mdl", [p.complexity], [cand.loss], n, tokens, [len(p.consts)], tol)[0]
            )

        current = mdl(node.cand)
        while budget.remaining > 0:
            forms = [
                Candidate(p, math.inf, (), "simplify", "a subtree hoisted or collapsed")
                for p in simpler_forms(node.program, problem.function_set)
            ]
            verified = [
                (mdl(c), c, stamp)
                for c, stamp in state.run(self.verify.programs(problem, forms, budget.remaining))
                if math.isfinite(c.loss) and (beats_mean(c.loss) or not beats_mean(node.loss))
            ]
            if not verified:
                break
            value, cand, stamp = min(verified, key=lambda v: v[0])
            if value >= current:
                break
            node, current = Node(cand, node, self.score(cand, state.floor), stamp), value
            c = cand.program.complexity
            if c not in front or cand.loss < front[c].loss:
                front[c] = node
        return node

    def _choose(self, state: SolveState, front: dict[int, Node], tol: float) -> Node:
        """The Pareto row that the selection criterion prefers."""
        rows = self._front(state, front, tol)
        nodes = {n.program.key: n for n in _pareto(front)}
        values = np.array([r.criterion for r in rows])
        return nodes[rows[select(self.select, values, [r.loss for r in rows])].program.key]

    def _front(
        self, state: SolveState, front: dict[int, Node], tol: float, keep: Program | None = None
    ) -> list[FrontRow]:
        """The Pareto front as the result reports it: each function once, at its smallest
        complexity (``keep``, the chosen program, stands for its own), with its criterion value
        and its loss on the validation split, if there is one."""
        rows, problem = _pareto(front), state.problem
        with np.errstate(all="ignore"):
            predictions = [np.broadcast_to(evaluate(n.program, problem.X), problem.y.shape) for n in rows]
        keys = [n.program.key for n in rows]
        kept = keys.index(keep.key) if keep is not None and keep.key in keys else None
        rows = [rows[i] for i in distinct(predictions, float(np.std(problem.y)), kept)]
        validation = [_validation_loss(problem, n.program) for n in rows] if problem.validation else None
        values = criterion_values(
            self.select,
            [n.program.complexity for n in rows],
            [n.loss for n in rows],
            len(problem.y),
            len(problem.function_set.tokens),
            [len(n.program.consts) for n in rows],
            tol,
            validation,
        )
        return [
            FrontRow(n.program.complexity, n.loss, n.program, float(v), None if validation is None else val)
            for n, v, val in zip(rows, values, validation or [None] * len(rows), strict=True)
        ]


def _root(node: Node) -> Node:
    while node.parent is not None:
        node = node.parent
    return node


def _trace(node: Node) -> list[TraceStep]:
    path = []
    while node.parent is not None:
        path.append(node)
        node = node.parent
    steps: list[TraceStep] = []
    for n in reversed(path):
        edits = n.cand.edits
        if edits is None:  # a whole-subtree replacement: its edits are derived now
            edits = tuple(edit_path(n.parent.program, n.program))
        for k, e in enumerate(edits):
            after = n.loss if k == len(edits) - 1 else math.nan
            steps.append(TraceStep(e, n.cand.stage, n.cand.reason, n.parent.loss, after))
    return steps


def _pareto(front: dict[int, Node]) -> list[Node]:
    """Nodes of the front where a larger program must have a strictly lower loss."""
    rows, best = [], math.inf
    for c in sorted(front):
        n = front[c]
        if n.loss < best:
            rows.append(n)
            best = n.loss
    return rows


def _validation_loss(problem: Problem, program: Program) -> float:
    """NMSE on the held-out split (inf where the program is not finite there)."""
    X, y = problem.validation
    with np.errstate(all="ignore"):
        loss = float(nmse(np.broadcast_to(evaluate(program, X), y.shape), y)[0])
    return loss if math.isfinite(loss) else math.inf
