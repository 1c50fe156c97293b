"""Recursive sub-goals: peel small siblings off a target, level after level, until the rest
is a library entry or a split of two.

A step writes the target z as ``op(a, z')`` with a among the library's first entries, and
z' is a new target (the operator's exact inverse), or as ``u(z')`` for a unary operator u:
where u is not one-to-one, z' is a choice of branches (:mod:`simulator.branches`). Three
levels of about 70 steps are 3×10⁵ remainders, each worth a library split, so the order
decides: the search is best-first by the summed log-probability of its steps, from the decomposition policy
(:mod:`flows.decomposition_policy`) or, as the plain stand-in, uniform over each target's
steps: shallow remainders first (those of targets with fewer steps a little sooner), and
a target's steps in library order. Every popped remainder costs one library match and
one split (their lookups count as candidates scored); ``pops`` bounds the work.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from flows.encoders import BINARY_OPS
from pipelines.search.library import Library
from simulator.branches import HoleSampler, branch_preimages
from simulator.decomposition_steps import SAME, decomposition_steps
from simulator.operators import OPERATORS
from simulator.program import Program

if TYPE_CHECKING:
    from flows.decomposition_policy import DecompositionPolicy

BRANCHES = ("operator", "reverse_flow", "principal")  # where a unary step's other branches come from

Wrap = tuple[str, tuple[str, ...], bool]  # (operator, sibling tokens, sibling on the left)


@dataclass
class Decomposition:
    """What a decomposition search found, and what it spent."""

    programs: list[Program]
    pops: int  # remainders matched against the library


def wrap(program: Program, wraps: tuple[Wrap, ...]) -> Program:
    """``program`` put back inside the peeled steps (the first wrap is the outermost)."""
    tokens = program.tokens
    for op, sibling, left in reversed(wraps):
        tokens = (op, *sibling, *tokens) if left else (op, *tokens, *sibling)
    return Program(tokens)


def unary_peels(
    z: np.ndarray,
    X: np.ndarray,
    unary: tuple[str, ...],
    branches: str = "operator",
    reverse: HoleSampler | None = None,
) -> list[tuple[str, np.ndarray]]:
    """The steps ``z = u(z')``: each unary operator's preimages of z worth a search, the
    principal branch and, where u is not one-to-one, the smoothest choice of branches from the
    operator's record (``branches="operator"``), the reverse flow's draws (``"reverse_flow"``,
    with ``reverse``), or none (``"principal"``). Remainders equal to z are dropped."""
    out = []
    scale = np.mean(z**2) + 1e-12
    with np.errstate(all="ignore"):
        for u in unary:
            if branches == "principal":
                v = OPERATORS[u].inverse(z)[0]
                found = [v] if np.isfinite(v).all() else []
            else:
                found = branch_preimages(u, X, z, reverse if branches == "reverse_flow" else None)
            out += [(u, v) for v in found if np.abs(v).max() < 1e6 and np.mean((v - z) ** 2) / scale >= SAME]
    return out


def decompose(
    lib: Library,
    target: np.ndarray,
    binary: tuple[str, ...],
    policy: DecompositionPolicy | None = None,
    rows: np.ndarray | None = None,
    depth: int = 3,
    pops: int = 200,
    siblings: int = 12,
    left: int = 600,
    limit: int = 4,
    batch: int = 8,
    memo: dict | None = None,
    unary: tuple[str, ...] = (),
    branches: str = "operator",
    reverse: HoleSampler | None = None,
) -> Decomposition:
    """Programs equal to ``target`` as ``op1(a1, op2(a2, ... rest))`` with up to ``depth`` steps,
    rest a library entry or a split ``A op B`` (A among the first ``left`` entries).

    ``policy`` (a :class:`~flows.decomposition_policy.DecompositionPolicy` or None for library
    order) orders the steps, reading the points ``rows`` only (all when None). Stops after
    ``limit`` programs or ``pops`` remainders. The best ``batch`` remainders are taken
    together, so the policy scores their steps in one pass (1 is strictly best-first).
    ``memo``, a dict the caller keeps, holds each remainder's steps and their scores: a library
    grown on demand solves the same target again, and while its first ``siblings`` entries stay
    the same, so do the steps and their order, and only the lookups are new.
    ``unary`` operators are peeled too (:func:`unary_peels`, with ``branches`` and ``reverse``):
    the policy knows binary steps only, so each unary step gets the uniform share 1/(steps),
    and the binary steps share the rest in the policy's proportions.
    """
    rows = np.arange(len(target)) if rows is None else rows
    binary = tuple(op for op in binary if op in BINARY_OPS)
    k = min(siblings, len(lib))
    if branches not in BRANCHES:
        raise ValueError(f"branches must be one of {', '.join(BRANCHES)}; got {branches!r}")
    if (not binary and not unary) or k == 0 or depth < 1:
        return Decomposition([], 0)
    sib_outputs, sib_tokens = lib.outputs[:k], [p.tokens for p in lib.programs[:k]]
    memo = {} if memo is None else memo
    key = (tuple(sib_tokens), binary, unary, branches, policy is None, target.tobytes())
    tie = itertools.count()
    heap: list[tuple[float, int, np.ndarray, tuple[Wrap, ...]]] = [(0.0, next(tie), target, ())]
    found: list[Program] = []
    popped = 0
    while heap and popped < pops and len(found) < limit:
        # the best ``batch`` remainders at once, so that the policy scores their steps in one pass
        group = []
        while heap and len(group) < batch and popped + len(group) < pops:
            group.append(heapq.heappop(heap))
        deeper = []
        for cost, _, z, wraps in group:
            if len(found) >= limit:
                break
            if wraps:  # the target itself is matched by the caller
                popped += 1
                rests = [p for _, p in lib.match(z[None, :], ())] + lib.split(z, binary, (), left)[:2]
                found += [wrap(rest, wraps) for rest in rests]
            if len(wraps) < depth:
                if (key, wraps) not in memo:
                    steps = decomposition_steps(z, sib_outputs, binary)
                    peels = unary_peels(z, lib.X, unary, branches, reverse) if unary else []
                    memo[key, wraps] = (steps, peels, None) if len(steps) or peels else None
                if memo[key, wraps] is not None:
                    deeper.append((cost, z, wraps, memo[key, wraps][0]))
        if not deeper:
            continue
        fresh = [d for d in deeper if memo[key, d[2]][2] is None]  # steps not yet scored
        binary_fresh = [d for d in fresh if len(d[3])]
        if binary_fresh and policy is not None:  # the policy reads the points ``rows`` only
            seen = [replace(s, remainders=s.remainders[:, rows]) for _, _, _, s in binary_fresh]
            scored = policy.log_probs_many(
                lib.X[rows], [z[rows] for _, z, _, _ in binary_fresh], sib_outputs[:, rows], seen
            )
            by_wraps = {d[2]: logp for d, logp in zip(binary_fresh, scored)}
        for _, _, wraps, steps in fresh:
            peels = memo[key, wraps][1]
            total = len(steps) + len(peels)
            if policy is not None and len(steps):
                logp = by_wraps[wraps]
            else:
                logp = np.full(len(steps), -np.log(len(steps) or 1))
            share = np.log(len(steps) / total) if len(steps) else 0.0
            memo[key, wraps] = (steps, peels, (logp + share, np.full(len(peels), -np.log(total))))
        for cost, _, wraps, steps in deeper:
            peels = memo[key, wraps][1]
            logp, peel_logp = memo[key, wraps][2]
            for c in np.argsort(-logp, kind="stable"):
                step: Wrap = (steps.ops[c], sib_tokens[steps.siblings[c]], bool(steps.sibling_left[c]))
                heapq.heappush(heap, (cost - float(logp[c]), next(tie), steps.remainders[c], (*wraps, step)))
            for (u, v), lp in zip(peels, peel_logp):
                heapq.heappush(heap, (cost - float(lp), next(tie), v, (*wraps, (u, (), True))))
    return Decomposition(found[:limit], popped)


def search_metrics(policy: DecompositionPolicy | None, n: int = 60, seed: int = 0, pops: int = 300) -> dict:
    """The recursion on ``n`` held-out random targets three steps deep (random chains around a
    program of up to 7 nodes, never a benchmark formula): the share whose decomposition is
    found within ``pops`` remainders, and the median remainders matched (a miss counts as
    ``pops``), with the policy's order and in library order, on the same targets."""
    # the chains are the policy's training data, which loads Lightning: not on the search's path
    from flows.decomposition_data import random_chain
    from simulator.enumerate import ProgramPrior, enumerate_exhaustive
    from simulator.execute import evaluate

    rng = np.random.default_rng([seed, 29])
    prior = ProgramPrior(1, 7, p_const=0.0)
    orders = {"plain": None} if policy is None else {"policy": policy, "plain": None}
    runs: dict[str, list[int]] = {name: [] for name in orders}
    while len(runs["plain"]) < n:
        chain = random_chain(rng, 3, prior)
        if chain is None or len(chain.values) < 4:
            continue
        X, z, fs = chain.X, chain.values[-1], chain.function_set
        programs, outputs = enumerate_exhaustive(fs, X, 6, 5_000)
        lib = Library(programs, outputs, X)
        if len(lib.match(z[None, :], fs.unary)) or lib.split(z, fs.binary, fs.unary, 600):
            continue  # met without decomposing: not a test of the order
        for name, p in orders.items():
            found = decompose(lib, z, fs.binary, p, depth=3, pops=pops, limit=1)
            with np.errstate(all="ignore"):
                ok = [q for q in found.programs if np.allclose(evaluate(q, X), z, rtol=1e-6, atol=1e-9)]
            runs[name].append(found.pops if ok else pops + 1)
    out: dict[str, float] = {"targets": n, "pops": pops}
    for name, used in runs.items():
        if used:
            used_arr = np.array(used)
            out[f"{name}_found"] = float(np.mean(used_arr <= pops))
            out[f"{name}_median_pops"] = float(np.median(np.minimum(used_arr, pops)))
    if "policy" in runs:
        a, b = np.array(runs["policy"]), np.array(runs["plain"])
        out["policy_wins"], out["policy_losses"] = int(np.sum(a < b)), int(np.sum(a > b))
    return out
