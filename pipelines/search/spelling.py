"""Numbers and sums written in a task's own tokens.

An exact coefficient found by algebra (a 2, a 1/3) must be written with what the task
allows. With fitted constants it is a ``const``; with integer literals it is a literal;
with neither it is built from the variables: 1 is ``x/x`` (or ``exp(x - x)`` where x meets
0), 2 is ``(x + x)/x``, and so on, the shortest valid form found by a small dynamic
program. Sums of terms with signed coefficients are written with ``add`` and ``sub``, and a
polynomial in one variable in Horner form, ``c0 + x*(c1 + x*(...))``, which keeps it short.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from simulator.execute import evaluate
from simulator.language import CONST, FunctionSet, is_literal
from simulator.program import Program

Tokens = tuple[str, ...]
MAX_INTEGER = 64  # integers above this are not spelled out of ones


class Speller:
    """Writes integers, fractions and signed sums for one function set on one data set.

    ``X`` decides which unit constructions are valid (``x/x`` needs x nonzero on every row).
    Everything written uses only the set's tokens; a number that cannot be written is None.
    """

    def __init__(self, function_set: FunctionSet, X: np.ndarray):
        self.fs = function_set
        self.ops = set(function_set.binary) | set(function_set.unary)
        self.literals = {int(t): (t,) for t in function_set.leaves if is_literal(t)}
        self.integers = self._integers(X)

    def _integers(self, X: np.ndarray) -> dict[int, Tokens]:
        """The shortest program for each integer 1..MAX_INTEGER (by dynamic programming)."""
        best: dict[int, Tokens] = {k: t for k, t in self.literals.items() if k > 0}
        if 1 not in best:
            one = self._unit(X)
            if one is not None:
                best[1] = one
        if not best:
            return best
        xs = [t for t in self.fs.leaves if t.startswith("x")]
        nonzero = [x for x in xs if self._valid(("div", x, x), X)]
        multiples: dict[int, Tokens] = {}
        if nonzero and "div" in self.ops and "add" in self.ops:  # k = (x + ... + x)/x
            x = nonzero[0]
            multiples[1] = (x,)
            for k in range(2, 9):
                a = k // 2
                multiples[k] = ("add", *multiples[a], *multiples[k - a])
        for k in range(1, MAX_INTEGER + 1):
            options = [best[k]] if k in best else []
            if k in multiples and k > 1:
                options.append(("div", *multiples[k], nonzero[0]))
            if "add" in self.ops:
                options += [
                    ("add", *best[a], *best[k - a])
                    for a in range(1, k // 2 + 1)
                    if a in best and k - a in best
                ]
            if "mul" in self.ops:
                options += [
                    ("mul", *best[a], *best[k // a])
                    for a in range(2, int(k**0.5) + 1)
                    if k % a == 0 and a in best and k // a in best
                ]
            if options:
                best[k] = min(options, key=len)
        return best

    def _unit(self, X: np.ndarray) -> Tokens | None:
        """The shortest valid program equal to 1 on X."""
        xs = [t for t in self.fs.leaves if t.startswith("x")]
        forms: list[Tokens] = []
        for x in xs:
            if "div" in self.ops:
                forms.append(("div", x, x))
        for x in xs:
            for u in ("exp", "cos"):
                if u in self.ops and "sub" in self.ops:
                    forms.append((u, "sub", x, x))
        for form in forms:
            if self._valid(form, X):
                return form
        return None

    @staticmethod
    def _valid(tokens: Tokens, X: np.ndarray) -> bool:
        with np.errstate(all="ignore"):
            return bool(np.isfinite(evaluate(Program(tokens), X)).all())

    def integer(self, k: int) -> Tokens | None:
        """A positive integer in the set's tokens, or None."""
        return self.integers.get(int(k)) if k > 0 else None

    def times(self, c: Fraction, term: Tokens | None) -> Tokens | None:
        """``c * term`` for a positive fraction c (``term`` None: the number c alone)."""
        p, q = c.numerator, c.denominator
        if p <= 0:
            return None
        if term is None:
            num = self.integer(p)
        elif p == 1:
            num = term
        else:
            forms = []
            k = self.integer(p)
            if k is not None and "mul" in self.ops:
                forms.append(("mul", *k, *term))
            if p <= 3 and "add" in self.ops:
                forms.append(("add", *term, *term) if p == 2 else ("add", "add", *term, *term, *term))
            num = min(forms, key=len) if forms else None
        if num is None or q == 1:
            return num
        den = self.integer(q)
        return ("div", *num, *den) if den is not None and "div" in self.ops else None

    def signed_sum(self, parts: Sequence[tuple[Fraction, Tokens | None]]) -> Tokens | None:
        """``sum(c * term)`` with ``add`` and ``sub``, a positive part first; None when every
        coefficient is negative or a part cannot be written."""
        parts = [(c, t) for c, t in parts if c != 0]
        if not parts:
            return None
        parts.sort(key=lambda ct: ct[0] < 0)  # stable: positives keep their order, then negatives
        if parts[0][0] < 0:
            return None
        out = self.times(parts[0][0], parts[0][1])
        for c, t in parts[1:]:
            written = self.times(abs(c), t)
            op = "add" if c > 0 else "sub"
            if out is None or written is None or op not in self.ops:
                return None
            out = (op, *out, *written)
        return out

    def horner(self, coefs: Sequence[Fraction], x: str) -> Tokens | None:
        """``sum(coefs[k] * x**k)`` as ``c0 + x*(c1 + x*(...))`` (zero coefficients skipped)."""
        coefs = list(coefs)
        while coefs and coefs[-1] == 0:
            coefs.pop()
        if not coefs or "mul" not in self.ops:
            return None
        if len(coefs) == 1:
            return self.times(coefs[0], None)
        inner = self.horner(coefs[1:], x)
        if inner is None:
            return None
        shifted: Tokens = ("mul", x, *inner) if inner != self.integer(1) else (x,)
        return shifted if coefs[0] == 0 else self.signed_sum([(Fraction(1), shifted), (coefs[0], None)])


