"""Ground truths: sympy expressions read from text by a parser, apart from the search's language.

A task's truth may use functions the search cannot (``sinh(x1)`` with the Koza set is a fair
task: the search must find ``(exp(x1) - exp(-x1))/2``), so a truth is not a
:class:`~simulator.program.Program`. It is read with Python's ``ast`` parser (never ``eval``)
into a sympy expression over x1..xn, and evaluated by walking the tree with numpy: any of the
registry's operators, the functions the recovery check knows besides them (``sinh``,
``cosh``, ``asin``, ``acos``, ``atan``, ``sign``), and the constants ``pi`` and ``E``.
"""

from __future__ import annotations

import ast

import numpy as np
import sympy as sp

from simulator import operators
from simulator.language import is_variable
from simulator.program import ParseError, expression_tree
from simulator.recovery import EXTRA_FUNCTIONS, numeric_value

_CONSTANTS = {"pi": sp.pi, "E": sp.E, "e": sp.E}
_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}


def _functions() -> dict[str, object]:
    """Function names a truth may call: the registry's operators (and aliases), then the extras."""
    out: dict[str, object] = {}
    for op in operators.OPERATORS.values():
        for name in (op.name, *op.aliases):
            out[name] = op.sympy
    out.update({f.__name__: f for f in EXTRA_FUNCTIONS})
    return out


def parse_truth(text: str) -> sp.Expr:
    """A truth's sympy expression over real symbols x1..xn (``x`` reads as ``x1``)."""
    tree = expression_tree(text)
    functions = _functions()

    def walk(node: ast.AST) -> sp.Expr:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, (int, float))
            and not isinstance(node.value, bool)
        ):
            return sp.Integer(node.value) if isinstance(node.value, int) else sp.Float(node.value)
        if isinstance(node, ast.Name):
            name = "x1" if node.id == "x" else node.id
            if is_variable(name):
                return sp.Symbol(name, real=True)
            if name in _CONSTANTS:
                return _CONSTANTS[name]
            raise ParseError(f"unknown name {node.id!r} in {text!r}; variables are x1, x2, ...")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            f = functions.get(node.func.id)
            if f is None:
                known = ", ".join(sorted(functions))
                raise ParseError(f"unknown function {node.func.id!r} in {text!r}; known: {known}")
            try:
                return f(*[walk(a) for a in node.args])
            except TypeError:
                raise ParseError(f"{node.func.id} got {len(node.args)} argument(s) in {text!r}") from None
        snippet = ast.unparse(node) if hasattr(ast, "unparse") else type(node).__name__
        raise ParseError(f"unsupported syntax {snippet!r} in {text!r}")

    try:
        return walk(tree)
    except RecursionError:
        raise ParseError(f"expression nests too deeply: {text[:60]!r}...") from None


def truth_n_vars(expr: sp.Expr) -> int:
    """The highest variable index the truth uses (0 for a constant)."""
    return max((int(s.name[1:]) for s in expr.free_symbols if is_variable(s.name)), default=0)


def truth_values(expr: sp.Expr, X: np.ndarray) -> np.ndarray:
    """The truth on every row of X (n, d), as float64 of shape (n,); non-finite values stay."""
    env = {f"x{i + 1}": np.asarray(X[:, i], dtype=np.float64) for i in range(X.shape[1])}
    with np.errstate(all="ignore"):
        value = numeric_value(expr, env)
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (X.shape[0],)).copy()
