"""Tidy an exact program: drop constants that the other constants can absorb.

A search with fitted constants often ends at ``x/c1 * (c2*x + c3)``: exact, but with one
constant too many, and then each constant rounded to 3 decimals no longer matches the law
(``c2/c1`` is not ``round(c2)/round(c1)``). Removing ``op(c, A)`` -> ``A`` and refitting
finds the shorter exact form in a handful of simulator calls. A phase constant inside sin
or cos (``sin(c*(1.5708 - x))``) is absorbed the same way by swapping sin and cos, and a
factored form (``3.39*x*(x**2 + 0.6254*x + 0.5251)``) is also offered expanded, where its
constants are the law's coefficients. Forms are compared by description length: size plus
the significant digits the constants need."""

from __future__ import annotations

import sympy

from simulator.edits import apply, legal_edits
from simulator.language import CONST, FunctionSet
from simulator.program import ParseError, Program, parse

_ABSORBABLE = {"add", "sub", "mul", "div"}
_PHASE_SWAP = {"sin": "cos", "cos": "sin"}


def without_one_constant(program: Program) -> list[Program]:
    """Every program made by replacing one ``op(const, A)`` or ``op(A, const)`` with ``A``."""
    out: list[Program] = []
    for i, token in enumerate(program.tokens):
        if token not in _ABSORBABLE:
            continue
        left, right = program.children(i)
        for const_side, keep in ((left, right), (right, left)):
            if program.tokens[const_side] == CONST and program.tokens[keep] != CONST:
                out.append(program.replace_subtree(i, program.subtree(keep)))
    return out


def shorter_forms(program: Program, function_set: FunctionSet) -> list[Program]:
    """``without_one_constant``, sin/cos swapped with one constant of its argument dropped,
    and the expanded form: those whose operators are all in ``function_set``."""
    out = without_one_constant(program)
    expanded = _expanded(program)
    if expanded is not None and expanded.key != program.key:
        out.append(expanded)
    for i, token in enumerate(program.tokens):
        if token in _PHASE_SWAP:
            arg = program.subtree(i + 1)
            for inner in without_one_constant(arg):
                out.append(
                    program.replace_subtree(i, Program((_PHASE_SWAP[token], *inner.tokens), inner.consts))
                )
    allowed = set(function_set.tokens)
    return [p for p in out if allowed.issuperset(p.tokens)]


def simpler_forms(program: Program, function_set: FunctionSet) -> list[Program]:
    """Every program one step simpler: a subtree replaced by one of its children (hoist) or
    by a leaf (collapse), and the :func:`shorter_forms`. On noisy data these are the
    candidates that a description-length criterion may prefer to the search's near-fit."""
    steps = [e for e in legal_edits(program, function_set) if e.kind in ("hoist", "collapse")]
    out = {p.key: p for p in (apply(program, e) for e in steps)}
    out.update((p.key, p) for p in shorter_forms(program, function_set))
    out.pop(program.key, None)
    return list(out.values())


def _expanded(program: Program) -> Program | None:
    """The program with products of sums multiplied out, powers written as products."""
    try:
        return parse(sympy.sstr(_unpow(sympy.expand(program.to_sympy())), full_prec=True))
    except (ParseError, ValueError, TypeError, RecursionError):
        return None


def _unpow(e: sympy.Expr) -> sympy.Expr:
    if e.is_Pow and e.exp.is_Integer and 1 < int(e.exp) <= 8:
        return sympy.Mul(*[_unpow(e.base)] * int(e.exp), evaluate=False)
    if e.is_Pow and e.exp.is_Integer and -8 <= int(e.exp) < 0:
        return sympy.Pow(_unpow(sympy.Pow(e.base, -e.exp)), -1, evaluate=False)
    return e.func(*[_unpow(a) for a in e.args], evaluate=False) if e.args else e


def constant_digits(program: Program) -> int:
    """Significant digits needed to write the constants (to 1e-9), so that
    ``x*(2.12*x + 1.78)`` is shorter to write than ``x/0.4717*(x + 0.8396)``."""
    total = 0
    for c in program.consts:
        for d in range(1, 16):
            if c == 0 or abs(float(f"{c:.{d}g}") - c) <= 1e-9 * abs(c):
                break
        total += d
    return total


def description_length(program: Program) -> int:
    """Size plus the digits its constants need: what is shortest to write down wins."""
    return program.complexity + constant_digits(program)