def respell(program: Program, function_set: FunctionSet, speller: Speller | None) -> Program | None:
    """The program with every integer literal the set lacks written in its tokens: a
    fitted constant holding the value where the set has constants, else the speller's form."""
    allowed = set(function_set.leaves)
    if not any(is_literal(t) and t not in allowed for t in program.tokens):
        return program
    tokens: list[str] = []
    consts: list[float] = []
    k = 0
    for t in program.tokens:
        if t == CONST:
            consts.append(program.consts[k])
            k += 1
            tokens.append(t)
        elif is_literal(t) and t not in allowed:
            if function_set.has_const:
                tokens.append(CONST)
                consts.append(float(t))
            else:
                spelled = speller.integer(int(t)) if speller is not None else None
                if spelled is None:
                    return None
                tokens += spelled
        else:
            tokens.append(t)
    return Program(tuple(tokens), tuple(consts))


def const_sum(terms: Sequence[Tokens], intercept: bool) -> Program:
    """``c1*T1 + ... + ck*Tk (+ c0)`` with every coefficient a fitted constant."""
    parts: list[Tokens] = [("mul", CONST, *t) for t in terms]
    if intercept:
        parts.append((CONST,))
    tokens = parts[0]
    for p in parts[1:]:
        tokens = ("add", *tokens, *p)
    return Program(tokens)


def const_horner(degrees: Sequence[int], x: str, intercept: bool) -> Program:
    """``c0 + x*(c1 + x*(...))`` over the given nonzero degrees, constants fitted later."""
    top = max(degrees)
    present = set(degrees) | ({0} if intercept else set())

    def go(k: int) -> Tokens:
        if k == top:
            return (CONST,)
        inner = go(k + 1)
        shifted: Tokens = ("mul", x, *inner)
        return ("add", *shifted, CONST) if k in present else shifted

    return Program(go(0))
