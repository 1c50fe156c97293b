"""Sub-goal: at a node, find the value it must produce, then a subtree that produces it.

The exact inverse of the operators above a node (or samples of the reverse flow where there
is none) gives the output z* that the node must have for the whole program to output y, so
finding its subtree becomes a lookup by value instead of a search. A library of small
programs (:mod:`pipelines.search.library`), enumerated per solve on the task's x as the search asks
for it, is searched for z*: directly (nearest output), and as ``A op B`` with A and B both
from the library (meet in the middle), which reaches subtrees twice the library's size in
one step. At the root, a z* that neither meets is decomposed level by level
(:mod:`pipelines.search.decompose`).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

import numpy as np

from flows.encoders import MAX_VARS
from pipelines.search.budget import Budget
from pipelines.search.decompose import BRANCHES, decompose
from pipelines.search.library import Library, unary_preimage
from pipelines.search.problem import Problem
from pipelines.search.stages import SubgoalOffer
from pipelines.search.verify import Candidate
from simulator.enumerate import iter_programs
from simulator.inverse import exact_inverse
from simulator.language import CONST
from simulator.program import Program

# The points a sub-goal session works on, at most (a fixed draw from the task's).
SUBGOAL_POINTS = 128


class NoSubgoal:
    """Stand-in: no whole-subtree candidates."""

    name = "none"

    def start(self, problem: Problem) -> NoSubgoal:
        return self

    def wants_call(self, budget: Budget) -> bool:
        return False

    def candidates(
        self, program: Program, budget: Budget, location_scores: np.ndarray | None = None
    ) -> SubgoalOffer:
        return SubgoalOffer()


class LibrarySubgoal:
    """Sub-goal stage: inverse targets at each location, matched against a small library.

    ``max_size`` and ``max_entries`` bound the library; each entry costs one simulator
    call, so it is built on demand: ``first_entries`` programs at the stage's first call,
    then ``growth`` times as many whenever the library has cost at most ``pace`` times the
    calls of the rest of the search, in the order of the recognition model (below), until
    ``max_entries`` or every program up to ``max_size`` nodes. A task met by edits, or by
    a small library, never pays for a large one, and a task that needs a large one gets it
    after about 1 + 1/``pace`` times its cost.
    ``max_locations`` caps how many nodes of a program are tried besides the root.
    ``reverse_flow``, a checkpoint path, samples targets where no exact inverse exists.
    At the root, targets that no lookup or split meets are decomposed
    (:func:`pipelines.search.decompose.decompose`): one of the first ``recurse_left`` entries peeled
    off per level, up to ``recurse_depth`` levels, ``recurse_pops`` remainders matched, in the
    order of the ``decomposer`` (a decomposition-policy checkpoint) or, without one, in
    library order; with ``recurse_unary`` the unary operators are peeled too, and where one is
    not one-to-one its ``branches`` come from the operator's record (``"operator"``), the reverse
    flow's draws (``"reverse_flow"``) or nowhere (``"principal"``).
    ``recognizer``, a recognition-model checkpoint (:mod:`flows.recognition`), decides the
    order the library grows in: programs made of the tokens the data suggest come first;
    without one, the smallest programs do. Until the library holds ``foothold_entries``
    programs (or all there are), it offers only exact whole programs: approximate footholds
    from a small library would pull the edit search off its path.

    The stage holds settings only; :meth:`start` gives each solve its own session, so a
    library is never built on one task's X and served on another's.
    """

    name = "library"

    def __init__(
        self,
        max_size: int = 7,
        max_entries: int = 20_000,
        max_locations: int = 4,
        nearest: int = 2,
        split_left: int = 3_000,
        local_split_left: int = 1_000,
        split_limit: int = 32,
        depth: int = 1,
        recurse_left: int = 12,
        recurse_split_left: int = 600,
        recurse_depth: int = 3,
        recurse_pops: int = 300,
        recurse_limit: int = 8,
        decomposer: str | None = None,
        recognizer: str | None = None,
        first_entries: int = 128,
        growth: float = 2.0,
        pace: float = 2.0,
        foothold_entries: int = 2_048,
        linear_pool: int = 24,
        affine_left: int = 150,
        reverse_flow: str | None = None,
        recurse_unary: bool = True,
        branches: str = "operator",
    ):
        if branches not in BRANCHES:
            raise ValueError(f"branches must be one of {', '.join(BRANCHES)}; got {branches!r}")
        if branches == "reverse_flow" and reverse_flow is None:
            raise ValueError("branches='reverse_flow' needs a reverse_flow checkpoint")
        self.recurse_unary = bool(recurse_unary)
        self.branches = branches
        if first_entries < 1 or growth <= 1 or pace <= 0:
            raise ValueError(
                f"first_entries must be >= 1, growth > 1 and pace > 0; got {first_entries}, {growth}, {pace}"
            )
        self.first_entries = int(first_entries)
        self.growth = float(growth)
        self.pace = float(pace)
        self.foothold_entries = int(foothold_entries)
        self.linear_pool = linear_pool
        self.affine_left = affine_left
        self.max_size = max_size
        self.max_entries = max_entries
        self.max_locations = max_locations
        self.nearest = nearest
        self.split_left = split_left
        self.local_split_left = local_split_left
        self.split_limit = split_limit
        self.depth = depth
        self.recurse_left = recurse_left
        self.recurse_split_left = recurse_split_left
        self.recurse_depth = recurse_depth
        self.recurse_pops = recurse_pops
        self.recurse_limit = recurse_limit
        self.decomposer = decomposer
        self.recognizer = recognizer
        self.reverse_flow = reverse_flow

    def start(self, problem: Problem) -> LibrarySession:
        return LibrarySession(self, problem)


class LibrarySession:
    """One solve's library: built on that solve's X, grown as its budget allows.

    The session sees at most ``SUBGOAL_POINTS`` of the points: an exact match on a hundred
    points is as good a filter as on thousands, every candidate it offers is verified on
    all of them, and the library's memory and every lookup's cost grow with the points.
    """

    def __init__(self, stage: LibrarySubgoal, problem: Problem):
        self.stage = stage
        self.problem = problem.rows(SUBGOAL_POINTS)
        self.library: Library | None = None
        self.complete = False  # every program up to max_size is in the library
        self._programs: list[Program] = []  # enumerated so far, in the order they came (all paid)
        self._outputs: list[np.ndarray] = []
        self._source: Iterator[tuple[Program, np.ndarray]] | None = None
        self._root: list[Program] | None = None
        self._decomposed: dict = {}  # the root's decomposition steps, scored once for every growth
        self._reverse = None
        if stage.reverse_flow is not None:
            from flows.checkpoint import load_pretrained
            from flows.reverse_flow import ReverseFlow

            self._reverse = load_pretrained(ReverseFlow, stage.reverse_flow)
        self._decomposer = None
        if stage.decomposer is not None and problem.X.shape[1] <= MAX_VARS:
            from flows.checkpoint import load_pretrained
            from flows.decomposition_policy import DecompositionPolicy

            self._decomposer = load_pretrained(DecompositionPolicy, stage.decomposer)
        self._costs: dict[str, int] | None = None
        if stage.recognizer is not None and problem.X.shape[1] <= MAX_VARS:
            from flows.checkpoint import load_pretrained
            from flows.recognition import Recognition, token_costs

            X, y = self.problem.model_data
            try:
                probabilities = load_pretrained(Recognition, stage.recognizer).probabilities(
                    self.problem.function_set, X, y
                )
                self._costs = token_costs(probabilities)
            except ValueError:  # a token outside the model's vocabulary: smallest first, as plain
                pass

    @property
    def enumerated(self) -> int:
        """Programs enumerated (and paid for) so far; the library keeps those of moderate size."""
        return len(self._programs)

    def wants_call(self, budget: Budget) -> bool:
        """Whether the library is due to grow: it has cost at most ``pace`` times the calls of
        the rest of the search (the planner then calls the stage, whatever its share)."""
        have = self.enumerated
        return not self.complete and have <= self.stage.pace * (budget.calls - have)

    def grow(self, budget: Budget) -> int:
        """Enlarge the library by its growth factor (the first call builds ``first_entries``)
        when it is due (:meth:`wants_call`), up to its cap; returns the simulator calls this
        cost: one per new program."""
        st = self.stage
        cap = max(min(st.max_entries, budget.max_calls // 4), 1)
        if not self.wants_call(budget):
            return 0
        have = self.enumerated
        want = min(cap, st.first_entries if not have else int(np.ceil(have * st.growth)))
        if self._source is None:
            fs, X = self.problem.function_set, self.problem.X
            self._source = iter_programs(fs, X, st.max_size, self._costs)
        for program, y in islice(self._source, want - have):
            self._programs.append(program)
            self._outputs.append(y)
        new = len(self._programs) - have
        self.complete = len(self._programs) < want or len(self._programs) >= cap
        # the library lists them smallest first, whatever order they came in
        order = np.argsort([len(p.tokens) for p in self._programs], kind="stable")
        outputs = np.array(self._outputs).reshape(len(self._programs), self.problem.X.shape[0])
        self.library = Library([self._programs[j] for j in order], outputs[order], self.problem.X)
        self._root = None
        return new

    def targets(self, program: Program, loc: int) -> list[tuple[np.ndarray, str]]:
        """Values node ``loc`` must produce: the exact inverse, else reverse-flow samples."""
        problem = self.problem
        if loc == 0:
            return [(problem.y, "the data")]
        z = exact_inverse(program, loc, problem.X, problem.y)
        if z is not None and np.isfinite(z).all():
            return [(z, "exact inverse")]
        if self._reverse is not None:
            try:
                samples = self._reverse.sample_hole(program, loc, problem.X, problem.y, 4)
            except (AssertionError, RuntimeError, ValueError):  # the flow cannot sample here
                return []
            return [(s, "reverse-flow sample") for s in samples if np.isfinite(s).all()]
        return []

    def solve_target(
        self, lib: Library, target: np.ndarray, depth: int, exact_only: bool = False
    ) -> list[Program]:
        """Programs whose output equals ``target``: lookups, splits, and (``depth`` > 0) one
        more level of splitting with a small left operand. Unless ``exact_only``, the
        nearest entries and the best one-term fit come too, as approximate footholds."""
        st, fs = self.stage, self.problem.function_set
        nearest = 0 if exact_only else st.nearest
        found = [p for _, p in lib.match(target[None, :], fs.unary)]
        if nearest:
            found += [lib.programs[j] for j in lib.nearest(target, nearest)]
        if fs.has_const and {"add", "mul"} <= set(fs.binary):  # c1*L1 + ... + c0 needs both
            pool = st.linear_pool if depth > 0 else 8
            found += lib.linear_fits(target, pool=pool, exact_only=exact_only)
            if depth > 0:  # constants inside an outer operator: u(c1*L1 + ... + c0)
                with np.errstate(all="ignore"):
                    for u in fs.unary:
                        inner = unary_preimage(u, target)
                        if np.isfinite(inner).all():
                            found += [
                                Program((u, *p.tokens), p.consts)
                                for p in lib.linear_fits(inner, pool=pool // 2, exact_only=exact_only)
                            ]
        left = st.split_left if depth > 0 else st.local_split_left
        found += lib.split(target, fs.binary, fs.unary, left)[: st.split_limit]
        if depth > 0:  # the outer operator inverted first: u(op(A, B)) = target
            with np.errstate(all="ignore"):
                for u in fs.unary:
                    inner = unary_preimage(u, target)
                    if np.isfinite(inner).all():
                        found += [Program((u, *p.tokens)) for p in lib.split(inner, fs.binary, (), left)[:4]]
        if depth > 0 and fs.has_const and "add" in fs.binary and "mul" in fs.binary:
            found += lib.affine_split(target, fs.binary, fs.unary, st.affine_left)
        if len(found) > nearest and depth == st.depth:
            return found  # exact matches at the top: no need to recurse
        if depth > 0:  # peel small siblings off, level after level (pipelines/search/decompose.py)
            found += decompose(
                lib,
                target,
                fs.binary,
                policy=self._decomposer,
                rows=self.problem.model_rows,
                depth=st.recurse_depth,
                pops=st.recurse_pops,
                siblings=st.recurse_left,
                left=st.recurse_split_left,
                limit=st.recurse_limit,
                memo=self._decomposed,
                unary=fs.unary if st.recurse_unary else (),
                branches=st.branches,
                reverse=self._reverse,
            ).programs
        return found

    def candidates(
        self, program: Program, budget: Budget, location_scores: np.ndarray | None = None
    ) -> SubgoalOffer:
        """Whole-subtree replacements at the root and at the best-scored other locations.

        Each call grows the library first, when it is due (the planner calls the stage while
        it is within its share of the work, and whenever the library is due to grow). While the
        library is small, only exact whole programs are
        offered: approximate footholds from it would pull the edit search off its path.
        """
        st = self.stage
        cost = self.grow(budget)
        lib = self.library
        if lib is None or not len(lib):
            return SubgoalOffer(calls=cost)
        scored_before = lib.scored
        small = len(lib) < st.foothold_entries and not self.complete
        scores = np.ones(len(program)) if location_scores is None else np.asarray(location_scores)
        others = [int(i) for i in np.argsort(-scores[1:], kind="stable") + 1 if program.tokens[i] != CONST]
        out: dict[str, Candidate] = {}
        for loc in [0] if small else [0, *others[: st.max_locations]]:
            for target, source in self.targets(program, loc):
                if loc == 0:
                    if self._root is None:
                        self._root = self.solve_target(lib, target, st.depth, exact_only=small)
                    subs = self._root
                else:
                    subs = self.solve_target(lib, target, 0)
                for sub in subs:
                    new = program.replace_subtree(loc, sub)
                    if new.key in out or new.key == program.key:
                        continue
                    reason = f"z* at node {loc} from {source}, matched by {sub}"
                    # edits=None: the path from the parent is derived only if the result uses it
                    out[new.key] = Candidate(new, np.inf, None, "subgoal", reason)
        return SubgoalOffer(list(out.values()), calls=cost, scored=lib.scored - scored_before)
