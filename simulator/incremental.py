"""The incremental forward transform: evaluate every one-edit child of a parent cheaply.

A child differs from its parent at one node. Its output needs only the new node's value
and the values along the path from that node to the root; every sibling on that path
comes from the parent's cache. All edits at one location share that path, so they are
stacked into one matrix and pushed up together: a handful of vectorised numpy calls per
location instead of a full tree walk per candidate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

from simulator.edits import Edit
from simulator.execute import leaf_value, node_values
from simulator.language import arity
from simulator.operators import OPERATORS
from simulator.program import Program


def edited_node_value(
    parent: Program, z: np.ndarray, edit: Edit, leaf: Callable[[str], np.ndarray]
) -> np.ndarray:
    """The value ``edit`` writes at its own node, from the parent's cached node values ``z``.

    One operator on cached inputs: what the edit *is*, numerically. ``leaf(token)`` gives a
    leaf's value on the data (callers cache it).
    """
    kind = edit.kind
    if kind == "hoist":
        return z[parent.children(edit.loc)[edit.side]]
    if kind == "collapse" or (kind == "replace" and arity(edit.token) == 0):
        return leaf(edit.token)
    op = OPERATORS[edit.token]
    if kind == "replace":
        return op.numpy(*(z[k] for k in parent.children(edit.loc)))
    if kind == "wrap_unary":
        return op.numpy(z[edit.loc])
    new = leaf(edit.leaf)  # wrap_binary: the new leaf on the edit's side
    return op.numpy(new, z[edit.loc]) if edit.side == 0 else op.numpy(z[edit.loc], new)


class IncrementalEvaluator:
    """Per-parent cache of subtree outputs, used to evaluate its one-edit children."""

    def __init__(self, parent: Program, X: np.ndarray):
        self.parent = parent
        self.X = X
        self.z = np.stack(node_values(parent, X))  # (nodes, n)
        with np.errstate(all="ignore"):
            self.node_ok = np.isfinite(self.z).all(axis=1)
        self._leaf_cache: dict[str, np.ndarray] = {}

    def _leaf(self, token: str) -> np.ndarray:
        v = self._leaf_cache.get(token)
        if v is None:
            v = self._leaf_cache[token] = leaf_value(token, self.X)
        return v

    def _new_node_values(self, loc: int, edits: Sequence[Edit]) -> np.ndarray:
        """The edited node's output for each edit at ``loc``: shape (len(edits), n)."""
        return np.stack([edited_node_value(self.parent, self.z, e, self._leaf) for e in edits])

    def _subtree_ok(self, loc: int, e: Edit) -> bool:
        """Whether the untouched nodes that the edit keeps below ``loc`` were finite."""
        p = self.parent
        if e.kind in ("wrap_unary", "wrap_binary"):
            return bool(self.node_ok[loc : p.ends[loc]].all())
        if e.kind == "hoist":
            c = p.children(loc)[e.side]
            return bool(self.node_ok[c : p.ends[c]].all())
        if e.kind == "replace" and arity(e.token) > 0:
            return bool(self.node_ok[loc + 1 : p.ends[loc]].all())
        return True

    def evaluate(self, edits: Sequence[Edit]) -> tuple[np.ndarray, np.ndarray]:
        """Outputs of the children ``apply(parent, e)``: ``(Y (m, n), valid (m,))``.

        Valid means every node of the child is finite on every row, as in the full path.
        """
        m, n = len(edits), self.X.shape[0]
        Y = np.empty((m, n))
        valid = np.zeros(m, dtype=bool)
        groups: dict[int, list[int]] = defaultdict(list)
        for j, e in enumerate(edits):
            groups[e.loc].append(j)
        p, z = self.parent, self.z
        parents = p.parents
        with np.errstate(all="ignore"):
            for loc, idx in groups.items():
                group = [edits[j] for j in idx]
                V = self._new_node_values(loc, group)
                ok = np.isfinite(V).all(axis=1)
                ok &= np.array([self._subtree_ok(loc, e) for e in group])
                child, node = loc, parents[loc]
                while node >= 0:
                    op = OPERATORS[p.tokens[node]]
                    if op.arity == 1:
                        V = op.numpy(V)
                    else:
                        left, right = p.children(node)
                        if child == left:
                            sib = right
                            V = op.numpy(V, z[right])
                        else:
                            sib = left
                            V = op.numpy(z[left], V)
                        if not self.node_ok[sib : p.ends[sib]].all():
                            ok[:] = False
                    ok &= np.isfinite(V).all(axis=1)
                    child, node = node, parents[node]
                Y[idx] = V
                valid[idx] = ok
        return Y, valid
