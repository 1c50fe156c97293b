"""Sub-goal: at a node, find the value it must produce, then a subtree that produces it.

Memory mapping and recursion (the seed's section 2.1 and 5.1): the exact inverse of the
operators above a node (or samples of the reverse flow where there is none) gives the
output z* that the node must have for the whole program to output y. A library of small
programs, enumerated per solve on the task's x as the search asks for it, is searched for
z*: directly (nearest output), and as ``A op B`` with A and B both from the library (meet in
the middle), which reaches subtrees twice the library's size in one step.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from itertools import islice

import numpy as np

from flows.encoders import MAX_VARS
from flows.inverse import exact_inverse, split_solvers
from pipelines.budget import Budget
from pipelines.decompose import BRANCHES, decompose
from pipelines.linear import subset_fits
from pipelines.problem import Problem
from pipelines.stages import SubgoalOffer
from pipelines.verify import Candidate
from simulator.enumerate import iter_programs
from simulator.execute import node_values
from simulator.language import CONST, arity
from simulator.operators import OPERATORS
from simulator.program import Program

# The points a sub-goal session works on, at most (a fixed draw from the task's).
SUBGOAL_POINTS = 128


def unary_preimage(u: str, z: np.ndarray) -> np.ndarray:
    """The B with ``u(B) = z`` on u's principal branch (NaN outside u's range)."""
    return OPERATORS[u].inverse(z)[0]


class Library:
    """Small programs enumerated on the task's X, with their outputs, for lookup by value.

    Exact lookups project each output on a fixed random direction and binary-search the
    sorted projections, so thousands of targets are matched in a few vectorised calls.
    """

    def __init__(self, programs: list[Program], outputs: np.ndarray, X: np.ndarray, tol: float = 1e-9):
        with np.errstate(all="ignore"):
            small = np.abs(outputs).max(axis=1) < 1e6 if len(programs) else np.zeros(0, bool)
        self.programs = [p for p, s in zip(programs, small) if s]
        self.outputs = outputs[small]
        self.position = {p.tokens: j for j, p in enumerate(self.programs)}
        arithmetic = {"add", "sub", "mul", "div"}
        self.rational_limit = 5_000
        self.rational = [all(t in arithmetic or arity(t) == 0 for t in p.tokens) for p in self.programs]
        self.X = X
        self.tol = tol
        n = outputs.shape[1] if outputs.ndim == 2 else 0
        self.direction = np.random.default_rng(12345).normal(size=n)
        self.direction_norm = float(np.linalg.norm(self.direction))
        # Candidates scored without a simulator call: a lookup decides, for every entry, whether
        # it equals the target, so it scores len(self) candidates per target row.
        self.scored = 0
        keys = self.outputs @ self.direction
        self.order = np.argsort(keys)
        self.keys = keys[self.order]

    def __len__(self) -> int:
        return len(self.programs)

    @cached_property
    def centered(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each output minus its mean, its norm, and whether it is not a constant: the shapes
        that affine fits (``c1*L + c0``) compare, computed once per library."""
        F = self.outputs - self.outputs.mean(axis=1, keepdims=True)
        norms = np.sqrt((F**2).sum(axis=1))
        return F, norms, norms > 1e-9 * (np.abs(self.outputs).max(axis=1) + 1e-300)

    def lookup(self, targets: np.ndarray) -> np.ndarray:
        """For each row of ``targets`` (m, n), the index of a library entry equal to it, or -1."""
        out = np.full(len(targets), -1)
        if len(self.programs) < 2 or not len(targets):
            return out
        with np.errstate(all="ignore"):
            ok = np.isfinite(targets).all(axis=1)
            self.scored += int(ok.sum()) * len(self.programs)
            s = targets @ self.direction
            power = np.mean(targets**2, axis=1) + 1e-12
            # An entry within tol has |key - s| <= |entry - target| * |direction|: only rows
            # whose neighbour's key is that close are compared point by point.
            reach = 1.01 * np.sqrt(self.tol * power * targets.shape[1]) * self.direction_norm
            pos = np.clip(np.searchsorted(self.keys, s), 1, len(self.keys) - 1)
            for shift in (-1, 0):
                rows = np.flatnonzero(ok & (out < 0) & (np.abs(self.keys[pos + shift] - s) <= reach))
                if not len(rows):
                    continue
                j = self.order[pos[rows] + shift]
                err = np.mean((self.outputs[j] - targets[rows]) ** 2, axis=1) / power[rows]
                hit = err < self.tol
                out[rows[hit]] = j[hit]
        return out

    def nearest(self, target: np.ndarray, k: int) -> list[int]:
        """The ``k`` entries closest to ``target`` in relative squared error."""
        with np.errstate(all="ignore"):
            err = np.mean((self.outputs - target) ** 2, axis=1) / (np.mean(target**2) + 1e-12)
        err[~np.isfinite(err)] = np.inf
        self.scored += len(err)
        k = min(k, len(err))
        best = np.argpartition(err, k - 1)[:k]
        return [int(j) for j in sorted(best, key=lambda j: err[j]) if np.isfinite(err[j])]

    def match(self, targets: np.ndarray, unary: tuple[str, ...]) -> list[tuple[int, Program]]:
        """Rows of ``targets`` that equal a library entry L or ``u(L)``: (row, program) pairs."""
        m = len(targets)
        with np.errstate(all="ignore"):  # one lookup for the targets and all their preimages
            hits = self.lookup(np.concatenate([targets, *(unary_preimage(u, targets) for u in unary)]))
        found = []
        for k in np.flatnonzero(hits >= 0):
            block, row = divmod(int(k), m)
            tokens = self.programs[hits[k]].tokens
            found.append((row, Program(tokens if block == 0 else (unary[block - 1], *tokens))))
        return found

    @np.errstate(all="ignore")  # huge targets overflow the normal equations; those fits are NaN and dropped
    def linear_fits(
        self, target: np.ndarray, terms: int = 3, pool: int = 30, rational: int = 40, exact_only: bool = False
    ) -> list[Program]:
        """``c1*L1 + ... + ck*Lk + c0`` fits of ``target``, for sets with fitted constants.

        The library supplies the shapes, least squares the coefficients. Every subset of up
        to ``terms`` shapes from a pool is solved at once (batched normal equations): the
        pool holds the simplest shapes, the rational ones (arithmetic only), and those most
        correlated with the target and with the best one-term residual. Returns, for each
        k, every fit that is exact, and (unless ``exact_only``) the best one-term fit.
        """
        n = len(target)
        F, norms, usable = self.centered
        t = target - target.mean()
        corr = np.where(usable, np.abs(F @ t) / (norms + 1e-300), -1)
        best = int(np.argmax(corr))
        r1 = t - F[best] * (F[best] @ t) / (norms[best] ** 2)
        corr1 = np.where(usable, np.abs(F @ r1) / (norms + 1e-300), -1)
        simple = [j for j in np.flatnonzero(usable)[:pool]]
        rational_ids = [j for j in np.flatnonzero(usable[: self.rational_limit]) if self.rational[j]][
            :rational
        ]
        chosen: list[int] = []
        seen: set[bytes] = set()
        for j in [*simple, *rational_ids, *np.argsort(-corr)[:pool], *np.argsort(-corr1)[:pool]]:
            sig = np.round(F[j] / norms[j] * np.sign(F[j][np.argmax(np.abs(F[j]))]), 9).tobytes()
            if usable[j] and sig not in seen:  # shapes equal up to scale and shift count once
                seen.add(sig)
                chosen.append(int(j))
        D = F[chosen] / norms[chosen, None]
        G, b, tt = D @ D.T, D @ t, float(t @ t) + 1e-300
        out: list[Program] = []
        for k in range(1, min(terms, n - 2) + 1):
            fit = subset_fits(G, b, tt, k)
            if fit is None:
                continue
            subsets, rss = fit
            self.scored += len(subsets)
            order = np.argsort(rss)
            # The best one-term fit seeds the search; longer sums only when exact (checked
            # again by lstsq), since inexact many-term fits of smooth data reach 1e-14 and
            # crowd the search out.
            fits = [
                self._least_squares([chosen[j] for j in subsets[i]], target)
                for i in order[:8]
                if rss[i] < 1e-10
            ]
            exact = [p for p, res in fits if res < 1e-20]
            out += exact
            if k == 1 and not exact and not exact_only:
                out.append(self._least_squares([chosen[j] for j in subsets[order[0]]], target)[0])
        return out

    def affine_split(
        self, target: np.ndarray, binary: tuple[str, ...], unary: tuple[str, ...], left: int
    ) -> list[Program]:
        """Programs ``op(A, u(c1*L + c0))`` (and ``op(u(...), A)``) equal to ``target``: A among
        the first ``left`` entries, L any entry, u a unary operator or none, c fitted.

        A library entry with a fitted inner constant: ``exp(-0.3*x)`` is no entry, but it is
        ``exp(c1*x + c0)``. For each A and u, the needed inner values are matched against
        every entry at once by correlation; only exact matches (up to rounding) are returned,
        each checked forwards.
        """
        n = len(target)
        F, norms, usable = self.centered
        D = np.where(usable[:, None], F / (norms[:, None] + 1e-300), 0.0)
        A = self.outputs[:left]
        scale = np.mean(target**2) + 1e-12
        found: list[Program] = []
        with np.errstate(all="ignore"):
            for op in binary:
                f = OPERATORS[op].numpy
                for solve, a_left in split_solvers(op):
                    need = solve(target[None, :], A)  # (left, n): what B must be
                    for u in (None, *unary):
                        inner = need if u is None else unary_preimage(u, need)
                        rows = np.flatnonzero(np.isfinite(inner).all(axis=1))
                        if not len(rows):
                            continue
                        T = inner[rows] - inner[rows].mean(axis=1, keepdims=True)
                        tn = np.sqrt((T**2).sum(axis=1))
                        ok = tn > 1e-9 * (np.abs(inner[rows]).max(axis=1) + 1e-300)
                        corr = np.abs((T[ok] / tn[ok, None]) @ D.T)  # (rows, entries)
                        self.scored += corr.size
                        for r, j in zip(*np.nonzero(corr > 1 - 1e-12)):
                            a = int(rows[np.flatnonzero(ok)[r]])
                            basis = np.column_stack([self.outputs[j], np.ones(n)])
                            coef, *_ = np.linalg.lstsq(basis, inner[a], rcond=None)
                            b = Program(
                                ("add", "mul", "const", *self.programs[j].tokens, "const"),
                                (float(coef[0]), float(coef[1])),
                            )
                            if u is not None:
                                b = Program((u, *b.tokens), b.consts)
                            bv = node_values(b, self.X)[0]
                            out = f(A[a], bv) if a_left else f(bv, A[a])
                            if np.mean((out - target) ** 2) / scale < self.tol:
                                ta = self.programs[a].tokens
                                tokens = (op, *ta, *b.tokens) if a_left else (op, *b.tokens, *ta)
                                found.append(Program(tokens, b.consts))
                            if len(found) >= 8:
                                return found
        return found

    def _least_squares(self, terms: list[int], target: np.ndarray) -> tuple[Program, float]:
        """The fitted sum, and its residual relative to the target's spread."""
        A = np.column_stack([self.outputs[terms].T, np.ones(len(target))])
        coef, *_ = np.linalg.lstsq(A, target, rcond=None)
        with np.errstate(all="ignore"):  # a huge entry gives an inf residual: not a fit
            res = float(np.mean((A @ coef - target) ** 2) / (np.var(target) + 1e-300))
        return self._linear_program(tuple(terms), coef), res

    def _linear_program(self, chosen: tuple[int, ...], coef: np.ndarray) -> Program:
        tokens: list[str] = ["add"] * len(chosen)
        for k in chosen:
            tokens += ["mul", "const", *self.programs[k].tokens]
        tokens.append("const")
        return Program(tuple(tokens), tuple(float(c) for c in coef))

    def split(
        self, target: np.ndarray, binary: tuple[str, ...], unary: tuple[str, ...], left: int
    ) -> list[Program]:
        """Programs ``op(A, B)`` / ``op(B, A)`` equal to ``target``: A among the first ``left``
        entries, B a library entry or a unary operator of one.

        Each match is checked forwards, since solving for B can lose all precision (z - A
        when A is huge): only programs whose output equals the target are returned.
        """
        found: list[Program] = []
        A = self.outputs[:left]
        with np.errstate(all="ignore"):
            scale = np.mean(target**2) + 1e-12
            for op in binary:
                f = OPERATORS[op].numpy
                for solve, a_left in split_solvers(op):
                    for row, b in self.match(solve(target[None, :], A), unary):
                        known = self.position.get(b.tokens)
                        bv = node_values(b, self.X)[0] if known is None else self.outputs[known]
                        out = f(A[row], bv) if a_left else f(bv, A[row])
                        if np.mean((out - target) ** 2) / scale < self.tol:
                            a = self.programs[row].tokens
                            found.append(Program((op, *a, *b.tokens) if a_left else (op, *b.tokens, *a)))
        return found


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
    (:func:`pipelines.decompose.decompose`): one of the first ``recurse_left`` entries peeled
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
        if depth > 0:  # peel small siblings off, level after level (pipelines/decompose.py)
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
