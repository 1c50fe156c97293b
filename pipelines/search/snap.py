"""Readable constants: a fitted constant snapped to a simple form (3/2, pi, sqrt(2)).

On noisy data a fit returns ``a**1.50128`` where the law is ``a**(3/2)``: the last digits
are the noise's, and they hide the law from a reader. After the finisher has chosen, each
constant of a program is tried at the simple values near it (integers, fractions with small
denominators, multiples of pi and sqrt(2)), the shortest to write first, as AI Feynman
rationalises its constants. The program's other constants are refitted with the snapped ones
held (:func:`pipelines.search.constants.fit_constants_many`), and a snap is kept only while the
loss stays within the caller's bar: as exact as before on exact data, within the noise
floor's slack on noisy data. Every try is charged to the budget as simulator calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import sympy

from pipelines.search.budget import Budget
from pipelines.search.constants import fit_constants_many
from pipelines.search.problem import Problem
from simulator.execute import evaluate_many
from simulator.program import Program

# Fractions p/q with q up to MAX_DENOMINATOR and p below MAX_NUMERATOR (any integer is simple);
# multiples k*u and u/k of the irrational units with k up to MAX_DENOMINATOR; decimals of
# up to DECIMAL_DIGITS significant digits at any scale (1000, 0.05, 3e-4), each costing a
# digit more than its digits (for its scale). Two digits would add forms such as 0.0034,
# which read worse as 17/5000 than the fitted value does.
MAX_DENOMINATOR = 12
MAX_NUMERATOR = 100
DECIMAL_DIGITS = 1
# A form further than this share of |c| from the constant c is not tried: it would not fit
# (noisy data). On exact data a fit's constants are right to many digits: a form further than
# EXACT_WINDOW would not stay exact, and trying it costs calls for nothing.
WINDOW = 0.1
EXACT_WINDOW = 1e-6
MAX_TRIES = 6  # forms tried per constant, the shortest to write first
# The irrational units, each with what it costs to write (a digit costs 1).
UNITS: tuple[tuple[sympy.Expr, int], ...] = ((sympy.pi, 2), (sympy.sqrt(2), 2))


@dataclass(frozen=True)
class Snapped:
    """A snapped program's constants as the fit left them, the exact form of each snapped
    one (None where the constant is still free), and the fitted program's loss."""

    fitted: tuple[float, ...]
    exact: tuple[sympy.Expr | None, ...]
    fitted_loss: float

    def forms(self, program: Program) -> dict[int, sympy.Expr]:
        """Constant index to exact form, for the constants of ``program`` that hold their
        snapped value (a program of another structure or other values gets none)."""
        if len(program.consts) != len(self.exact):
            return {}
        return {i: e for i, e in enumerate(self.exact) if e is not None and program.consts[i] == float(e)}

    def texts(self) -> list[str | None]:
        """The exact forms as text (JSON), None for a free constant."""
        return [None if e is None else str(e) for e in self.exact]


def _digits(n: int) -> int:
    return len(str(abs(n)))


def simple_forms(c: float, window: float = WINDOW) -> list[sympy.Expr]:
    """The simple values within ``window`` (a share of |c|) of ``c``, of its sign, shortest
    to write first (closest first among equals): integers, fractions p/q, short decimals,
    and k*u and u/k for u in pi and sqrt(2). Zero is never offered: that drops a term, which is the
    simplifier's choice, not a rewrite of a constant."""
    if not math.isfinite(c) or c == 0:
        return []
    a = abs(c)
    found: dict[float, tuple[int, float, sympy.Expr]] = {}

    def add(expr: sympy.Expr, cost: int) -> None:
        v = float(expr)
        if v > 0 and abs(v - a) <= window * a and (v not in found or cost < found[v][0]):
            found[v] = (cost, abs(v - a), expr)

    for q in range(1, MAX_DENOMINATOR + 1):
        p = round(a * q)
        if p >= 1 and math.gcd(p, q) == 1 and (q == 1 or p < MAX_NUMERATOR):
            add(sympy.Rational(p, q), _digits(p) + (_digits(q) if q > 1 else 0))
    for d in range(1, DECIMAL_DIGITS + 1):
        decimal = Fraction(f"{a:.{d - 1}e}")
        add(sympy.Rational(decimal.numerator, decimal.denominator), d + 1)
    for unit, cost in UNITS:
        k = round(a / float(unit))
        if 1 <= k <= MAX_DENOMINATOR:
            add(k * unit, cost + (_digits(k) if k > 1 else 0))
        for q in range(2, MAX_DENOMINATOR + 1):
            add(unit / q, cost + _digits(q))
    sign = 1 if c > 0 else -1
    return [sign * e for _, _, e in sorted(found.values(), key=lambda f: f[:2])]


