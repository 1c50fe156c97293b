"""Physical units: which programs are dimensionally consistent, and what units their
constants carry.

A dimension is a vector of exponents over the SI base dimensions (m, kg, s, A, K, mol, cd).
Unit strings are read by pint, never by a parser of ours. A program is consistent when one
choice of units for its constants makes it so: the arguments of exp, log, sin, cos and the
like are dimensionless, the two sides of a sum carry the same units, an exponent is
dimensionless, and the whole carries the target's units. A constant may carry any units (a
gas constant does), so each node's dimension is an affine function of the constants' unknown
dimensions, every rule is a linear equation in them, and consistency is whether that linear
system has a solution. The same solution gives each constant's units, where the data fix them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

import numpy as np

from simulator.language import CONST, is_literal, is_variable, variable_index
from simulator.operators import OPERATORS
from simulator.program import Program

BASE = ("[length]", "[mass]", "[time]", "[current]", "[temperature]", "[substance]", "[luminosity]")
BASE_SYMBOLS = ("m", "kg", "s", "A", "K", "mol", "cd")
# Derived units a constant's units are written with, when one makes the writing shorter:
# a gas constant as J/(mol*K), not kg*m^2/(s^2*mol*K).
NAMED = {
    "N": (1, 1, -2, 0, 0, 0, 0),
    "J": (2, 1, -2, 0, 0, 0, 0),
    "W": (2, 1, -3, 0, 0, 0, 0),
    "Pa": (-1, 1, -2, 0, 0, 0, 0),
    "C": (0, 0, 1, 1, 0, 0, 0),
    "V": (2, 1, -3, -1, 0, 0, 0),
    "ohm": (2, 1, -3, -2, 0, 0, 0),
}
# Operators whose argument must be dimensionless, and the power each other unary operator
# raises its argument's units to.
DIMENSIONLESS_ARGUMENT = frozenset({"sin", "cos", "tan", "exp", "log", "tanh"})
UNARY_POWER = {"sqrt": 0.5, "square": 2.0, "cube": 3.0, "inv": -1.0, "neg": 1.0, "abs": 1.0}
TOLERANCE = 1e-8


class UnitsError(ValueError):
    """A units string that does not parse, or units that do not match the data's columns."""


@cache
def _registry():
    import pint  # loaded only when units are given

    return pint.UnitRegistry()


def dimension(text: str) -> tuple[float, ...]:
    """The SI base exponents of a unit string (``"J/(mol*K)"``, ``"m/s^2"``, ``"1"``)."""
    text = str(text).strip()
    if text in ("", "1", "dimensionless"):
        return (0.0,) * len(BASE)
    registry = _registry()
    try:
        found = registry.parse_units(text).dimensionality
    except Exception as exc:  # pint raises several kinds (undefined unit, syntax, tokenizer)
        raise UnitsError(f"units {text!r}: not a unit pint can read ({type(exc).__name__})") from None
    unknown = [d for d in found if d not in BASE]
    if unknown:
        raise UnitsError(f"units {text!r}: dimension {unknown[0]} is not an SI base dimension")
    return tuple(float(found.get(d, 0)) for d in BASE)


def format_dimension(dim: Sequence[float]) -> str:
    """Units written shortly: base symbols, or one named derived unit times them."""
    dim = np.asarray(dim, dtype=float)
    if not np.any(np.abs(dim) > TOLERANCE):
        return "1"
    options = [("", 0.0, dim)]
    for name, named in NAMED.items():
        for power in (1.0, -1.0, 2.0, -2.0):
            options.append((name, power, dim - power * np.asarray(named, dtype=float)))
    name, power, rest = min(options, key=lambda o: np.abs(o[2]).sum() + 2 * abs(o[1]))
    named = name if abs(power) == 1 else f"{name}^2"
    top: list[str] = [named] if power > 0 else []
    bottom: list[str] = [named] if power < 0 else []
    for symbol, e in zip(BASE_SYMBOLS, rest, strict=True):
        f = Fraction(float(e)).limit_denominator(12)
        if f == 0:
            continue
        part = (
            symbol if abs(f) == 1 else f"{symbol}^{abs(f)}" if f.denominator == 1 else f"{symbol}^({abs(f)})"
        )
        (top if f > 0 else bottom).append(part)
    text = "*".join(top) or "1"
    if bottom:
        text += "/" + (bottom[0] if len(bottom) == 1 else "(" + "*".join(bottom) + ")")
    return text


