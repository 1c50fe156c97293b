"""Local edits Δφ: enumerate them, apply them, and find a path of them between programs.

An edit is plain data (a NamedTuple): hashable, printable, and a dict away from JSON.
The five kinds make every program reachable from every other: collapse to a leaf,
then grow by wraps and replacements.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from simulator.language import FunctionSet, arity
from simulator.program import Program

KINDS: tuple[str, ...] = ("replace", "wrap_unary", "wrap_binary", "hoist", "collapse")


class Edit(NamedTuple):
    """One local change at node ``loc`` (a prefix index of the program it applies to).

    - ``replace``: put ``token`` (same arity) at ``loc``;
    - ``wrap_unary``: ``token(node)``;
    - ``wrap_binary``: ``token(leaf, node)`` when ``side == 0``, ``token(node, leaf)`` when 1;
    - ``hoist``: replace the node by its child number ``side``;
    - ``collapse``: replace the whole subtree by the leaf ``token``.
    """

    kind: str
    loc: int
    token: str = ""
    leaf: str = ""
    side: int = 0

    def __str__(self) -> str:
        args = {
            "replace": self.token,
            "wrap_unary": self.token,
            "wrap_binary": f"{self.token}, {self.leaf}, {'left' if self.side == 0 else 'right'}",
            "hoist": f"child {self.side}",
            "collapse": self.token,
        }[self.kind]
        return f"{self.kind}@{self.loc}({args})"

    def to_dict(self) -> dict:
        return self._asdict()

    @classmethod
    def from_dict(cls, d: dict) -> Edit:
        return cls(**d)


class EditError(ValueError):
    """An edit that does not apply to the program it was given."""


def legal_edits(program: Program, function_set: FunctionSet, max_size: int | None = None) -> list[Edit]:
    """Every edit of ``program`` within ``function_set`` (no-op edits excluded).

    ``max_size`` drops edits whose result would exceed that many nodes.
    """
    n = len(program)
    room = None if max_size is None else max_size - n
    out: list[Edit] = []
    leaves, unary, binary = function_set.leaves, function_set.unary, function_set.binary
    for i, t in enumerate(program.tokens):
        a = arity(t)
        same = leaves if a == 0 else unary if a == 1 else binary
        out.extend(Edit("replace", i, s) for s in same if s != t)
        if room is None or room >= 1:
            out.extend(Edit("wrap_unary", i, u) for u in unary)
        if room is None or room >= 2:
            for b in binary:
                for leaf in leaves:
                    out.append(Edit("wrap_binary", i, b, leaf, 0))
                    out.append(Edit("wrap_binary", i, b, leaf, 1))
        if a > 0:
            out.extend(Edit("hoist", i, side=s) for s in range(a))
            out.extend(Edit("collapse", i, leaf) for leaf in leaves)
    return out


def apply(program: Program, edit: Edit) -> Program:
    """The program after ``edit``. New constants start at 1.0."""
    i = edit.loc
    if not 0 <= i < len(program):
        raise EditError(f"edit {edit} is out of range for a program of {len(program)} nodes")
    t = program.tokens[i]
    sub = program.subtree(i)
    if edit.kind == "replace":
        if arity(edit.token) != arity(t):
            raise EditError(f"edit {edit}: {edit.token!r} has a different arity from {t!r}")
        if arity(t) == 0:
            new = Program((edit.token,))
        else:
            new = Program((edit.token,) + sub.tokens[1:], sub.consts)
    elif edit.kind == "wrap_unary":
        _need(edit, arity(edit.token) == 1, "token must be a unary operator")
        new = Program((edit.token,) + sub.tokens, sub.consts)
    elif edit.kind == "wrap_binary":
        _need(edit, arity(edit.token) == 2 and arity(edit.leaf) == 0, "needs a binary operator and a leaf")
        leaf = Program((edit.leaf,))
        if edit.side == 0:
            new = Program((edit.token,) + leaf.tokens + sub.tokens, leaf.consts + sub.consts)
        else:
            new = Program((edit.token,) + sub.tokens + leaf.tokens, sub.consts + leaf.consts)
    elif edit.kind == "hoist":
        kids = program.children(i)
        _need(edit, 0 <= edit.side < len(kids), "the node has no such child")
        new = program.subtree(kids[edit.side])
    elif edit.kind == "collapse":
        _need(edit, arity(edit.token) == 0, "token must be a leaf")
        new = Program((edit.token,))
    else:
        raise EditError(f"unknown edit kind {edit.kind!r}; kinds are {', '.join(KINDS)}")
    return program.replace_subtree(i, new)


def _need(edit: Edit, ok: bool, why: str) -> None:
    if not ok:
        raise EditError(f"edit {edit}: {why}")


# ----- paths between programs -------------------------------------------------------------
class _Alignment:
    """Fewest edits that turn subtree ``i`` of ``a`` into subtree ``j`` of ``b`` (memoised).

    Every way of making ``b[j]`` from ``a[i]`` top-down is tried: keep the root (replacing its
    token) and fix the children pairwise; hoist a child of ``a[i]``; make ``b[j]``'s only
    child and wrap it; make one of ``b[j]``'s two children, wrap it with a leaf and grow that
    leaf into the other child (one wrap per operator node); collapse to ``b[j]`` when it is a
    leaf. The minimum over these is the shortest top-down path: one that fixes a node before
    its children and never builds what a later edit removes.
    """

    def __init__(self, a: Program, b: Program, memo: dict | None = None):
        self.a, self.b = a, b
        self.kids_a = [a.children(i) for i in range(len(a))]
        self.kids_b = [b.children(j) for j in range(len(b))]
        self.grow = [0] * len(b)  # a leaf of b[j] grows into b[j] by one wrap per operator node
        for j in range(len(b) - 1, -1, -1):
            self.grow[j] = 1 + sum(self.grow[c] for c in self.kids_b[j]) if self.kids_b[j] else 0
        # a cost depends only on the two subtrees, so it is keyed by a's subtree itself: one
        # ``memo`` shared by alignments to the same ``b`` reuses every subtree they share
        self.subtree_a = [a.tokens[i : a.ends[i]] for i in range(len(a))]
        self.memo: dict[tuple[tuple[str, ...], int], int] = {} if memo is None else memo

    def same(self, i: int, j: int) -> bool:
        ea, eb = self.a.ends[i], self.b.ends[j]
        return ea - i == eb - j and self.a.tokens[i:ea] == self.b.tokens[j:eb]

    def options(self, i: int, j: int) -> list[tuple[int, str, int]]:
        """(cost, move, argument) for every first move from ``a[i]`` toward ``b[j]``."""
        ka, kb = self.kids_a[i], self.kids_b[j]
        out: list[tuple[int, str, int]] = []
        if not kb:
            out.append((1, "collapse", 0))
        if kb and len(ka) == len(kb):
            token = int(self.a.tokens[i] != self.b.tokens[j])
            out.append((token + sum(self.cost(x, y) for x, y in zip(ka, kb, strict=True)), "keep", 0))
        out.extend((1 + self.cost(x, j), "hoist", side) for side, x in enumerate(ka))
        if len(kb) == 1:
            out.append((1 + self.cost(i, kb[0]), "wrap_unary", 0))
        elif len(kb) == 2:
            for keep in (0, 1):
                out.append((1 + self.cost(i, kb[keep]) + self.grow[kb[1 - keep]], "wrap_binary", keep))
        return out

    def cost(self, i: int, j: int) -> int:
        key = (self.subtree_a[i], j)
        if key not in self.memo:
            self.memo[key] = 0 if self.same(i, j) else min(c for c, _, _ in self.options(i, j))
        return self.memo[key]


def edit_distance(a: Program, b: Program) -> int:
    """The fewest edits that turn ``a`` into ``b`` (structure; constants ignored).

    The label of the similarity metric and of the planner's traces: the edits a search still
    has to make. A heuristic path overcounts (``x2 + φ`` to ``φ`` is one hoist, not a
    rebuild), and an overcounted label hides what the outputs say about it.
    """
    return _Alignment(a, b).cost(0, 0)


def edit_path(a: Program, b: Program) -> list[Edit]:
    """A shortest path of edits from ``a`` to ``b``: ``len(edit_path(a, b)) == edit_distance(a, b)``.

    Follows the cheapest first move of :class:`_Alignment` at each node; edits are applied as
    they are made, so every location refers to the current program.
    """
    path: list[Edit] = []
    cur = a

    def step(e: Edit) -> None:
        nonlocal cur
        path.append(e)
        cur = apply(cur, e)

    def fix(loc: int, target: Program) -> None:
        while True:
            sub = cur.subtree(loc)
            al = _Alignment(sub, target)
            if al.same(0, 0):
                return
            _, move, arg = min(al.options(0, 0), key=lambda o: o[0])
            tb = target.tokens[0]
            if move == "collapse":
                step(Edit("replace" if len(sub) == 1 else "collapse", loc, tb))
                return
            if move == "hoist":
                step(Edit("hoist", loc, side=arg))
                continue
            if move == "keep":
                if sub.tokens[0] != tb:
                    step(Edit("replace", loc, tb))
                tkids = target.children(0)
                for k in range(len(tkids)):
                    fix(cur.children(loc)[k], target.subtree(tkids[k]))
                return
            tkids = [target.subtree(c) for c in target.children(0)]
            if move == "wrap_unary":
                step(Edit("wrap_unary", loc, tb))
                fix(cur.children(loc)[0], tkids[0])
                return
            other = tkids[1 - arg]  # wrap_binary: the node becomes child ``arg``, a leaf the other
            step(Edit("wrap_binary", loc, tb, next(t for t in other.tokens if arity(t) == 0), 1 - arg))
            fix(cur.children(loc)[arg], tkids[arg])
            fix(cur.children(loc)[1 - arg], other)
            return

    fix(0, b)
    return path


def random_edit(
    program: Program, function_set: FunctionSet, rng: np.random.Generator, max_size: int = 40
) -> Edit:
    edits = legal_edits(program, function_set, max_size=max_size)
    return edits[int(rng.integers(len(edits)))]


def corrupt(
    program: Program, function_set: FunctionSet, k: int, rng: np.random.Generator, max_size: int = 40
) -> tuple[Program, list[Edit]]:
    """Apply ``k`` random edits; returns the corrupted program and the edits made."""
    made: list[Edit] = []
    for _ in range(k):
        e = random_edit(program, function_set, rng, max_size)
        program = apply(program, e)
        made.append(e)
    return program, made


def next_edits(a: Program, b: Program, function_set: FunctionSet, max_size: int | None = None) -> list[Edit]:
    """Every legal edit of ``a`` that brings it one step closer to ``b``.

    Several edits are often correct at once (the multimodality the edit flow models);
    this lists them all, for labels and for top-k evaluation.
    """
    memo: dict = {}  # the children share all but one path of a's subtrees: align each once
    d = _Alignment(a, b, memo).cost(0, 0)
    if d == 0:
        return []
    edits = legal_edits(a, function_set, max_size)
    return [e for e in edits if _Alignment(apply(a, e), b, memo).cost(0, 0) < d]