def snap_constants(
    program: Program,
    loss: float,
    problem: Problem,
    budget: Budget,
    bar: float,
    steps: int = 30,
    window: float = WINDOW,
    gain: float = 1.0,
    frozen: frozenset[int] = frozenset(),
    level: float | None = None,
) -> tuple[Program, float, Snapped] | None:
    """``program`` (of loss ``loss``) with its constants snapped one at a time, greedily in
    prefix order, each to the first of its :func:`simple_forms` within ``window`` (at most
    ``MAX_TRIES``) whose
    program, the free constants refitted, scores at most ``bar`` (or at most ``loss`` times
    ``gain`` to the power of the constants snapped: what an inexact fit may give up for each
    constant it no longer fits); the snapped program, its loss and the record of the fit.
    None when no constant snaps. The constants at the indices in ``frozen`` keep their fitted
    values (a constant with physical units: its value depends on the units, not on the law).
    With ``level`` (noisy data), each snap must also pass the F test of the nested model at
    that level (:func:`nested_cap`), whatever ``bar`` says: a noise floor over-estimated on a
    few points must not let 6.28 become 6.

    A try costs one simulator call to run, and one more to refit when constants are left
    free; tries stop when the budget cannot pay for the next one.
    """
    k = len(program.consts)
    exact: list[sympy.Expr | None] = [None] * k
    current, current_loss = program, loss
    for i in range(k):
        if i in frozen:
            continue
        for form in simple_forms(current.consts[i], window)[:MAX_TRIES]:
            value = float(form)
            trial = current.with_consts([value if j == i else c for j, c in enumerate(current.consts)])
            if value == current.consts[i]:  # the fit is at the form already: nothing to run
                exact[i] = form
                break
            held = [j for j in range(k) if exact[j] is not None or j == i]
            free = len(held) < k
            if budget.remaining < 1 + free:
                return _outcome(program, loss, current, current_loss, exact)
            walks = 0
            if free:
                (trial,), walks = fit_constants_many([trial], problem.X, problem.y, steps, [held])
            Y, ok = evaluate_many([trial], problem.X)
            budget.charge(1 + free, walks)
            with np.errstate(all="ignore"):
                new = float(problem.nmse(Y)[0])
            snapped = 1 + sum(e is not None for e in exact)
            most = max(bar, loss * gain**snapped)
            if level is not None:
                most = min(most, nested_cap(loss, len(problem.y), k, snapped, level))
            if ok[0] and math.isfinite(new) and new <= most:
                current, current_loss, exact[i] = trial, new, form
                break
    return _outcome(program, loss, current, current_loss, exact)


def nested_cap(loss: float, n: int, k: int, snapped: int, level: float) -> float:
    """The largest loss a fit of ``k`` constants on ``n`` points (of ``loss``) may reach with
    ``snapped`` of them held at simple forms, by the F test of the nested model at ``level``:
    (RSS_snapped - RSS) / snapped over RSS / (n - k) at most the F quantile. The data cannot
    test a snap when they hold no more points than constants: then no loss is allowed."""
    from scipy.stats import f

    free = n - k
    if free < 1:
        return -math.inf
    return loss * (1.0 + snapped * float(f.ppf(1.0 - level, snapped, free)) / free)


def _outcome(
    fitted: Program, fitted_loss: float, current: Program, loss: float, exact: list[sympy.Expr | None]
) -> tuple[Program, float, Snapped] | None:
    """What :func:`snap_constants` returns for the snaps made so far (None: no snap)."""
    if all(e is None for e in exact):
        return None
    return current, loss, Snapped(fitted.consts, tuple(exact), fitted_loss)
