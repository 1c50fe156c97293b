"""The planner: best-first search over programs, one verified edit at a time.

Each expansion asks the stages in turn: locate (where), propose (which edit), screen
(which to run), sub-goal (whole replacement subtrees), verify (the simulator). Start
providers (:mod:`pipelines.search.starts`) add whole programs found another way, each once the
search has found the task hard enough. Children are de-duplicated by canonical key, a Pareto
front of complexity against loss is kept, and the search stops at the recovery tolerance or
when the budget is spent; the finisher (:mod:`pipelines.search.finish`) chooses and reports.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from pipelines.search.budget import Budget
from pipelines.search.finish import finish, finish_reserve
from pipelines.search.locate import UniformLocate
from pipelines.search.noise import estimate_noise
from pipelines.search.problem import Problem
from pipelines.search.propose import UniformPropose
from pipelines.search.result import Result
from pipelines.search.screen import NoScreen
from pipelines.search.selection import check_criterion
from pipelines.search.settings import PlannerSettings
from pipelines.search.stages import Locate, Propose, Screen, Subgoal, SubgoalSession
from pipelines.search.starts import (
    SEPARATE_SHARE,
    LeafStarts,
    LinearStarts,
    ProductStarts,
    ShapeStarts,
    SplitStarts,
    StartProvider,
)
from pipelines.search.subgoal import NoSubgoal
from pipelines.search.types import Candidate, Node, Verified
from pipelines.search.verify import Verify
from simulator.edits import Edit, legal_edits
from simulator.program import Program

Progress = Callable[[Budget, Node], None]
OnExpand = Callable[["Expansion"], None]
# The stop reason when a program reaches the tolerance: an exact fit of the training data.
# Whether it is the true law is for a ground truth to say (the recovery check), not the search.
EXACT_FIT = "exact fit"
# The stop reason on noisy data: a program reached the estimated noise floor (pipelines/search/noise.py).
NOISE_FLOOR = "noise floor reached"
# The law's own loss on noisy data scatters around the estimated floor (the estimate is from
# a few points, and fitted constants absorb a little noise): within this factor counts.
FLOOR_SLACK = 1.5
# A noisy hit is often a start (a rational or shape fit) met within a few hundred calls: the
# search then goes on for at least this many polish windows before it stops, so that the
# law, if it is another program, has time to be found and compared by description length.
NOISY_POLISH = 4
# The sub-goal stage's share of the search is counted in work, not seconds, so that a seed
# gives the same search everywhere: its calls plus its lookups at this many to a call (fewer
# lookups to a call: the stage is asked less often). On the development suite, with two runs
# sharing two cores, the median run that did not recover ran at 2,464 calls/s at 1e6 lookups
# to a call and 3,534 at 5e5; at 1.5e5 the stage takes a smaller share than half the seconds.
SCORED_PER_CALL = 150_000


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
    """Everything one solve owns: the budget, the random stream, the stages' sessions, the
    frontier and the front.

    The planner makes a fresh one per ``search``, so a planner (and its pipeline) can be
    reused for any number of solves, in any order.
    """

    problem: Problem
    budget: Budget
    seed: int
    rng: np.random.Generator
    subgoal: SubgoalSession
    verifier: Verify
    score: Callable[[Candidate], float]  # the search score of a candidate (lower first)
    tol: float  # the exact-fit bar (const_tol with fitted constants)
    floor: float = 0.0  # the data's estimated noise floor (NMSE); 0 for exact data
    max_size: int = 30
    on_expand: OnExpand | None = None
    progress: Progress | None = None
    edit_work: int = 0  # simulator calls spent running edits
    subgoal_work: float = 0.0  # the sub-goal stage's calls plus its lookups (SCORED_PER_CALL to a call)
    frontier: list[tuple[float, int, Node]] = field(default_factory=list)
    waiting: list[tuple[float, int, Node, np.ndarray]] = field(
        default_factory=list
    )  # sub-goals not yet asked
    seen: set[str] = field(default_factory=set)
    front: dict[int, Node] = field(default_factory=dict)  # the lowest loss at each complexity
    history: list[tuple[int, float]] = field(default_factory=list)  # (calls, loss) of each new best
    best: Node | None = None
    polish_until: tuple[int, float] | None = None  # (calls, seconds) after the first hit
    noisy: bool = False  # the best program meets the noise floor but fits inexactly
    memo: dict[str, Any] = field(default_factory=dict)  # what start providers share in one solve
    tie: itertools.count = field(default_factory=itertools.count)
    allowed: frozenset[str] = frozenset()  # the task's tokens: a program with any other is never kept
    distinct: int = field(init=False, default=0)  # the data's distinct points (from the problem)
    # with units, the front and the best hold only dimensionally consistent programs; this
    # front holds every program, for when none is consistent (:func:`pipelines.search.finish.finish`)
    unchecked: dict[int, Node] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.allowed = frozenset(self.problem.function_set.tokens)
        self.distinct = len(np.unique(self.problem.X, axis=0))

    def identifiable(self, program: Program) -> bool:
        """Whether the data can judge the program: fewer fitted constants than distinct points.
        With as many, a program fits any such points (eight constants fit eight noisy points
        exactly), so its loss says nothing: it is searched through, never put on the front."""
        return len(program.consts) < self.distinct

    def consistent(self, program: Program) -> bool:
        """Whether the program may be chosen: dimensionally consistent with the data's units
        (always, without units). Asked only of a program about to join the front or lead it."""
        units = self.problem.units
        return units is None or units.check(program) is not None

    @property
    def bar(self) -> float:
        """A program this good ends the search (after the polish)."""
        return max(self.tol, FLOOR_SLACK * self.floor)

    @property
    def noise_slack(self) -> float:
        """The loss noisy data allow a fit of the law (0 on exact data)."""
        return FLOOR_SLACK * self.floor

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

    def verify(self, candidates: list[Candidate]) -> list[tuple[Candidate, int]]:
        """Whole programs run (constants fitted) and charged, each with its stamp."""
        return self.run(self.verifier.programs(self.problem, candidates, self.budget.remaining))

    def admit(self, cand: Candidate, parent: Node | None, stamp: int) -> Node | None:
        """Put a verified candidate on the frontier and the front; None when it is seen
        already, uses a token the task does not allow, or is bloat."""
        key = cand.program.key
        if key in self.seen or not self.allowed.issuperset(cand.program.tokens):
            return None
        self.seen.add(key)
        bar = self.bar
        if cand.program.complexity > self.max_size and cand.loss > bar:
            return None  # no bloat: a sub-goal replacement past the size cap joins only if exact
        node = Node(cand, parent, self.score(cand), stamp)
        heapq.heappush(self.frontier, (node.score, next(self.tie), node))
        self._place(node)
        best = self.best
        if best is None or node.score < best.score or (cand.loss <= bar and best.loss > bar):
            if self.consistent(cand.program) and self.identifiable(cand.program):  # else searched through
                self.best = node
                self.history.append((stamp, cand.loss))
        return node

    def _place(self, node: Node) -> None:
        """The node takes its size's place on the front if it fits better and is identifiable
        (and, with units, is consistent)."""
        c, loss = node.program.complexity, node.loss
        if not self.identifiable(node.program):
            return
        if self.problem.units is not None and (c not in self.unchecked or loss < self.unchecked[c].loss):
            self.unchecked[c] = node
        if (c not in self.front or loss < self.front[c].loss) and self.consistent(node.program):
            self.front[c] = node

    def remember(self, cand: Candidate, stamp: int) -> None:
        """Put a verified candidate on the front only, not the frontier: a fit the final
        choice should weigh but the search should not build on."""
        if not self.allowed.issuperset(cand.program.tokens) or cand.program.complexity > self.max_size:
            return
        self._place(Node(cand, None, self.score(cand), stamp))

    def admit_all(self, children: list[tuple[Candidate, int]], parent: Node | None = None) -> None:
        for cand, stamp in children:
            self.admit(cand, parent, stamp)


class Planner:
    """Best-first search under a budget of simulator calls and seconds.

    The stages are objects (:mod:`pipelines.search.stages`); the settings are one frozen
    :class:`pipelines.search.settings.PlannerSettings` (keyword arguments change a copy of it).

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
    from the data, :func:`pipelines.search.noise.noise_floor`; 0: exact data). Losses below it
    count as the floor in the search score, so near-fits that chase the noise earn nothing
    over smaller programs. Once a program is within ``FLOOR_SLACK`` of it, the search goes
    on, unrestricted, for as many calls and seconds again as it took (at least the polish),
    then stops ("noise floor reached"). ``select`` names how the result is chosen from
    the Pareto front (:mod:`pipelines.search.selection`).

    ``separate``: split the task into parts on fewer variables (:mod:`pipelines.search.separate`):
    power-law factors peeled off (a product of powers alone before the search starts), a
    sum of parts on disjoint variables, or two variables seen only through their difference
    or ratio, each part solved by a sub-search with its own share
    of the budget once the search has found the task hard; the recombined program joins the
    search as a start.

    ``shapes``: once the search has spent ``SHAPES_AFTER`` calls without a hit, fit whole
    programs ``a + b*u(c*L + d)`` and products of two such factors (:mod:`pipelines.search.shapes`),
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
        settings: PlannerSettings | None = None,
        **changes: Any,
    ):
        self.locate = locate or UniformLocate()
        self.propose = propose or UniformPropose()
        self.screen = screen or NoScreen()
        self.subgoal = subgoal or NoSubgoal()
        self.verify = verify or Verify()
        self.settings = (settings or PlannerSettings()).replace(**changes)

    @property
    def starts(self) -> list[StartProvider]:
        """The start providers the settings turn on. Products of powers come before the
        search; later ones are listed in the order they are asked when several are due."""
        s = self.settings
        return [
            LeafStarts(),
            *([ProductStarts(), SplitStarts()] if s.separate else []),
            *([LinearStarts()] if s.linear else []),
            *([ShapeStarts()] if s.shapes else []),
        ]

    def score(self, cand: Candidate, floor: float = 0.0) -> float:
        """Lower is better: log-error (no better than the noise floor), the learned distance to
        the goal (if any), and size."""
        s = self.settings
        return (
            math.log10(max(cand.loss, floor) + 1e-16)
            + s.similarity_weight * cand.distance
            + s.parsimony * cand.program.complexity
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
        s = self.settings
        check_criterion(s.select, has_validation=problem.validation is not None)
        estimate = (
            estimate_noise(problem.X, problem.y, seed, s.noise_cap) if s.noise_floor == "auto" else None
        )
        floor = float(estimate.floor if estimate is not None else s.noise_floor)
        state = self.solve_state(
            problem,
            Budget(max_calls, max_seconds, reserve=finish_reserve(max_calls)),
            seed,
            floor,
            progress,
            on_expand,
        )
        pending = [p for p in self.starts if p.applies(problem)]
        stopped = ""
        try:
            for provider in [p for p in pending if p.after == 0]:  # before any search
                state.admit_all(provider.starts(self, state))
            pending = sorted((p for p in pending if p.after > 0), key=lambda p: -p.after)
            while state.frontier and not stopped:
                stopped = self._stop(state)
                if stopped:
                    break
                # polishing an exact hit looks only for smaller programs; a noisy hit's polish
                # is an unrestricted search, so the providers not yet asked are still asked
                open_search = state.polish_until is None or state.noisy
                due = [p for p in pending if state.budget.calls >= p.after and open_search]
                if due:  # one provider at a time, so that a hit it finds stops the search
                    pending.remove(due[0])
                    state.admit_all(due[0].starts(self, state))
                    continue
                self._step(state)
                if progress is not None and state.best is not None:
                    progress(state.budget, state.best)
            if not stopped:
                if state.best is not None and state.best.loss <= state.bar:
                    stopped = EXACT_FIT if state.best.loss <= state.tol else NOISE_FLOOR
                else:
                    stopped = "exhausted search"
        except KeyboardInterrupt:
            stopped = "interrupted"
        return finish(state, s.select, stopped, estimate, snap=s.snap)

    def solve_state(
        self,
        problem: Problem,
        budget: Budget,
        seed: int = 0,
        floor: float = 0.0,
        progress: Progress | None = None,
        on_expand: OnExpand | None = None,
    ) -> SolveState:
        """A fresh state for one solve of ``problem`` (``floor``: its noise floor, NMSE)."""
        s = self.settings
        return SolveState(
            problem,
            budget,
            seed,
            np.random.default_rng(seed),
            self.subgoal.start(problem),
            self.verify,
            lambda cand: self.score(cand, floor),
            s.const_tol if problem.function_set.has_const else s.tol,
            floor,
            s.max_size,
            on_expand,
            progress,
        )

    def _stop(self, state: SolveState) -> str:
        """Why the search stops now ("" to go on): an exact fit (after the polish, with
        fitted constants), the noise floor met (after the longer noisy polish), or the budget.
        """
        best, budget, s = state.best, state.budget, self.settings
        if best is not None and best.loss <= state.bar:
            state.noisy = noisy = best.loss > state.tol
            if not state.problem.function_set.has_const and not noisy:
                return EXACT_FIT
            if state.polish_until is None:
                # A noisy hit may be a look-alike of the law that the search met first: the
                # search goes on, unrestricted, as long again as it took (at least the
                # polish), in calls and in seconds, before it stops.
                windows, again = (NOISY_POLISH, 1) if noisy else (1, 0)
                state.polish_until = (
                    budget.calls + max(s.polish_calls * windows, budget.calls * again),
                    budget.elapsed + max(s.polish_seconds * windows, budget.elapsed * again),
                )
            spent = (budget.calls >= state.polish_until[0], budget.elapsed >= state.polish_until[1])
            if all(spent) if noisy else any(spent):
                return NOISE_FLOOR if noisy else EXACT_FIT
        return budget.exhausted() or ""

    def _step(self, state: SolveState) -> None:
        """Expand the best node on the frontier: its edits run, then (within the sub-goal
        stage's share) sub-goals for the best expanded node still waiting for them. While
        polishing an exact hit, only nodes that could lead to a smaller exact program count."""
        _, _, node = heapq.heappop(state.frontier)
        polishing = state.polish_until is not None and not state.noisy
        if polishing:
            smallest = min(n.program.complexity for n in state.front.values() if n.loss <= state.bar)
            c = node.program.complexity
            if c > smallest or (c == smallest and node.loss > state.bar):
                return  # polishing looks only for smaller programs that meet the bar
        children, loc = self.edit_children(state, node)
        state.admit_all(children, node)
        if not polishing:
            heapq.heappush(state.waiting, (node.score, next(state.tie), node, loc))
            if state.subgoals_due(self.settings.subgoal_share) or state.subgoal.wants_call(state.budget):
                _, _, target, target_loc = heapq.heappop(state.waiting)
                state.admit_all(self._subgoal_children(state, target.program, target_loc), target)

    def edit_children(self, state: SolveState, node: Node) -> tuple[list[tuple[Candidate, int]], np.ndarray]:
        """The node's verified one-edit children, and the locate stage's scores of its nodes.

        With ``verify_all`` every legal edit is run in one vectorised pass; the children kept
        are the best half of ``width`` by loss and the proposal's top half (the other runs
        are counted and dropped). Otherwise the proposal's top ``width`` that pass the screen
        are run, and all are kept.
        """
        problem, budget, program, width = state.problem, state.budget, node.program, self.settings.width
        edits = legal_edits(program, problem.function_set, self.settings.max_size)
        loc = self.locate.scores(problem, program)
        if not edits:
            return [], loc
        logp = self.propose.log_scores(problem, program, edits)
        logp = logp + np.log(loc[[e.loc for e in edits]])
        order = np.argsort(-(logp + state.rng.gumbel(size=len(logp))))
        if self.settings.verify_all:
            half = None if width is None else max(width // 2, 1)
            picks = order[:half]
            reasons = [f"one of the {half} lowest losses of {len(edits)} edits run"] * len(edits)
            for i in picks:
                reasons[i] = f"{self.propose.name} log-score {logp[i]:.2f}, {self.locate.name} location"
            keep = None if half is None else (lambda loss: np.union1d(picks, np.argsort(loss)[:half]))
            verified = self.verify.edits(problem, program, edits, "propose", reasons, budget.remaining, keep)
            proposed, run = picks, np.arange(len(edits))
        else:
            proposed = order if width is None else order[:width]
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
        self, state: SolveState, program: Program, loc: np.ndarray
    ) -> list[tuple[Candidate, int]]:
        """Whole-subtree replacements from the sub-goal stage, verified; what the stage spent
        is added to its work, since the search gives it only a share (``subgoal_share``)."""
        budget = state.budget
        calls, scored = budget.calls, budget.scored
        offer = state.subgoal.candidates(program, budget, loc)
        budget.charge(offer.calls, scored=offer.scored)
        children = state.verify([c for c in offer.candidates if c.program.key not in state.seen])
        state.subgoal_work += budget.calls - calls + (budget.scored - scored) / SCORED_PER_CALL
        return children

    def sub_solve(self, state: SolveState, X: np.ndarray, target: np.ndarray) -> Program | None:
        """The program a sub-search finds for ``target`` on the inputs ``X`` (fewer variables
        than the task's), within ``SEPARATE_SHARE`` of what is left of the budget; None when
        too little is left. Its calls, fit passes and candidates scored are charged."""
        budget = state.budget
        calls = int(budget.remaining * SEPARATE_SHARE)
        seconds = (budget.max_seconds - budget.elapsed) * SEPARATE_SHARE
        if calls < 1 or seconds <= 0 or not (np.isfinite(target).all() and np.isfinite(X).all()):
            return None
        fs = state.problem.function_set.with_vars(X.shape[1])
        progress = None
        if state.progress is not None:  # the sub-search's calls, counted on top of this solve's
            progress = lambda b, node: state.progress(replace(b, calls=budget.calls + b.calls), node)  # noqa: E731
        # A part has no held-out split of its own, and its constants are snapped, if at all,
        # in the recombined program: the part's fitted values are what the recombination fits.
        changes = {"select": "auto"} if self.settings.select == "validation" else {}
        changes.update({"snap": False} if self.settings.snap else {})
        planner = self
        if changes:
            planner = Planner(
                self.locate, self.propose, self.screen, self.subgoal, self.verify, self.settings, **changes
            )
        found = planner.search(Problem(X, target, fs), calls, seconds, state.seed, progress)
        budget.charge(found.calls, found.fit_passes, found.candidates_scored)
        return found.program
