"""Pairs of outputs on shared inputs, labelled with the edit distance between their programs.

The similarity metric must learn the topology the edits give the simulator's outputs, so
that it can tell the planner how far a program is from the goal: outputs of programs a few
edits apart should sit close, unrelated programs far. One
example is a *group* on one random X: an anchor φ, a chain of variants each one random edit
further away (k = 1..K), and unrelated negatives. Each member records ``k`` and the edit
distance back to the anchor (:func:`simulator.edits.edit_distance`), the number of edits a
planner standing on that member would still need. Benchmark formulas never appear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from flows.datasets import StreamDataModule
from flows.encoders import MAX_VARS
from simulator.edits import apply, corrupt, edit_distance, edit_path
from simulator.enumerate import FunctionSetPrior, ProgramPrior, output_ok, sample_inputs
from simulator.execute import is_finite, node_values
from simulator.program import Program
from simulator.suites import benchmark_keys

# input ranges per variable: the benchmarks use [-1, 1], [0, 1], [0, 2], [0, 4] and [0, 10]
RANGES: tuple[tuple[float, float], ...] = ((-5.0, 5.0), (-5.0, 5.0), (0.0, 10.0), (-2.0, 2.0))


# Koza-like sets 60% of the time (the benchmarks' sets), otherwise a random operator subset.
PAIR_FUNCTION_SETS = FunctionSetPrior(
    named=("koza", "ckoza", "arith", "full"),
    named_weights=(0.45, 0.3, 0.1, 0.15),
    p_named=0.6,
    p_binary=0.8,
    p_pow=0.15,
    fallback=("add", "mul"),
    p_unary=0.3,
    p_const=0.5,
    literals=("1", "2"),
    p_each_literal=0.2,
    var_weights=(),
)


@dataclass
class PairGroup:
    """One anchor with its variants and negatives, all run on the same X.

    Row 0 of ``Y`` is the anchor (k = 0, distance 0); rows 1..K are the variants, each one
    random edit beyond the previous; the last rows are negatives (k = -1).
    """

    X: np.ndarray  # (n, d)
    Y: np.ndarray  # (m, n)
    k: np.ndarray  # (m,) edits applied to the anchor; -1 for a negative
    dist: np.ndarray  # (m,) edit_distance(member, anchor)
    programs: list[str]
    function_set: str


def run_ok(program: Program, X: np.ndarray) -> np.ndarray | None:
    """y on X, or None when any node is non-finite or y is near-constant (rejected draws)."""
    z = node_values(program, X)
    with np.errstate(over="ignore", invalid="ignore"):  # output_ok's std of huge values overflows
        return z[0] if is_finite(z) and output_ok(z[0]) else None


def make_group(
    rng: np.random.Generator,
    n_points: int = 20,
    max_vars: int = 3,
    max_k: int = 6,
    n_negatives: int = 2,
    prior: ProgramPrior | None = None,
    max_size: int = 30,
    tries: int = 6,
    growth: bool = False,
) -> PairGroup | None:
    """One group, or ``None`` when a draw is rejected (invalid, constant, or a benchmark).

    ``growth`` makes the chain the way a planner meets a goal instead of by corruption: the
    programs on a shortest edit path from a small random program to the anchor (the planner's
    states start small and grow), ``max_k`` of them, each labelled with its edits left."""
    prior = prior or ProgramPrior(min_size=2, max_size=15, max_depth=6)
    banned = benchmark_keys()
    n_vars = int(rng.integers(1, max_vars + 1))
    fs = PAIR_FUNCTION_SETS.sample(rng, n_vars=n_vars)
    low, high = RANGES[int(rng.integers(len(RANGES)))]
    X = sample_inputs(n_vars, n_points, rng, low, high)
    anchor = prior.sample(fs, rng)
    if anchor.key in banned:
        return None
    y0 = run_ok(anchor, X)
    if y0 is None:
        return None
    if growth:
        chain = _growth_chain(anchor, fs, X, rng, max_k, banned)
    else:
        chain = _corruption_chain(anchor, fs, X, rng, max_k, banned, max_size, tries)
    if chain is None:
        return None
    programs = [anchor] + [p for p, _ in chain]
    outputs = [y0] + [y for _, y in chain]
    negatives = 0
    for _ in range(tries * n_negatives):
        if negatives == n_negatives:
            break
        p = prior.sample(fs, rng)
        y = run_ok(p, X) if p.key not in banned and p.key != anchor.key else None
        if y is not None:
            programs.append(p)
            outputs.append(y)
            negatives += 1
    if negatives < n_negatives:
        return None
    dist = np.array([edit_distance(p, anchor) for p in programs], dtype=np.int64)
    k = dist.copy() if growth else np.arange(max_k + 1 + n_negatives, dtype=np.int64)
    k[max_k + 1 :] = -1
    return PairGroup(X, np.stack(outputs), k, dist, [str(p) for p in programs], fs.name or "custom")


def _corruption_chain(
    anchor: Program,
    fs,
    X: np.ndarray,
    rng: np.random.Generator,
    count: int,
    banned: set,
    max_size: int,
    tries: int,
) -> list[tuple[Program, np.ndarray]] | None:
    """``count`` valid programs, each one random edit beyond the previous, from ``anchor``."""
    chain, cur = [], anchor
    for _ in range(count):
        for _ in range(tries):
            nxt, _ = corrupt(cur, fs, 1, rng, max_size=max_size)
            y = run_ok(nxt, X) if nxt.key not in banned else None
            if y is not None:
                break
        else:
            return None
        cur = nxt
        chain.append((cur, y))
    return chain


GROWTH_STARTS = ProgramPrior(min_size=1, max_size=3, max_depth=2)


def _growth_chain(
    anchor: Program, fs, X: np.ndarray, rng: np.random.Generator, count: int, banned: set
) -> list[tuple[Program, np.ndarray]] | None:
    """``count`` valid programs on a shortest path from a small random start to ``anchor``."""
    start = GROWTH_STARTS.sample(fs, rng)
    path, cur = [], start
    for e in edit_path(start, anchor):
        path.append(cur)
        cur = apply(cur, e)
    valid = []
    for p in path:
        y = run_ok(p, X) if p.key not in banned else None
        if y is not None:
            valid.append((p, y))
    if not valid:
        return None
    pick = rng.choice(len(valid), size=count, replace=len(valid) < count)
    return [valid[int(i)] for i in sorted(pick)]


def collate_groups(groups: list[PairGroup]) -> dict:
    """Stack groups; X is zero-padded to MAX_VARS columns (the features treat both alike)."""
    B = len(groups)
    n = groups[0].X.shape[0]
    X = np.zeros((B, n, MAX_VARS))
    for b, g in enumerate(groups):
        X[b, :, : g.X.shape[1]] = g.X
    return {
        "X": torch.from_numpy(X),
        "Y": torch.from_numpy(np.stack([g.Y for g in groups])),
        "k": torch.from_numpy(np.stack([g.k for g in groups])),
        "dist": torch.from_numpy(np.stack([g.dist for g in groups])),
        "n_vars": torch.tensor([g.X.shape[1] for g in groups]),
        "programs": [g.programs for g in groups],
    }


class PairDataModule(StreamDataModule):
    """Groups of outputs k edits apart (plus negatives) on shared X, made on the fly."""

    def __init__(
        self,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        val_size: int = 128,
        n_points: int = 20,
        max_vars: int = 3,
        max_k: int = 6,
        n_negatives: int = 2,
        min_size: int = 2,
        max_size: int = 15,
        growth_share: float = 0.0,
    ):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, val_size=val_size)
        self.n_points = n_points
        self.max_vars = max_vars
        self.max_k = max_k
        self.n_negatives = n_negatives
        self.prior = ProgramPrior(min_size=min_size, max_size=max_size, max_depth=6)
        if not 0.0 <= growth_share <= 1.0:
            raise ValueError(f"growth_share must be in [0, 1], got {growth_share}")
        self.growth_share = growth_share

    def make_example(self, rng: np.random.Generator) -> PairGroup | None:
        growth = self.growth_share > 0 and rng.random() < self.growth_share
        return make_group(
            rng, self.n_points, self.max_vars, self.max_k, self.n_negatives, self.prior, 30, growth=growth
        )

    def collate(self, examples: list[PairGroup]) -> dict:
        return collate_groups(examples)
