"""One preimage per point through an operator that is not one-to-one.

Undoing ``square``, ``abs``, ``sin``, ``cos`` or ``tan`` leaves several values per point. The
principal branch (:func:`simulator.inverse.exact_inverse`) is right only where the inner program
stays in it: ``square(x**3 - x)`` undone gives ``|x**3 - x|``, which no library entry equals.
The candidates per point come from the reverse flow's draws (learned) or from the operator's
record (``Operator.branches``: ``-v``, ``pi - v``, shifts by a period; the plain stand-in).
Neither picks one joint answer: the flow draws each point's branch on its own, so on
``square(x**3 - x)`` not one of 32 draws is right at every point. The data do: an inner
program's output is smooth along x, so a Viterbi pass over the points in x's order keeps the
candidate at each point that gives the least curvature. That needs an order, so it works on
one input variable; with more, only the principal branch is offered.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from simulator.operators import OPERATORS
from simulator.program import Program

SAME = 1e-6  # relative tolerance for a candidate to count as a preimage
TIE = 1e-9  # weight of the values' size beside the curvature: breaks ties between shifted paths


class HoleSampler(Protocol):
    """What a learned source of preimages offers (the reverse flow, ``flows.reverse_flow``):
    named here so the algebra does not import the models."""

    def sample_hole(
        self, program: Program, hole_loc: int, X: np.ndarray, y: np.ndarray, n: int
    ) -> np.ndarray: ...


def candidates(
    u: str, X: np.ndarray, z: np.ndarray, reverse: HoleSampler | None = None, draws: int = 16
) -> np.ndarray:
    """(k, n) preimages of ``z`` through ``u``: the principal branch, then, where u is not
    one-to-one, the reverse flow's ``draws`` (Newton-polished) or, without a flow, the
    operator's own other branches. Values that do not map back to z are NaN."""
    principal = OPERATORS[u].inverse(z)[0]
    if OPERATORS[u].branches is None:  # one-to-one: the principal preimage is the only one
        more = np.zeros((0, len(z)))
    elif reverse is not None:
        try:
            more = reverse.sample_hole(Program((u, "x1")), 1, X, z, draws)
        except (AssertionError, RuntimeError, ValueError):  # the flow cannot sample here
            more = np.zeros((0, len(z)))
    else:
        more = OPERATORS[u].branches(principal)
    C = np.concatenate([principal[None], more])
    with np.errstate(all="ignore"):
        back = OPERATORS[u].numpy(C)
        ok = np.abs(back - z) <= SAME * (np.abs(z) + np.sqrt(np.mean(z**2)) + 1e-12)
    return np.where(ok, C, np.nan)


def smoothest(x: np.ndarray, C: np.ndarray) -> np.ndarray | None:
    """The sequence with one row of ``C`` (k, n) per point, valid (finite) everywhere, whose
    second divided differences along ``x`` have the least sum of squares (Viterbi over pairs
    of neighbours; among paths a period apart, the one nearest 0); None when some point has
    no candidate."""
    k, n = C.shape
    finite = np.isfinite(C)
    if not finite.any(axis=0).all():
        return None
    order = np.argsort(x, kind="stable")
    xs, V = x[order], np.where(finite, C, 0.0)[:, order]
    bad = ~finite[:, order]
    if n < 3:
        return V[np.argmax(~bad, axis=0), np.arange(n)][np.argsort(order)]
    scale = np.sqrt(np.mean(V[np.argmax(~bad, axis=0), np.arange(n)] ** 2)) + 1e-12
    V = V / scale
    gap = np.maximum(np.diff(xs), 1e-9 * (xs[-1] - xs[0] + 1e-12))
    big = 1e300
    # a shift by a period leaves the curvature as it is: the tie goes to the smaller values
    small = TIE * V**2
    cost = np.where(bad[:, 0, None] | bad[None, :, 1], big, small[:, 0, None] + small[None, :, 1])  # [a, b]
    back = np.zeros((n, k, k), np.int64)
    for i in range(2, n):
        s1 = (V[None, :, i - 1] - V[:, None, i - 2]) / gap[i - 2]  # [a, b]
        s2 = (V[None, :, i] - V[:, None, i - 1]) / gap[i - 1]  # [b, c]
        curv = ((s2[None, :, :] - s1[:, :, None]) / (gap[i - 2] + gap[i - 1])) ** 2  # [a, b, c]
        total = np.minimum(cost[:, :, None] + curv + small[None, None, :, i], big)
        back[i] = np.argmin(total, axis=0)  # best a for each (b, c)
        cost = np.take_along_axis(total, back[i][None], axis=0)[0]
        cost[:, bad[:, i]] = big
    b, c = np.unravel_index(int(np.argmin(cost)), cost.shape)
    if cost[b, c] >= big:
        return None
    path = [c, b]
    for i in range(n - 1, 1, -1):
        path.append(back[i][path[-1], path[-2]])
    pick = np.array(path[::-1])
    return V[pick, np.arange(n)][np.argsort(order)] * scale


