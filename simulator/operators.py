"""The operator registry: one record per operator, read by everything else.

An operator's meaning lives here once, as DSO's tokens and SymbolicRegression.jl's
operators keep it: its arity, its numpy and torch functions, its sympy form, its first and
second derivatives, and its inverse. Execution, the parser, sympy export, the forward
flow's Jacobians, exact inverses, sub-goals and the recovery check all look operators up
here, so adding one (``sinh``, ``asin``) is one :func:`register` call, and
``tests/test_operators.py`` checks that each record's parts agree with one another.

Conventions, shared by every caller:
- ``derivative(a)`` is f'(a) for a unary operator; ``derivative(a, b)`` is (∂f/∂a, ∂f/∂b).
- ``second_derivative`` is the second derivative in each argument alone, in the same shape.
- ``inverse`` gives the hole's value from the output ``z``: ``inverse(z)`` for a unary
  operator, ``inverse(z, sibling, side)`` for a binary one, where ``side`` is the hole's side
  (0 left, 1 right) and ``sibling`` the other input's value. It returns ``(values, unique)``:
  NaN where no preimage exists, and whether the answer is the only one (an operator that is
  not one-to-one is undone on its principal branch).
- ``branches`` (operators that are not one-to-one) gives, from a principal preimage ``v``,
  the other preimages near it, shape (k, n): ``-v`` for square, ``pi - v`` and shifts by
  ``2 pi`` for sin. Sub-goals choose among them (:mod:`simulator.branches`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import sympy
import torch

Preimage = tuple[np.ndarray, bool]


@dataclass(frozen=True)
class Operator:
    """Everything the project knows about one operator."""

    name: str
    arity: int
    numpy: Callable
    torch: Callable
    sympy: Callable  # argument expressions -> sympy expression
    derivative: Callable
    second_derivative: Callable
    inverse: Callable[..., Preimage]
    commutative: bool = False
    aliases: tuple[str, ...] = ()  # other names the parser accepts ("Abs", "ln")
    sympy_function: type | None = None  # sympy's own function class, when there is one
    branches: Callable[[np.ndarray], np.ndarray] | None = None  # other preimages of a principal one


OPERATORS: dict[str, Operator] = {}


def register(op: Operator) -> Operator:
    """Add an operator to the registry (replacing one of the same name)."""
    if op.arity not in (1, 2):
        raise ValueError(f"operator {op.name!r}: arity must be 1 or 2, got {op.arity}")
    OPERATORS[op.name] = op
    return op


def get(name: str) -> Operator | None:
    """The record for ``name``, or None when it is not an operator."""
    return OPERATORS.get(name)


def _where(ok, v):
    with np.errstate(all="ignore"):
        return np.where(ok, v, np.nan)


def _ones(a):
    return np.ones_like(a)


def _zeros(a, *rest):
    return np.zeros_like(a) if not rest else (np.zeros_like(a), np.zeros_like(rest[0]))


def _unary(
    name, np_f, torch_f, sympy_f, d1, d2, inverse, injective, sympy_function=None, aliases=(), branches=None
):
    def inv(z):
        with np.errstate(all="ignore"):
            return inverse(z), injective

    return register(
        Operator(name, 1, np_f, torch_f, sympy_f, d1, d2, inv, False, aliases, sympy_function, branches)
    )


def _shifts(period: float, *maps: Callable) -> Callable[[np.ndarray], np.ndarray]:
    """Preimages ``m(v) + k * period`` for each map m and k in -1, 0, 1, except v itself."""

    def branches(v):
        rows = [m(v) + k * period for m in maps for k in (-1, 0, 1)]
        return np.stack(rows[:1] + rows[2:])  # rows[1] is the first map at k = 0: v itself

    return branches


# ----- unary -----------------------------------------------------------------------------
_unary("sin", np.sin, torch.sin, sympy.sin, np.cos, lambda a: -np.sin(a),
       lambda v: _where(np.abs(v) <= 1, np.arcsin(np.clip(v, -1, 1))), False, sympy.sin,
       branches=_shifts(2 * np.pi, lambda v: v, lambda v: np.pi - v))  # fmt: skip
_unary("cos", np.cos, torch.cos, sympy.cos, lambda a: -np.sin(a), lambda a: -np.cos(a),
       lambda v: _where(np.abs(v) <= 1, np.arccos(np.clip(v, -1, 1))), False, sympy.cos,
       branches=_shifts(2 * np.pi, lambda v: v, np.negative))  # fmt: skip
_unary("tan", np.tan, torch.tan, sympy.tan, lambda a: 1 + np.tan(a) ** 2,
       lambda a: 2 * np.tan(a) * (1 + np.tan(a) ** 2), np.arctan, False, sympy.tan,
       branches=lambda v: np.stack([v + k * np.pi for k in (-2, -1, 1, 2)]))  # fmt: skip
_unary("exp", np.exp, torch.exp, sympy.exp, np.exp, np.exp,
       lambda v: _where(v > 0, np.log(v)), True, sympy.exp)  # fmt: skip
_unary("log", np.log, torch.log, sympy.log, lambda a: 1 / a, lambda a: -1 / (a * a),
       np.exp, True, sympy.log, ("ln",))  # fmt: skip
_unary("sqrt", np.sqrt, torch.sqrt, sympy.sqrt, lambda a: 0.5 / np.sqrt(a), lambda a: -0.25 * a**-1.5,
       lambda v: _where(v >= 0, v * v), True)  # fmt: skip
_unary("neg", np.negative, torch.neg, lambda a: -a, lambda a: -np.ones_like(a), np.zeros_like,
       np.negative, True)  # fmt: skip
_unary("inv", np.reciprocal, torch.reciprocal, lambda a: 1 / a, lambda a: -1 / (a * a),
       lambda a: 2 / (a * a * a), lambda v: _where(v != 0, 1.0 / v), True)  # fmt: skip
_unary("square", np.square, torch.square, lambda a: a**2, lambda a: 2 * a, lambda a: np.full_like(a, 2.0),
       lambda v: _where(v >= 0, np.sqrt(v)), False, branches=lambda v: -v[None])  # fmt: skip
_unary("cube", lambda a: a * a * a, lambda a: a * a * a, lambda a: a**3, lambda a: 3 * a * a,
       lambda a: 6 * a, np.cbrt, True)  # fmt: skip
_unary("abs", np.abs, torch.abs, sympy.Abs, np.sign, np.zeros_like,
       lambda v: _where(v >= 0, v), False, sympy.Abs, ("Abs",), lambda v: -v[None])  # fmt: skip
_unary("tanh", np.tanh, torch.tanh, sympy.tanh, lambda a: 1 - np.tanh(a) ** 2,
       lambda a: -2 * np.tanh(a) * (1 - np.tanh(a) ** 2),
       lambda v: _where(np.abs(v) < 1, np.arctanh(v)), True, sympy.tanh)  # fmt: skip


# ----- binary ----------------------------------------------------------------------------
def _inv_add(z, s, side):
    return z - s, True


def _inv_sub(z, s, side):  # hole - s = z, or s - hole = z
    return (z + s if side == 0 else s - z), True


def _inv_mul(z, s, side):
    with np.errstate(all="ignore"):
        return np.where(s != 0, z / s, np.nan), True


def _inv_div(z, s, side):  # hole / s = z, or s / hole = z
    with np.errstate(all="ignore"):
        return (z * s if side == 0 else _where(z != 0, s / z)), True


def _inv_pow(z, s, side):
    with np.errstate(all="ignore"):
        if side == 0:  # hole ** s = z
            integer = np.isclose(s, np.round(s)) & (s != 0)
            odd = integer & (np.round(s).astype(np.int64) % 2 == 1)
            root = np.abs(z) ** (1.0 / np.where(s != 0, s, np.nan))
            out = np.where(odd, np.sign(z) * root, np.where(z >= 0, root, np.nan))
            return out, bool(np.all(odd | ~integer))
        ok = (s > 0) & (s != 1) & (z > 0)  # s ** hole = z
        return np.where(ok, np.log(np.where(ok, z, 1.0)) / np.log(np.where(ok, s, 2.0)), np.nan), True


def _pow_d1(a, b):
    with np.errstate(all="ignore"):
        return b * a ** (b - 1), np.where(a > 0, a**b * np.log(np.abs(a)), 0.0)


def _pow_d2(a, b):
    with np.errstate(all="ignore"):
        return b * (b - 1) * a ** (b - 2), np.where(a > 0, a**b * np.log(np.abs(a)) ** 2, 0.0)


def _binary(name, np_f, torch_f, sympy_f, d1, d2, inverse, commutative=False):
    return register(Operator(name, 2, np_f, torch_f, sympy_f, d1, d2, inverse, commutative))


_binary(
    "add", np.add, torch.add, lambda a, b: a + b, lambda a, b: (_ones(a), _ones(b)), _zeros, _inv_add, True
)
_binary(
    "sub", np.subtract, torch.sub, lambda a, b: a - b, lambda a, b: (_ones(a), -_ones(b)), _zeros, _inv_sub
)
_binary("mul", np.multiply, torch.mul, lambda a, b: a * b, lambda a, b: (b, a), _zeros, _inv_mul, True)
_binary("div", np.divide, torch.div, lambda a, b: a / b, lambda a, b: (1 / b, -a / (b * b)),
        lambda a, b: (np.zeros_like(a), 2 * a / (b * b * b)), _inv_div)  # fmt: skip
_binary("pow", np.power, torch.pow, lambda a, b: a**b, _pow_d1, _pow_d2, _inv_pow)


def sympy_functions() -> dict[type, Operator]:
    """Operators keyed by sympy's function class (``sympy.sin`` -> sin), for reading sympy trees."""
    return {op.sympy_function: op for op in OPERATORS.values() if op.sympy_function is not None}
