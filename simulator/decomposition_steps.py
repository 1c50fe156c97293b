"""Decomposition steps: every way to write a target z as ``op(a, z')`` with a a small sibling.

A sibling a is one of the first (smallest) library entries, and z' the remaining target,
solved exactly by the operator's inverse. From a target there are about 70 such steps; the
recursive sub-goal search (``pipelines/search/decompose.py``) walks them, and the decomposition
policy (``flows/decomposition_policy.py``) learns the order to try them in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.enumerate import enumerate_exhaustive
from simulator.inverse import split_solvers
from simulator.language import FunctionSet
from simulator.program import Program

SIBLINGS = 12  # the first (smallest) library entries that a step may peel off
MAX_ABS = 1e6  # remainders beyond this are numerical garbage, not targets
SAME = 1e-6  # remainders within this relative error are the same target


@dataclass
class DecompositionSteps:
    """Every step from one target: the operator, whether the sibling is on the left, which
    sibling, and the remaining target each leaves (rows of ``remainders``)."""

    ops: list[str]
    sibling_left: np.ndarray  # (C,) bool
    siblings: np.ndarray  # (C,) index into the sibling list
    remainders: np.ndarray  # (C, n)

    def __len__(self) -> int:
        return len(self.ops)


def decomposition_steps(z: np.ndarray, siblings: np.ndarray, binary: tuple[str, ...]) -> DecompositionSteps:
    """The steps ``z = op(a, z')`` over the sibling outputs ``siblings`` (K, n).

    Remainders that are not finite, huge, equal to z itself (``z * 1``), or equal to an
    earlier step's are dropped, so each remaining target is offered once.
    """
    ops: list[str] = []
    left: list[bool] = []
    which: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    with np.errstate(all="ignore"):
        for op in binary:
            for solve, a_left in split_solvers(op):
                need = solve(z[None, :], siblings)
                ok = np.flatnonzero(np.isfinite(need).all(axis=1) & (np.abs(need).max(axis=1) < MAX_ABS))
                ops += [op] * len(ok)
                left += [a_left] * len(ok)
                which.append(ok)
                rows.append(need[ok])
    n = len(z)
    need = np.concatenate([np.round(z, 6)[None, :], *rows]).reshape(-1, n) if rows else np.zeros((0, n))
    # the first of each set of byte-equal rounded rows; row 0 is z itself, never offered
    sig = np.ascontiguousarray(np.round(need, 6)).view(np.dtype((np.void, 8 * n))).ravel()
    _, first = np.unique(sig, return_index=True)
    keep = np.sort(first[first > 0]) - 1
    which_all = np.concatenate(which) if which else np.zeros(0, np.int64)
    return DecompositionSteps(
        [ops[i] for i in keep],
        np.array(left, bool)[keep],
        which_all[keep].astype(np.int64),
        need[1:][keep].reshape(len(keep), n),
    )


def sibling_library(
    fs: FunctionSet, X: np.ndarray, count: int = SIBLINGS
) -> tuple[list[Program], np.ndarray]:
    """The first ``count`` library entries on X: the siblings a step may peel off."""
    programs, outputs = enumerate_exhaustive(fs, X, 7, count)
    return programs, outputs.reshape(len(programs), X.shape[0])
