"""Expression text read by one walk of Python's ``ast`` tree (never ``eval``), built as the caller says.

A program (:func:`simulator.program.parse`) and a task's truth
(:func:`simulator.truth.parse_truth`) are written in the same syntax, sympy's, which is
Python's expression syntax, but build different things: prefix tokens in the search's
language, or a sympy expression that may use functions the language lacks. Both read the text
here, so they accept the same syntax and say the same about text they cannot read; a
:class:`Builder` decides what each number, name, operator and function becomes.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any, Protocol

BINARY = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}


class ParseError(ValueError):
    """Text that is not a program of the language (or not a truth the parser can read)."""


class Builder(Protocol):
    """What the walk builds: each method gets what it reads, bottom up."""

    def number(self, value: object, negative: bool) -> Any:
        """A literal (negated when written ``-literal``); None when it is no number here."""

    def name(self, name: str) -> Any:
        """A variable (``x`` already read as ``x1``) or a named constant; None when unknown."""

    def negate(self, value: Any) -> Any:
        """``-value``."""

    def binary(self, op: str, left: Any, right: Any) -> Any:
        """``left op right``, op one of add, sub, mul, div, pow."""

    def function(self, name: str, n_args: int) -> Callable[[list], Any]:
        """The function ``name`` applied to its arguments, asked before they are read, so an
        unknown name is the error even when its arguments hold another; raises ParseError."""


def expression_tree(text: str) -> ast.Expression:
    """Python's own parse of an expression (syntax only, nothing runs); a ParseError otherwise."""
    if not isinstance(text, str) or not text.strip():
        raise ParseError("cannot parse an empty expression")
    try:
        return ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise ParseError(f"cannot parse expression {text!r}: {err.msg}") from None


def read_expression(text: str, build: Builder) -> Any:
    """``text`` built bottom up by ``build``; a ParseError for anything it cannot read."""
    tree = expression_tree(text)

    def unsupported(node: ast.AST) -> ParseError:
        return ParseError(f"unsupported syntax {ast.unparse(node)!r} in {text!r}")

    def walk(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
            return build.binary(BINARY[type(node.op)], walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            if isinstance(node.operand, ast.Constant):  # -2.5 is one number, not neg(2.5)
                value = build.number(node.operand.value, negative=True)
                if value is None:
                    raise unsupported(node.operand)
                return value
            return build.negate(walk(node.operand))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
            return walk(node.operand)
        if isinstance(node, ast.Constant):
            value = build.number(node.value, negative=False)
            if value is None:
                raise unsupported(node)
            return value
        if isinstance(node, ast.Name):
            value = build.name("x1" if node.id == "x" else node.id)
            if value is None:
                raise ParseError(f"unknown name {node.id!r} in {text!r}; variables are x1, x2, ...")
            return value
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            apply = build.function(node.func.id, len(node.args))
            return apply([walk(a) for a in node.args])
        raise unsupported(node)

    try:
        return walk(tree)
    except RecursionError:
        raise ParseError(f"expression nests too deeply: {text[:60]!r}...") from None
