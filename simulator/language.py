"""The program language: operator vocabulary, leaves, and function sets.

Everything else in the project names operators by the strings defined here, so an
unknown name is rejected once, at this boundary, with a clear message.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache

from simulator import operators

# Snapshots of the registry at import, in its order (the models' vocabulary follows it).
UNARY: tuple[str, ...] = tuple(n for n, op in operators.OPERATORS.items() if op.arity == 1)
BINARY: tuple[str, ...] = tuple(n for n, op in operators.OPERATORS.items() if op.arity == 2)
OPERATORS: tuple[str, ...] = BINARY + UNARY
COMMUTATIVE: frozenset[str] = frozenset(n for n, op in operators.OPERATORS.items() if op.commutative)
CONST = "const"
MAX_LITERAL = 9

_VARIABLE = re.compile(r"^x([1-9][0-9]*)$")
_LITERAL = re.compile(r"^[0-9]$")

KOZA: tuple[str, ...] = ("add", "sub", "mul", "div", "sin", "cos", "exp", "log")
FUNCTION_SETS: dict[str, tuple[str, ...]] = {
    "koza": KOZA,
    "ckoza": KOZA + (CONST,),
    "arith": ("add", "sub", "mul", "div", CONST),
    "full": OPERATORS + (CONST, "1", "2"),
}


class LanguageError(ValueError):
    """A name or program that the language does not contain."""


def is_variable(token: str) -> bool:
    return _VARIABLE.match(token) is not None


def variable_index(token: str) -> int:
    """Zero-based column of X that variable token ``x<k>`` reads."""
    return int(token[1:]) - 1


def is_literal(token: str) -> bool:
    return _LITERAL.match(token) is not None


@cache  # a token's spelling decides it, and the planner asks millions of times
def is_leaf(token: str) -> bool:
    return token == CONST or is_variable(token) or is_literal(token)


def arity(token: str) -> int:
    op = operators.OPERATORS.get(token)
    if op is not None:
        return op.arity
    if is_leaf(token):
        return 0
    raise LanguageError(
        f"unknown operator or leaf {token!r}; operators are: {', '.join(operators.OPERATORS)}"
    )


@dataclass(frozen=True)
class FunctionSet:
    """The operators and leaves a task may use.

    ``leaves`` holds the variables x1..x{n_vars}, ``const`` when constants are fitted,
    and any small integer literals.
    """

    unary: tuple[str, ...]
    binary: tuple[str, ...]
    leaves: tuple[str, ...]
    name: str = ""

    @property
    def n_vars(self) -> int:
        return sum(1 for t in self.leaves if is_variable(t))

    @property
    def has_const(self) -> bool:
        return CONST in self.leaves

    @property
    def tokens(self) -> tuple[str, ...]:
        return self.binary + self.unary + self.leaves

    def with_vars(self, n_vars: int) -> FunctionSet:
        """The same operators over a different number of variables."""
        others = tuple(t for t in self.leaves if not is_variable(t))
        return FunctionSet(self.unary, self.binary, variables(n_vars) + others, self.name)

    def to_names(self) -> list[str]:
        """Names as a task file writes them (variables implied)."""
        return [t for t in self.binary + self.unary + self.leaves if not is_variable(t)]

    @classmethod
    def from_names(cls, names: str | list | tuple, n_vars: int = 1) -> FunctionSet:
        """Build from a named set (``Koza``, ``CKoza``) or a list of operator names.

        Integers and digit strings in the list are literal leaves; ``const`` means
        fitted constants. Unknown names raise a :class:`LanguageError`.
        """
        if n_vars < 1:
            raise LanguageError(f"a function set needs at least one variable, got {n_vars}")
        label = ""
        if isinstance(names, str):
            label = names
            key = names.strip().lower()
            if key in FUNCTION_SETS:
                names = FUNCTION_SETS[key]
            else:
                names = [n for n in re.split(r"[,\s]+", names) if n]
        unary, binary, leaves = [], [], []
        for raw in names:
            name = str(raw).strip()
            low = name.lower()
            if low in ("const", "c"):
                leaves.append(CONST)
            elif is_literal(name):
                leaves.append(name)
            elif (op := operators.get(low)) is not None:
                (binary if op.arity == 2 else unary).append(low)
            else:
                names = list(operators.OPERATORS) + [CONST] + sorted(FUNCTION_SETS)
                close = difflib.get_close_matches(low, names, n=3, cutoff=0.6)
                hint = f"did you mean {', '.join(close)}? " if close else ""
                raise LanguageError(
                    f"unknown operator {name!r} in function set; {hint}known: {', '.join(names)}"
                )
        if not unary and not binary:
            raise LanguageError("a function set needs at least one operator")
        dedup = lambda xs: tuple(dict.fromkeys(xs))  # noqa: E731
        return cls(dedup(unary), dedup(binary), variables(n_vars) + dedup(leaves), label)


def variables(n_vars: int) -> tuple[str, ...]:
    return tuple(f"x{i + 1}" for i in range(n_vars))
