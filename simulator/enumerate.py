"""Random enumeration: the only source of training data, so the benchmarks stay unseen.

Programs come from a size- and depth-controlled prior over any function set; inputs come
from random ranges. Invalid and near-constant outputs are rejected and outputs are
de-duplicated, so every kept program means something different on its inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np

from simulator.language import BINARY, CONST, FUNCTION_SETS, UNARY, FunctionSet
from simulator.operators import OPERATORS
from simulator.program import Program


@dataclass(frozen=True)
class ProgramPrior:
    """Sizes are drawn uniformly in ``[min_size, max_size]``, then a tree of about that size."""

    min_size: int = 1
    max_size: int = 15
    max_depth: int = 6
    p_const: float = 0.25  # share of leaves that are constants when the set has them

    def sample(self, function_set: FunctionSet, rng: np.random.Generator) -> Program:
        """A random program; never one of the built-in benchmark formulas (they are test data)."""
        from simulator.suites import benchmark_keys

        banned = benchmark_keys()
        while True:
            target = int(rng.integers(self.min_size, self.max_size + 1))
            tokens: list[str] = []
            self._grow(function_set, rng, target, 1, tokens)
            p = Program(tuple(tokens), tuple(float(rng.uniform(-3, 3)) for t in tokens if t == CONST))
            if p.key not in banned:
                return p

    def _grow(
        self, fs: FunctionSet, rng: np.random.Generator, budget: int, depth: int, out: list[str]
    ) -> None:
        """Grow a subtree of at most ``budget`` nodes."""
        can_unary = bool(fs.unary) and budget >= 2 and depth < self.max_depth
        can_binary = bool(fs.binary) and budget >= 3 and depth < self.max_depth
        if not (can_unary or can_binary):
            out.append(self._leaf(fs, rng))
            return
        # prefer binary nodes when the budget is large, so trees are bushy, not chains
        p_binary = 0.0 if not can_binary else (1.0 if not can_unary else 0.7)
        if rng.random() < p_binary:
            out.append(fs.binary[int(rng.integers(len(fs.binary)))])
            rest = budget - 1
            left = int(rng.integers(1, rest - 1 + 1)) if rest > 2 else 1
            self._grow(fs, rng, left, depth + 1, out)
            self._grow(fs, rng, max(rest - left, 1), depth + 1, out)
        else:
            out.append(fs.unary[int(rng.integers(len(fs.unary)))])
            self._grow(fs, rng, budget - 1, depth + 1, out)

    def _leaf(self, fs: FunctionSet, rng: np.random.Generator) -> str:
        if fs.has_const and rng.random() < self.p_const:
            return CONST
        others = [t for t in fs.leaves if t != CONST]
        return others[int(rng.integers(len(others)))]


def sample_inputs(
    n_vars: int, n_points: int, rng: np.random.Generator, low: float = -5.0, high: float = 5.0
) -> np.ndarray:
    """Inputs on a random range per variable, inside [low, high], at least 0.5 wide."""
    a = rng.uniform(low, high - 0.5, size=n_vars)
    b = np.minimum(a + rng.uniform(0.5, high - low, size=n_vars), high)
    return rng.uniform(a, b, size=(n_points, n_vars))


@dataclass(frozen=True)
class FunctionSetPrior:
    """Random function sets, so that a model reads the set as an input instead of memorising one.

    Benchmarks use Koza-like sets; every training stream mixes several sets. A draw is:

    1. a named set (``named``, picked uniformly or by ``named_weights``) with chance
       ``p_named``, otherwise a random subset: each binary operator with chance ``p_binary``
       (``pow`` with ``p_pow`` when given; ``fallback`` when none is kept, or one binary
       operator at random if ``fallback`` is empty), each unary one with ``p_unary``, fitted
       constants with ``p_const``;
    2. small integer literals from ``literals``, on subsets only unless ``literals_on_named``:
       with chance ``p_literals``, 1 to ``max_literals`` distinct ones; or each literal on its
       own with chance ``p_each_literal``;
    3. the number of variables, unless the caller gives ``n_vars``: 1 + k with k drawn by
       ``var_weights`` (cut to ``max_vars``, the last weight repeated; empty: uniform).

    The defaults are the four named sets, uniformly, with one to three variables mostly one.
    Draws with a chance of 0 or 1 take nothing from ``rng``, so a prior uses only the random
    numbers its own settings need.
    """

    named: tuple[str, ...] = ("koza", "ckoza", "arith", "full")
    named_weights: tuple[float, ...] | None = None
    p_named: float = 1.0
    p_binary: float = 0.55
    p_pow: float | None = None
    fallback: tuple[str, ...] = ()
    p_unary: float = 0.35
    p_const: float = 0.4
    literals: tuple[str, ...] = ()
    p_literals: float = 0.0
    max_literals: int = 3
    p_each_literal: float = 0.0
    literals_on_named: bool = False
    var_weights: tuple[float, ...] = (0.5, 0.3, 0.2, 0.1, 0.05)

    def sample(self, rng: np.random.Generator, max_vars: int = 3, n_vars: int | None = None) -> FunctionSet:
        named = self.p_named >= 1.0 or rng.random() < self.p_named
        if named:
            if self.named_weights is None:
                label = self.named[int(rng.integers(len(self.named)))]
            else:
                label = self.named[int(rng.choice(len(self.named), p=self.named_weights))]
            names: list[str] = list(FUNCTION_SETS[label])
        else:
            label = ""
            p_pow = self.p_binary if self.p_pow is None else self.p_pow
            binary = [b for b in BINARY if rng.random() < (p_pow if b == "pow" else self.p_binary)]
            binary = binary or list(self.fallback) or [str(rng.choice(BINARY))]
            unary = [u for u in UNARY if rng.random() < self.p_unary]
            names = binary + unary + ([CONST] if rng.random() < self.p_const else [])
        if self.literals and (not named or self.literals_on_named):
            extra = self._literals(rng)
            if extra:
                names, label = names + extra, ""
        if n_vars is None:
            n_vars = self.sample_n_vars(rng, max_vars)
        return FunctionSet.from_names(label or names, n_vars)

    def _literals(self, rng: np.random.Generator) -> list[str]:
        if self.p_each_literal > 0:
            return [lit for lit in self.literals if rng.random() < self.p_each_literal]
        if self.p_literals > 0 and rng.random() < self.p_literals:
            count = int(rng.integers(1, self.max_literals + 1))
            return [self.literals[i] for i in rng.choice(len(self.literals), size=count, replace=False)]
        return []

    def sample_n_vars(self, rng: np.random.Generator, max_vars: int) -> int:
        if not self.var_weights:
            return int(rng.integers(1, max_vars + 1))
        w = list(self.var_weights[:max_vars]) + [self.var_weights[-1]] * (max_vars - len(self.var_weights))
        weights = np.array(w)
        return 1 + int(rng.choice(max_vars, p=weights / weights.sum()))


FUNCTION_SET_NAMES: tuple[str, ...] = ("koza", "ckoza", "arith", "full")

# one of the named sets, uniformly; 1-3 variables, mostly one
SETTING_FUNCTION_SETS = FunctionSetPrior(named=FUNCTION_SET_NAMES, var_weights=(0.5, 0.3, 0.2, 0.1, 0.05))


def random_setting(
    rng: np.random.Generator,
    function_sets: FunctionSetPrior = SETTING_FUNCTION_SETS,
    max_vars: int = 3,
    points: tuple[int, int] = (12, 30),
) -> tuple[FunctionSet, np.ndarray]:
    """A random function set and random inputs: the setting each random training target is
    drawn in (the forward and reverse streams, the decomposition chains)."""
    fs = function_sets.sample(rng, max_vars)
    X = sample_inputs(fs.n_vars, int(rng.integers(points[0], points[1] + 1)), rng)
    return fs, X


def output_ok(y: np.ndarray, min_std: float = 1e-6, max_abs: float = 1e6) -> bool:
    """Finite, not near-constant, and not absurdly large."""
    with np.errstate(all="ignore"):
        return bool(
            np.isfinite(y).all()
            and np.std(y) > min_std * (1 + np.abs(y).mean())
            and np.abs(y).max() < max_abs
        )


def output_signature(y: np.ndarray, digits: int = 6) -> bytes:
    """A hashable fingerprint of an output vector, for de-duplication by semantics."""
    return np.round(y, digits).tobytes()


def enumerate_exhaustive(
    function_set: FunctionSet,
    X: np.ndarray,
    max_size: int,
    max_count: int = 50_000,
    token_costs: dict[str, int] | None = None,
) -> tuple[list[Program], np.ndarray]:
    """Every semantically distinct program up to ``max_size`` nodes on X, cheapest first,
    stopping at ``max_count``: the first programs of :func:`iter_programs`. Returns the
    programs and their outputs (m, n)."""
    programs: list[Program] = []
    outputs: list[np.ndarray] = []
    for program, y in islice(iter_programs(function_set, X, max_size, token_costs), max_count):
        programs.append(program)
        outputs.append(y)
    return programs, np.array(outputs).reshape(len(outputs), X.shape[0])


def iter_programs(
    function_set: FunctionSet,
    X: np.ndarray,
    max_size: int,
    token_costs: dict[str, int] | None = None,
) -> Iterator[tuple[Program, np.ndarray]]:
    """Every semantically distinct program up to ``max_size`` nodes on X with its output,
    cheapest first, lazily: a caller takes as many as it can pay for, and more later.

    Built bottom-up, keeping only the first (cheapest) program for each output vector, so
    the count stays far below the number of trees. A program costs the sum of its tokens'
    ``token_costs`` (positive integers; a token not named, or no costs at all, costs 1, so
    by default cheapest is smallest). Costs from a recognition model put the programs a
    law is likely to use first. Constants are left out: their values are fitted later, so
    they cannot be matched by output.
    """
    costs = token_costs or {}
    cost = {t: max(int(costs.get(t, 1)), 1) for t in function_set.tokens}
    leaves = [t for t in function_set.leaves if t != CONST]
    # programs by (cost, size): pairs too large for max_size are skipped a bucket at a time
    buckets: dict[tuple[int, int], list[tuple[tuple[str, ...], np.ndarray]]] = {}
    seen: set[bytes] = set()

    def keep(tokens: tuple[str, ...], y: np.ndarray, level: int) -> bool:
        """Whether y is finite and new; a kept program joins its (cost, size) bucket."""
        if not np.isfinite(y).all():
            return False
        sig = output_signature(y)
        if sig in seen:
            return False
        seen.add(sig)
        buckets.setdefault((level, len(tokens)), []).append((tokens, y))
        return True

    def at(level: int, most: int):
        """The programs of cost ``level`` with at most ``most`` nodes, by size."""
        for size in range(1, most + 1):
            if (level, size) in buckets:
                yield size, buckets[level, size]

    from simulator.execute import leaf_value

    def quietly(
        made: Iterable[tuple[tuple[str, ...], np.ndarray]], level: int
    ) -> list[tuple[Program, np.ndarray]]:
        """The new programs among ``made``, computed with numpy's warnings off; a list, so that
        the warnings are back on whenever the caller holds the generator."""
        with np.errstate(all="ignore"):
            return [(Program(tokens), y) for tokens, y in made if keep(tokens, y, level)]

    top = max_size * max(cost.values(), default=1)
    for level in range(1, top + 1):
        yield from quietly([((t,), leaf_value(t, X)) for t in leaves if cost[t] == level], level)
        for u in function_set.unary:
            for _, items in at(level - cost[u], max_size - 1):
                yield from quietly((((u, *tokens), OPERATORS[u].numpy(y)) for tokens, y in items), level)
        for b in function_set.binary:
            op = OPERATORS[b].numpy
            for left in range(1, level - cost[b]):
                right = level - cost[b] - left
                for ls, lefts in at(left, max_size - 2):
                    for _, rights in at(right, max_size - 1 - ls):
                        for lt, ly in lefts:  # a row at a time, so a caller can stop mid-level
                            yield from quietly((((b, *lt, *rt), op(ly, ry)) for rt, ry in rights), level)
