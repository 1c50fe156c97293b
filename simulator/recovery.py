"""Exact symbolic recovery, as docs/benchmarks.md defines it.

A found program recovers the truth when, after rounding every float in both to 3 decimals,
``sympy.simplify(found - truth) == 0``. Three choices keep this both faithful and robust:

* Rounded floats become exact decimal rationals (0.5 -> 1/2). The value is the same, but sympy
  then treats ``x**0.5`` and ``sqrt(x)`` as one expression, which it does not with a Float exponent.
* Variables are matched by name and taken as real. When simplification over the reals fails,
  variables that are positive on the task's domain are declared positive and simplification is
  retried, since identities such as ``exp(x2*log(x1)) == x1**x2`` or ``log(x**2) == 2*log(x)`` hold
  only there (Nguyen-11 lives on (0, 1)). Without a domain, every variable is taken as positive for
  the retry, but only when the two expressions agree numerically wherever both are real on a
  mixed-sign box: so ``sqrt(x**2)`` never recovers ``x``, while ``x1**x2`` recovers ``exp(x2*log(x1))``.
* A numeric pre-check on random points returns False at once when the two clearly differ, so the
  common case (a wrong candidate) never reaches ``simplify``. Cheap rewrites (``expand``,
  ``expand_log``, ``powsimp``) are tried before ``simplify``; the whole symbolic part runs under a
  time limit (SIGALRM, main thread only) and any sympy failure or timeout counts as not recovered.

Rounding applies to the expression sympy builds, after its automatic evaluation: ``sqrt(1.23*x1)``
is already ``1.10905...*sqrt(x1)``, so it rounds to ``1.109*sqrt(x1)``, as in DSO's own check.

Noisy data cannot pin constants to 3 decimals. With ``rtol`` > 0 (``NOISY_RTOL`` for noisy
tasks), a found program also recovers the truth when moving each of its constants c by at
most ``rtol * |c|`` makes it the truth: the constants are refitted to the noiseless
truth on the domain (least squares from the found values), and the refitted program must
pass the exact check above. Whole and rational coefficients count as constants too, exact
exponents do not: ``2*sqrt(x)`` recovers ``2.006*sqrt(x)`` at noise, ``x**2`` never recovers
``x**2.1``. So ``0.4997*m*v**2`` recovers ``m*v**2/2`` at noise, and
``0.43*m*v**2`` does not. The tolerance is relative, so a spurious term with a small
coefficient (``+ 0.01*x``) is not absorbed: its constant would have to move by 100%.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import sympy as sp

from simulator.operators import sympy_functions
from simulator.program import parse

Domain = Sequence[tuple[float, float]]

# sympy functions outside the language that truths may still use, besides the registry's own
EXTRA_FUNCTIONS: dict[Any, Any] = {
    sp.sinh: np.sinh,
    sp.cosh: np.cosh,
    sp.asin: np.arcsin,
    sp.acos: np.arccos,
    sp.atan: np.arctan,
    sp.sign: np.sign,
}
_NUMPY: dict[Any, Any] = {**{f: op.numpy for f, op in sympy_functions().items()}, **EXTRA_FUNCTIONS}
_POINTS = 64
_RTOL = 1e-6
# Rounding to 3 decimals splits a constant written two ways: the truth's 14.2*(x4 + x2)/(3*x5)
# keeps 14.2 and 3 apart, a fit writes 4.73333333333333. When the rounded check fails, it is
# tried once more with every float that is a fraction to 1e-9 (denominator up to 1000) written
# as that fraction: a stricter match of the value, not a looser one.
MAX_DENOMINATOR = 1000
FRACTION_RTOL = 1e-9
# How far each constant may sit from the truth's on noisy tasks: 5% of its value.
NOISY_RTOL = 0.05


class _Timeout(Exception):
    pass


class _Unsupported(Exception):
    pass


def to_sympy(expr: Any) -> sp.Expr:
    """A sympy expression from a sympy object, a Program, or infix text (parsed, never eval'd)."""
    if isinstance(expr, str):
        return parse(expr).to_sympy()
    if hasattr(expr, "to_sympy"):
        return expr.to_sympy()
    return sp.sympify(expr, strict=True)


def round_floats(expr: sp.Expr, decimals: int = 3, fractions: bool = False) -> sp.Expr:
    """Round every float to ``decimals`` and make it an exact rational of that decimal value.

    ``fractions``: a float within ``FRACTION_RTOL`` of a fraction with a denominator up to
    ``MAX_DENOMINATOR`` becomes that fraction instead (4.73333333333333 is 71/15, 14.2/3).
    """
    floats = expr.atoms(sp.Float)
    if not floats:
        return expr

    def exact(f: sp.Float) -> sp.Rational:
        if fractions:
            r = sp.Rational(float(f)).limit_denominator(MAX_DENOMINATOR)
            if abs(float(r) - float(f)) <= FRACTION_RTOL * abs(float(f)):
                return r
        return sp.Rational(f"{float(f):.{decimals}f}")

    return expr.xreplace({f: exact(f) for f in floats})


def is_recovered(
    found: Any,
    truth: Any,
    *,
    decimals: int = 3,
    domain: Domain | None = None,
    timeout: float = 10.0,
    rtol: float = 0.0,
) -> bool:
    """True when ``found`` is symbolically equivalent to ``truth`` after rounding floats.

    ``domain`` gives each variable's (low, high), x1 first, as a task's train range does; it
    decides where variables are positive and where the numeric pre-check samples.
    ``timeout`` bounds the symbolic work in seconds; running out counts as not recovered.
    ``rtol`` > 0 also accepts constants within that tolerance (see the module docstring).
    """
    if _exactly_recovered(found, truth, decimals, domain, timeout):
        return True
    if rtol <= 0:
        return False
    refitted = _refit_constants(found, truth, domain, rtol)
    return refitted is not None and _exactly_recovered(refitted, truth, decimals, domain, timeout)


def _refit_constants(found: Any, truth: Any, domain: Domain | None, rtol: float) -> sp.Expr | None:
    """``found`` with its constants moved (each by at most ``rtol * |c|``) to match the
    truth on the domain; None when no such move makes the two agree."""
    from scipy.optimize import least_squares

    try:
        a, b = to_sympy(found), to_sympy(truth)
    except Exception:  # noqa: BLE001 - an unparsable candidate recovers nothing
        return None
    params: list[sp.Symbol] = []
    values: list[float] = []
    shape = _parametrize(a, params, values)
    if not params:
        return None
    names = sorted({s.name for s in a.free_symbols | b.free_symbols})
    n = len(names)
    low, high = _box(names, domain) if domain else (np.full(n, -2.0), np.full(n, 2.0))
    points = np.random.default_rng(1).uniform(low, high, size=(_POINTS, n))
    env = {m: points[:, i] for i, m in enumerate(names)}
    c0 = np.array(values)
    try:
        with np.errstate(all="ignore"):
            target = np.broadcast_to(numeric_value(b, env), (_POINTS,))
            keep = np.isfinite(target)

            def residual(c: np.ndarray) -> np.ndarray:
                values = dict(env, **{p.name: v for p, v in zip(params, c)})
                out = np.broadcast_to(numeric_value(shape, values), (_POINTS,))[keep] - target[keep]
                return np.where(np.isfinite(out), out, 1e6)

            if keep.sum() < len(c0) + 1:
                return None
            fit = least_squares(residual, c0, xtol=1e-14, ftol=1e-14, gtol=1e-14, max_nfev=200 * len(c0))
    except (_Unsupported, RecursionError, TypeError, ValueError, OverflowError, ZeroDivisionError):
        return None
    scale = np.sqrt(np.mean(target[keep] ** 2)) + 1e-300
    if not np.all(np.abs(fit.x - c0) <= rtol * np.abs(c0)):
        return None
    if np.sqrt(np.mean(fit.fun**2)) > 1e-6 * scale:
        return None
    return shape.xreplace({p: sp.Float(v) for p, v in zip(params, fit.x)})


def _parametrize(expr: sp.Expr, params: list[sp.Symbol], values: list[float]) -> sp.Expr:
    """``expr`` with its constants as fresh symbols (appended to ``params``, their values to
    ``values``): every float, and every whole or rational coefficient or term other than ±1
    (``2*sqrt(x)`` states the constant 2 as surely as ``2.0*sqrt(x)``), but not exact
    exponents, which are structure (``x**2``, ``sqrt``)."""

    def fresh(number: sp.Expr) -> sp.Symbol:
        params.append(sp.Symbol(f"_c{len(params)}"))
        values.append(float(number))
        return params[-1]

    if isinstance(expr, sp.Float):
        return fresh(expr)
    if expr.is_Atom:
        return expr
    if expr.is_Pow:
        base = _parametrize(expr.args[0], params, values)
        exponent = expr.args[1]
        exponent = (
            fresh(exponent) if isinstance(exponent, sp.Float) else _parametrize(exponent, params, values)
        )
        return sp.Pow(base, exponent, evaluate=False)
    if expr.is_Add or expr.is_Mul:
        args = [
            fresh(arg) if arg.is_Rational and arg not in (1, -1) else _parametrize(arg, params, values)
            for arg in expr.args
        ]
        return expr.func(*args, evaluate=False)
    return expr.func(*[_parametrize(arg, params, values) for arg in expr.args])


def _exactly_recovered(found: Any, truth: Any, decimals: int, domain: Domain | None, timeout: float) -> bool:
    """The exact check: equal after rounding floats to ``decimals``, or else with floats that
    are fractions to 1e-9 written as fractions (module docstring)."""
    return _equal(found, truth, decimals, domain, timeout, False) or _equal(
        found, truth, decimals, domain, timeout, True
    )


def _equal(
    found: Any, truth: Any, decimals: int, domain: Domain | None, timeout: float, fractions: bool
) -> bool:
    try:
        a, b = to_sympy(found), to_sympy(truth)
        if a.atoms(sp.Float) or b.atoms(sp.Float):
            # fold numeric sub-expressions (2.38*sin(1)) into one float before rounding; common
            # factors come out first, so sqrt(2*x1 - 2*x2) rounds as 1.414*sqrt(x1 - x2)
            a, b = (sp.nfloat(sp.factor_terms(e), exponent=False) for e in (a, b))
        elif fractions:
            return False  # no floats: the first attempt said all there is
        a, b = round_floats(a, decimals, fractions), round_floats(b, decimals, fractions)
    except Exception:  # an unparsable or non-symbolic candidate recovers nothing
        return False
    if a.has(sp.nan, sp.zoo, sp.oo, -sp.oo) or b.has(sp.nan, sp.zoo, sp.oo, -sp.oo):
        return False
    names = sorted({s.name for s in a.free_symbols | b.free_symbols})
    real = {n: sp.Symbol(n, real=True) for n in names}
    a, b = _even_logs(_rename(a, real)), _even_logs(_rename(b, real))

    verdict = _numeric_check(a, b, [real[n] for n in names], domain)
    if verdict == "different":
        return False
    positive = _positive_names(names, domain) if domain is not None else set(names)
    if domain is None and verdict != "agree":
        positive = set()
    try:
        with _time_limit(timeout):
            if _is_zero(a - b):
                return True
            if positive:
                assumed = {n: sp.Symbol(n, positive=True) if n in positive else real[n] for n in names}
                a, b = _rename(a, assumed), _rename(b, assumed)
                if _is_zero(a - b, logs=True):
                    return True
                # Roots that sympy will not combine (x/sqrt(1 - v**2/c**2) against
                # x*c/sqrt(c**2 - v**2)): equal squares, and equal values where both were sampled.
                return verdict == "agree" and _is_zero(a**2 - b**2, logs=True)
            return False
    except (_Timeout, RecursionError):
        return False
    except Exception:  # sympy raises many kinds on odd input; none of them means "equal"
        return False


def _even_logs(expr: sp.Expr) -> sp.Expr:
    """``log(u**2k)`` written as ``2k*log(Abs(u))``: an identity for every real u != 0 that
    sympy does not apply on its own (``1.065*log(x**2)`` is ``2.13*log(Abs(x))``)."""
    return expr.replace(
        lambda e: isinstance(e, sp.log) and e.args[0].is_Pow and e.args[0].exp.is_even is True,
        lambda e: e.args[0].exp * sp.log(sp.Abs(e.args[0].base)),
    )


def _rename(expr: sp.Expr, symbols: dict[str, sp.Symbol]) -> sp.Expr:
    return expr.xreplace({s: symbols[s.name] for s in expr.free_symbols})


def _positive_names(names: list[str], domain: Domain) -> set[str]:
    """Variables x<k> whose domain lies in [0, inf); a zero bound has measure zero in sampling."""
    out = set()
    for name in names:
        if name.startswith("x") and name[1:].isdigit():
            k = int(name[1:]) - 1
            if 0 <= k < len(domain) and float(domain[k][0]) >= 0:
                out.add(name)
    return out


def _is_zero(diff: sp.Expr, logs: bool = False) -> bool:
    """Cheap rewrites first; ``simplify`` only when they do not settle it."""
    if diff == 0:
        return True
    diff = sp.expand(diff)
    if diff == 0:
        return True
    if logs and (sp.expand(sp.expand_log(diff, force=True)) == 0 or sp.powsimp(diff, force=True) == 0):
        return True
    return sp.simplify(diff) == 0


def _numeric_check(a: sp.Expr, b: sp.Expr, symbols: list[sp.Symbol], domain: Domain | None) -> str:
    """'different', 'agree' (everywhere both are real and finite), or 'unknown'.

    Points where one side is undefined (log of a negative) are not counted as a difference:
    symbolic equivalence under sympy's principal branches can still hold there.
    """
    rng = np.random.default_rng(0)
    n = len(symbols)
    if domain is not None:
        boxes = [_box([s.name for s in symbols], domain) if symbols else (np.zeros(1), np.ones(1))]
    else:
        boxes = [(np.full(n, -2.0), np.full(n, 2.0)), (np.full(n, 0.05), np.full(n, 2.0))]
    try:
        agree = True
        for low, high in boxes:
            points = rng.uniform(low, high, size=(_POINTS, n))
            env = {s.name: points[:, i] for i, s in enumerate(symbols)}
            with np.errstate(all="ignore"):
                fa = np.broadcast_to(numeric_value(a, env), (_POINTS,))
                fb = np.broadcast_to(numeric_value(b, env), (_POINTS,))
                both = np.isfinite(fa) & np.isfinite(fb)
                gap = np.abs(fa - fb) > _RTOL * (1.0 + np.abs(fa) + np.abs(fb))
            if (both & gap).any():
                return "different"
            agree = agree and bool(both.any())
        return "agree" if agree else "unknown"
    except (_Unsupported, RecursionError, TypeError, ValueError, OverflowError):
        return "unknown"


def _box(names: list[str], domain: Domain) -> tuple[np.ndarray, np.ndarray]:
    """Each variable's (low, high) from the domain, as arrays in the order of ``names``."""
    columns = [_index(sp.Symbol(m), len(domain)) for m in names]
    return np.array([float(domain[k][0]) for k in columns]), np.array([float(domain[k][1]) for k in columns])


def _index(symbol: sp.Symbol, size: int) -> int:
    """Column of the domain for a variable; names other than x<k> use the first range."""
    name = symbol.name
    if name.startswith("x") and name[1:].isdigit() and 1 <= int(name[1:]) <= size:
        return int(name[1:]) - 1
    return 0


def numeric_value(expr: sp.Expr, env: dict[str, np.ndarray]) -> np.ndarray:
    """Evaluate a sympy tree on arrays over the reals by walking it (no lambdify, no exec)."""
    if expr.is_Symbol:
        return env[expr.name]
    if expr.is_number:
        value = complex(expr.evalf())
        return np.float64(value.real if value.imag == 0 else np.nan)
    args = [numeric_value(arg, env) for arg in expr.args]
    if expr.is_Add:
        return sum(args[1:], args[0])
    if expr.is_Mul:
        out = args[0]
        for arg in args[1:]:
            out = out * arg
        return out
    if expr.is_Pow:
        return np.power(np.asarray(args[0], dtype=np.float64), args[1])
    func = _NUMPY.get(expr.func)
    if func is None or len(args) != 1:
        raise _Unsupported(expr.func)
    return func(args[0])


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise _Timeout after ``seconds`` when SIGALRM is usable (main thread, POSIX); else no limit."""
    usable = (
        seconds > 0 and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    start = time.monotonic()
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    if 0 < outer < seconds:  # never outlive an enclosing timer (e.g. pytest-timeout)
        signal.setitimer(signal.ITIMER_REAL, outer)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer > 0:  # re-arm the enclosing timer with what is left of it
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 1e-3))
