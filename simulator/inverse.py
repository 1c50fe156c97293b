"""Exact inverses along a program path: the value a subtree must produce so the program outputs y.

A node's output reaches the root through a chain of operators whose other inputs (the
siblings on the path) do not depend on that node, so on every data point the context is a
scalar function of the hole's value. Where each operator on the chain can be undone on that
point (add/sub/mul/div with the sibling's value, exp/log, neg, inv, sqrt, cube, tanh, pow
with a usable sibling), walking from the root down gives the hole's value exactly. Operators
that are not one-to-one (square, abs, sin, cos, tan, even powers) are undone on their
principal branch: the result is then *a* preimage, valid as a sub-goal, not necessarily the
value the original subtree had. The reverse flow adds the other branches; this module is its
analytic backbone and the planner's fast path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from simulator.execute import node_values
from simulator.language import arity
from simulator.operators import OPERATORS
from simulator.program import Program

VERIFY_RTOL = 1e-6


@dataclass
class PathStep:
    """One operator on the way from the hole up to the root.

    ``side`` is the hole's side (0 left, 1 right) for a binary operator; ``sibling`` holds
    the other input's values on the data (None for a unary operator).
    """

    token: str
    side: int
    sibling: np.ndarray | None


def hole_path(program: Program, hole_loc: int, X: np.ndarray, z: list | None = None) -> list[PathStep]:
    """The operators from the hole's parent up to the root, with the siblings' cached values."""
    if not 0 <= hole_loc < len(program):
        raise ValueError(f"hole location {hole_loc} is out of range for a program of {len(program)} nodes")
    z = node_values(program, X) if z is None else z
    steps: list[PathStep] = []
    child, node = hole_loc, program.parents[hole_loc]
    while node >= 0:
        t = program.tokens[node]
        if arity(t) == 1:
            steps.append(PathStep(t, 0, None))
        else:
            left, right = program.children(node)
            side = 0 if child == left else 1
            steps.append(PathStep(t, side, np.asarray(z[right if side == 0 else left], dtype=np.float64)))
        child, node = node, program.parents[node]
    return steps


def split_solvers(op: str) -> list[tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], bool]]:
    """For ``z = op(A, B)`` and ``z = op(B, A)``: functions (z, A) -> B, each with whether A is
    on the left. A commutative operator needs only the first."""
    inverse = OPERATORS[op].inverse
    right = (lambda z, a: inverse(z, a, 1)[0], True)
    if OPERATORS[op].commutative:
        return [right]
    return [right, (lambda z, a: inverse(z, a, 0)[0], False)]


def _undo(step: PathStep, v: np.ndarray) -> tuple[np.ndarray, bool]:
    """Preimage of ``v`` through one operator (NaN where none exists) and whether it was unique."""
    op = OPERATORS[step.token]
    if op.arity == 1:
        return op.inverse(v)
    return op.inverse(v, step.sibling, step.side)


def path_forward(steps: list[PathStep], z: torch.Tensor) -> torch.Tensor:
    """The program's output when the hole takes the values ``z`` (..., points): differentiable."""
    v = z
    for st in steps:
        f = OPERATORS[st.token].torch
        if st.sibling is None:
            v = f(v)
        else:
            s = torch.as_tensor(st.sibling, dtype=v.dtype)
            v = f(v, s) if st.side == 0 else f(s, v)
    return v


def invert_path(
    program: Program, hole_loc: int, X: np.ndarray, y: np.ndarray, z: list | None = None
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Principal-branch preimage of y per point: ``(values, ok, injective)``.

    ``ok`` marks the points where every operator could be undone *and* the result, run
    forward again, reproduces y (relative tolerance 1e-6); ``values`` is NaN elsewhere.
    ``injective`` is False when a non-one-to-one operator sat on the path.
    """
    steps = hole_path(program, hole_loc, X, z)
    v = np.asarray(y, dtype=np.float64).copy()
    injective = True
    for st in reversed(steps):
        v, unique = _undo(st, v)
        injective &= unique
    ok = np.isfinite(v)
    if ok.any():
        with torch.no_grad():
            back = path_forward(steps, torch.as_tensor(np.where(ok, v, 0.0))).numpy()
        y = np.asarray(y, dtype=np.float64)
        finite = y[np.isfinite(y)]
        scale = np.abs(y) + (np.sqrt(np.mean(finite**2)) if finite.size else 0.0) + 1e-12
        with np.errstate(all="ignore"):
            ok &= np.abs(back - y) <= VERIFY_RTOL * scale
    return np.where(ok, v, np.nan), ok, injective


def exact_inverse(
    program: Program, hole_loc: int, X: np.ndarray, y: np.ndarray, principal: bool = True
) -> np.ndarray | None:
    """The values the subtree at ``hole_loc`` must output so that the program outputs ``y``.

    Returns None when some point has no preimage along the path (a sibling of 0 under
    mul, log of a negative, |y| > 1 under sin, ...), or, with ``principal=False``, when a
    non-one-to-one operator makes the answer ambiguous. With ``principal=True`` (default)
    such operators are undone on their principal branch (sqrt for square, arccos for cos),
    so the result is a verified preimage though maybe not the original subtree's values.
    """
    v, ok, injective = invert_path(program, hole_loc, np.asarray(X, dtype=np.float64), y)
    if not ok.all() or (not principal and not injective):
        return None
    return v
