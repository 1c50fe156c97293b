"""Ground truths: sympy expressions read from text by a parser, apart from the search's language.

A task's truth may use functions the search cannot (``sinh(x1)`` with the Koza set is a fair
task: the search must find ``(exp(x1) - exp(-x1))/2``), so a truth is not a
:class:`~simulator.program.Program`. It is read by the walk that reads programs
(:mod:`simulator.expression_reader`: Python's ``ast`` parser, never ``eval``) into a sympy
expression over x1..xn, and evaluated by walking the tree with numpy: any of the registry's
operators, the functions the recovery check knows besides them (``sinh``, ``cosh``,
``asin``, ``acos``, ``atan``, ``sign``), and the constants ``pi`` and ``E``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from simulator import operators
from simulator.expression_reader import ParseError, read_expression
from simulator.language import is_variable
from simulator.recovery import EXTRA_FUNCTIONS, numeric_value

_CONSTANTS = {"pi": sp.pi, "E": sp.E, "e": sp.E}
_BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
}


def _functions() -> dict[str, object]:
    """Function names a truth may call: the registry's operators (and aliases), then the extras."""
    out: dict[str, object] = {}
    for op in operators.OPERATORS.values():
        for name in (op.name, *op.aliases):
            out[name] = op.sympy
    out.update({f.__name__: f for f in EXTRA_FUNCTIONS})
    return out


@dataclass(frozen=True)
class _Sympy:
    """Builds a truth's sympy expression for :func:`read_expression`."""

    text: str
    functions: dict[str, object] = field(default_factory=_functions)

    def number(self, v: object, negative: bool) -> sp.Expr | None:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return None
        value = sp.Integer(v) if isinstance(v, int) else sp.Float(v)
        return -value if negative else value

    def name(self, name: str) -> sp.Expr | None:
        if is_variable(name):
            return sp.Symbol(name, real=True)
        return _CONSTANTS.get(name)

    def negate(self, value: sp.Expr) -> sp.Expr:
        return -value

    def binary(self, op: str, left: sp.Expr, right: sp.Expr) -> sp.Expr:
        return _BINARY[op](left, right)

    def function(self, name: str, n_args: int):
        f = self.functions.get(name)
        if f is None:
            known = ", ".join(sorted(self.functions))
            raise ParseError(f"unknown function {name!r} in {self.text!r}; known: {known}")

        def apply(args: list) -> sp.Expr:
            try:
                return f(*args)
            except TypeError:
                raise ParseError(f"{name} got {n_args} argument(s) in {self.text!r}") from None

        return apply


def parse_truth(text: str) -> sp.Expr:
    """A truth's sympy expression over real symbols x1..xn (``x`` reads as ``x1``)."""
    return read_expression(text, _Sympy(text))


def truth_n_vars(expr: sp.Expr) -> int:
    """The highest variable index the truth uses (0 for a constant)."""
    return max((int(s.name[1:]) for s in expr.free_symbols if is_variable(s.name)), default=0)


def truth_values(expr: sp.Expr, X: np.ndarray) -> np.ndarray:
    """The truth on every row of X (n, d), as float64 of shape (n,); non-finite values stay."""
    env = {f"x{i + 1}": np.asarray(X[:, i], dtype=np.float64) for i in range(X.shape[1])}
    with np.errstate(all="ignore"):
        value = numeric_value(expr, env)
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (X.shape[0],)).copy()
