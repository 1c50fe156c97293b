"""Local edits Δφ: enumerate them, apply them, and find a path of them between programs.

An edit is plain data (a NamedTuple): hashable, printable, and a dict away from JSON.
The five kinds make every program reachable from every other: collapse to a leaf,
then grow by wraps and replacements.
"""

from __future__ import annotations

from collections import Counter
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
def edit_path(a: Program, b: Program) -> list[Edit]:
    """A short path of edits that turns ``a`` into ``b`` (structure; constants ignored).

    Built top-down: keep the root when arities match (replace its token if needed, then
    recurse into children); otherwise wrap, hoist or collapse so that the arities match.
    Edits are applied as they are made, so every location refers to the current program.
    Not always the shortest path, but never long: at most about |a| + |b| edits.
    """
    path: list[Edit] = []
    cur = a

    def fix(loc: int, target: Program) -> None:
        nonlocal cur
        while True:
            sub = cur.subtree(loc)
            if sub.tokens == target.tokens:
                return
            ta, tb = sub.tokens[0], target.tokens[0]
            aa, ab = arity(ta), arity(tb)
            if aa == ab:
                if ta != tb:
                    step(Edit("replace", loc, tb))
                sub = cur.subtree(loc)
                tkids = target.children(0)
                for k in range(ab):
                    fix(cur.children(loc)[k], target.subtree(tkids[k]))
                return
            if ab == 0:
                step(Edit("collapse", loc, tb))
            elif ab == 1:
                if aa == 2 and _contains(target.subtree(1), sub) is None:
                    step(Edit("hoist", loc, side=_closer_child(sub, target.subtree(1))))
                else:
                    step(Edit("wrap_unary", loc, tb))
            else:  # target is binary, current is a leaf or unary
                tkids = [target.subtree(c) for c in target.children(0)]
                if aa == 1 and _contains(tkids[0], sub) is None and _contains(tkids[1], sub) is None:
                    step(Edit("hoist", loc, side=0))
                    continue
                keep = 1 if _similarity(sub, tkids[1]) > _similarity(sub, tkids[0]) else 0
                other = tkids[1 - keep]
                leaf = other.tokens[0] if len(other) == 1 else _any_leaf(other)
                step(Edit("wrap_binary", loc, tb, leaf, 1 - keep))

    def step(e: Edit) -> None:
        nonlocal cur
        path.append(e)
        cur = apply(cur, e)

    fix(0, b)
    return path


def _contains(haystack: Program, needle: Program) -> int | None:
    """Index of a subtree of ``haystack`` equal to ``needle`` (by tokens), if any."""
    n = len(needle)
    for i in range(len(haystack)):
        if haystack.ends[i] - i == n and haystack.tokens[i : i + n] == needle.tokens:
            return i
    return None


def _similarity(a: Program, b: Program) -> int:
    """Shared tokens (multiset), a cheap proxy for which side to keep when wrapping."""
    return sum((Counter(a.tokens) & Counter(b.tokens)).values())


def _closer_child(sub: Program, target: Program) -> int:
    kids = [sub.subtree(c) for c in sub.children(0)]
    return int(_similarity(kids[1], target) > _similarity(kids[0], target))


def _any_leaf(p: Program) -> str:
    return next(t for t in p.tokens if arity(t) == 0)


def edit_distance(a: Program, b: Program) -> int:
    """Length of :func:`edit_path`: the number of edits between two programs."""
    return len(edit_path(a, b))


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
    d = edit_distance(a, b)
    if d == 0:
        return []
    return [e for e in legal_edits(a, function_set, max_size) if edit_distance(apply(a, e), b) < d]