@dataclass(frozen=True)
class Units:
    """The units of the data: one dimension per column of X, and the target's."""

    variables: tuple[tuple[float, ...], ...]
    target: tuple[float, ...]
    text: tuple[tuple[str, str], ...] = ()  # (name, units string) as given, for the record

    @classmethod
    def parse(cls, spec: str | Mapping[str, str], columns: Sequence[str], target: str) -> Units:
        """Units from ``"a=m,T=s"`` or ``{"a": "m", "T": "s"}``, naming every column and the target."""
        if isinstance(spec, str):
            pairs = {}
            for part in filter(None, (p.strip() for p in spec.split(","))):
                name, sep, unit = part.partition("=")
                if not sep or not name.strip():
                    raise UnitsError(f"units: {part!r} is not name=unit (e.g. --units 'a=m,T=s')")
                pairs[name.strip()] = unit.strip()
        elif isinstance(spec, Mapping):
            pairs = {str(k): str(v) for k, v in spec.items()}
        else:
            raise UnitsError(
                f"units must be a 'name=unit,...' string or a mapping, got {type(spec).__name__}"
            )
        names = [*columns, target]
        unknown = [k for k in pairs if k not in names]
        if unknown:
            raise UnitsError(f"units: {unknown[0]!r} is not a column; columns are {', '.join(names)}")
        missing = [k for k in names if k not in pairs]
        if missing:
            raise UnitsError(f"units: no units for {', '.join(missing)} (give '1' for a pure number)")
        dims = {k: _named(k, v) for k, v in pairs.items()}
        return cls(tuple(dims[c] for c in columns), dims[target], tuple((k, pairs[k]) for k in names))

    def check(self, program: Program) -> Consistency | None:
        """The units of ``program``'s constants, or None when no units make it consistent."""
        return consistency(program, self)

    def to_dict(self) -> dict[str, str]:
        return dict(self.text)


def _named(name: str, unit: str) -> tuple[float, ...]:
    try:
        return dimension(unit)
    except UnitsError as exc:
        raise UnitsError(f"{name}: {exc}") from None


@dataclass(frozen=True)
class Consistency:
    """A consistent program's constants' units: one dimension per const leaf in prefix
    order, None for a constant whose units the law leaves free (as in c1*c2*x)."""

    constants: tuple[tuple[float, ...] | None, ...]

    def describe(self) -> list[str]:
        return ["free" if d is None else format_dimension(d) for d in self.constants]


def _value(op: str, *args) -> float | None:
    """The value of an operator on numbers (a subtree of constants and literals), else None."""
    values = [a[2] for a in args]
    if any(v is None for v in values):
        return None
    with np.errstate(all="ignore"):
        out = float(OPERATORS[op].numpy(*(np.float64(v) for v in values)))
    return out if np.isfinite(out) else None


def consistency(program: Program, units: Units) -> Consistency | None:
    """Solve the program's dimension equations (module docstring); None when they have no solution."""
    tokens = program.tokens
    n_const = len(program.consts)
    rows_k: list[np.ndarray] = []
    rows_b: list[np.ndarray] = []
    zero_k, zero_b = np.zeros(n_const), np.zeros(len(BASE))  # a column per constant

    def equal(a, b) -> None:
        rows_k.append(a[0] - b[0])
        rows_b.append(b[1] - a[1])

    # a stack item: (coefficients over the unknowns, base exponents, the leaf's value or None)
    stack: list[tuple[np.ndarray, np.ndarray, float | None]] = []
    const_index = n_const
    for t in reversed(tokens):
        if t == CONST:
            const_index -= 1
            k = zero_k.copy()
            k[const_index] = 1.0
            stack.append((k, zero_b, program.consts[const_index]))
        elif is_variable(t):
            i = variable_index(t)
            if i >= len(units.variables):
                raise UnitsError(
                    f"the program reads {t}, but units are given for {len(units.variables)} columns"
                )
            stack.append((zero_k, np.asarray(units.variables[i], dtype=float), None))
        elif is_literal(t):
            stack.append((zero_k, zero_b, float(t)))
        elif t in DIMENSIONLESS_ARGUMENT:
            arg = stack.pop()
            equal(arg, (zero_k, zero_b))
            stack.append((zero_k, zero_b, _value(t, arg)))
        elif t in UNARY_POWER:
            k, b, v = stack.pop()
            p = UNARY_POWER[t]
            stack.append((p * k, p * b, _value(t, (k, b, v))))
        else:  # binary: the left operand is on top of the stack
            left, right = stack.pop(), stack.pop()
            value = _value(t, left, right)
            if t in ("add", "sub"):
                equal(left, right)
                stack.append((left[0], left[1], value))
            elif t == "mul":
                stack.append((left[0] + right[0], left[1] + right[1], value))
            elif t == "div":
                stack.append((left[0] - right[0], left[1] - right[1], value))
            elif t == "pow":
                equal(right, (zero_k, zero_b))  # the exponent is a pure number
                if right[2] is not None:  # a number: the base's units to that power
                    stack.append((right[2] * left[0], right[2] * left[1], value))
                else:  # an exponent that varies: only a pure number may be raised to it
                    equal(left, (zero_k, zero_b))
                    stack.append((zero_k, zero_b, None))
            else:
                raise UnitsError(f"no units rule for the operator {t!r}")
    (k, b, _) = stack.pop()
    equal((k, b, None), (zero_k, np.asarray(units.target, dtype=float)))
    K, B = np.array(rows_k), np.array(rows_b)
    used = np.flatnonzero(np.any(np.abs(K) > 0, axis=0))
    if used.size == 0:
        return Consistency(()) if np.all(np.abs(B) < TOLERANCE) else None
    Ku = K[:, used]
    U, *_ = np.linalg.lstsq(Ku, B, rcond=None)
    if np.max(np.abs(Ku @ U - B)) > TOLERANCE * (1 + np.abs(B).max()):
        return None
    projector = np.linalg.pinv(Ku) @ Ku  # onto the row space: the unknowns the equations fix
    solved = {int(c): U[j] for j, c in enumerate(used) if projector[j, j] > 1 - 1e-6}
    return Consistency(
        tuple(tuple(float(x) for x in solved[i]) if i in solved else None for i in range(n_const))
    )