def branch_preimages(
    u: str, X: np.ndarray, z: np.ndarray, reverse: HoleSampler | None = None, draws: int = 16
) -> list[np.ndarray]:
    """Whole preimages of ``z`` through ``u`` worth trying as sub-goals: the principal branch
    when it exists everywhere, and (one input variable) the smoothest choice of branches and,
    when it is one too, its negation (``square(-v) = square(v)``)."""
    C = candidates(u, X, z, reverse, draws)
    out = [C[0]] if np.isfinite(C[0]).all() else []
    if X.shape[1] == 1 and len(C) > 1:
        best = smoothest(X[:, 0], C)
        if best is not None:
            for v in (best, -best):
                with np.errstate(all="ignore"):
                    back = OPERATORS[u].numpy(v)
                if np.allclose(back, z, rtol=SAME, atol=SAME * np.sqrt(np.mean(z**2))) and not any(
                    np.allclose(v, w, rtol=SAME, atol=1e-12) for w in out
                ):
                    out.append(v)
    return out


def branch_metrics(reverse: HoleSampler | None, n: int = 200, seed: int = 0, points: int = 20) -> dict:
    """How often the whole inner output is recovered through an operator that is not one-to-one,
    on ``n`` held-out random ``u(psi)`` (psi a random program of one variable with 3 to 9
    nodes, never a benchmark formula; u one of sin, cos, tan, square, abs; x uniform on
    [-3, 3]) on which u's principal branch is wrong: by the smoothest choice among the
    operator's own branches (``operator_hit``), among the reverse flow's draws
    (``flow_hit``), and by the principal branch (0 by construction)."""
    from simulator.enumerate import ProgramPrior, output_ok
    from simulator.execute import evaluate
    from simulator.language import FunctionSet

    rng = np.random.default_rng([seed, 41])
    fs = FunctionSet.from_names("full", 1)
    prior = ProgramPrior(3, 9, p_const=0.0)
    wide = [u for u in fs.unary if OPERATORS[u].branches is not None]
    sources = {"operator": None} if reverse is None else {"operator": None, "flow": reverse}
    hits = dict.fromkeys(sources, 0)
    done = 0
    while done < n:
        X = rng.uniform(-3, 3, (points, 1))
        u = wide[int(rng.integers(len(wide)))]
        with np.errstate(all="ignore"):
            psi = evaluate(prior.sample(fs, rng), X)
            if not output_ok(psi) or np.allclose(OPERATORS[u].inverse(OPERATORS[u].numpy(psi))[0], psi):
                continue
            z = OPERATORS[u].numpy(psi)
        done += 1
        for name, source in sources.items():
            found = branch_preimages(u, X, z, source)
            hits[name] += any(np.allclose(v, psi, rtol=1e-6, atol=1e-9) for v in found)
    out = {"branch_targets": n, "operator_branch_hit": hits["operator"] / n}
    if reverse is not None:
        out["flow_branch_hit"] = hits["flow"] / n
    return out
