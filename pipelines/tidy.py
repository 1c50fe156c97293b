"""Tidy an exact program: drop constants that the other constants can absorb.

A search with fitted constants often ends at ``x/c1 * (c2*x + c3)``: exact, but with one
constant too many, and then each constant rounded to 3 decimals no longer matches the law
(``c2/c1`` is not ``round(c2)/round(c1)``). Removing ``op(c, A)`` -> ``A`` and refitting
finds the shorter exact form in a handful of simulator calls; among exact forms of one
size, the one whose constants need the fewest digits is kept. A phase constant inside sin
or cos (``sin(c*(1.5708 - x))``) is absorbed the same way by swapping sin and cos.
"""

from __future__ import annotations

from simulator.language import CONST
from simulator.program import Program

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


def shorter_forms(program: Program) -> list[Program]:
    """``without_one_constant``, plus sin/cos swapped with one constant of its argument dropped."""
    out = without_one_constant(program)
    for i, token in enumerate(program.tokens):
        if token in _PHASE_SWAP:
            arg = program.subtree(i + 1)
            for inner in without_one_constant(arg):
                out.append(
                    program.replace_subtree(i, Program((_PHASE_SWAP[token], *inner.tokens), inner.consts))
                )
    return out


def constant_digits(program: Program) -> int:
    """Significant digits needed to write the constants (to 1e-9): the tie-break between
    exact programs of one size, so that ``x*(2.12*x + 1.78)`` wins over ``x/0.47*(x + 0.84)``."""
    total = 0
    for c in program.consts:
        for d in range(1, 16):
            if c == 0 or abs(float(f"{c:.{d}g}") - c) <= 1e-9 * abs(c):
                break
        total += d
    return total
