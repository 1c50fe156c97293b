"""Programs: expression trees stored as prefix token tuples.

A prefix tuple is hashable, cheap to splice (edits are slices), and evaluates with one
reverse stack pass, which is all the simulator needs. Text is read by
:mod:`simulator.expression_reader` (Python's ``ast`` parser, never ``eval``), as truths are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import sympy

from simulator import operators
from simulator.expression_reader import ParseError, read_expression
from simulator.language import (
    COMMUTATIVE,
    CONST,
    LanguageError,
    arity,
    is_literal,
    is_variable,
    variable_index,
)


@dataclass(frozen=True)
class Program:
    """An expression tree in prefix order.

    ``consts`` holds one value per ``const`` leaf, in prefix order; new constants start
    at 1.0 until fitted. Equality includes the constant values; :attr:`key` ignores them.
    """

    tokens: tuple[str, ...]
    consts: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.tokens:
            raise LanguageError("a program needs at least one token")
        n_const = sum(1 for t in self.tokens if t == CONST)
        if len(self.consts) != n_const:
            if self.consts:
                raise LanguageError(f"program has {n_const} const leaves but {len(self.consts)} values")
            object.__setattr__(self, "consts", (1.0,) * n_const)
        need = 1
        for t in self.tokens:
            if need == 0:
                raise LanguageError(f"tokens {self.tokens} hold more than one tree")
            need += arity(t) - 1
        if need != 0:
            raise LanguageError(f"tokens {self.tokens} are not a complete prefix tree")

    # ----- structure -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def complexity(self) -> int:
        """Node count, the size measure of the Pareto front."""
        return len(self.tokens)

    @cached_property
    def ends(self) -> tuple[int, ...]:
        """``ends[i]``: one past the last token of the subtree rooted at ``i``."""
        ends = [0] * len(self.tokens)
        stack: list[int] = []
        for i in range(len(self.tokens) - 1, -1, -1):
            a = arity(self.tokens[i])
            end = i + 1
            for _ in range(a):
                end = stack.pop()
            ends[i] = end
            stack.append(end)
        return tuple(ends)

    def children(self, i: int) -> tuple[int, ...]:
        a = arity(self.tokens[i])
        if a == 0:
            return ()
        if a == 1:
            return (i + 1,)
        return (i + 1, self.ends[i + 1])

    @cached_property
    def parents(self) -> tuple[int, ...]:
        """``parents[i]`` is the parent of node ``i`` (-1 for the root)."""
        par = [-1] * len(self.tokens)
        for i in range(len(self.tokens)):
            for c in self.children(i):
                par[c] = i
        return tuple(par)

    @cached_property
    def depth(self) -> int:
        d = [0] * len(self.tokens)
        for i in range(1, len(self.tokens)):
            d[i] = d[self.parents[i]] + 1
        return max(d) + 1

    @cached_property
    def const_offsets(self) -> tuple[int, ...]:
        """``const_offsets[i]``: how many const leaves come before token ``i``."""
        out, n = [], 0
        for t in self.tokens:
            out.append(n)
            n += t == CONST
        out.append(n)
        return tuple(out)

    def subtree(self, i: int) -> Program:
        end = self.ends[i]
        co = self.const_offsets
        return Program(self.tokens[i:end], self.consts[co[i] : co[end]])

    def replace_subtree(self, i: int, sub: Program) -> Program:
        end = self.ends[i]
        co = self.const_offsets
        return Program(
            self.tokens[:i] + sub.tokens + self.tokens[end:],
            self.consts[: co[i]] + sub.consts + self.consts[co[end] :],
        )

    @cached_property
    def n_vars(self) -> int:
        """Highest variable index used (0 for a program without variables)."""
        return max((variable_index(t) + 1 for t in self.tokens if is_variable(t)), default=0)

    @cached_property
    def key(self) -> str:
        """Canonical structural form: commutative arguments sorted, constant values ignored.

        Two programs with the same key are trivially equal up to constants, so a search
        never needs to visit both.
        """

        def canon(i: int) -> str:
            t = self.tokens[i]
            kids = [canon(c) for c in self.children(i)]
            if t in COMMUTATIVE:
                kids.sort()
            return t if not kids else f"{t}({','.join(kids)})"

        return canon(0)

    def with_consts(self, consts) -> Program:
        return Program(self.tokens, tuple(float(c) for c in consts))

    # ----- text ------------------------------------------------------------------------
    def __str__(self) -> str:
        return to_text(self)

    def __repr__(self) -> str:
        return f"Program({to_text(self)!r})"

    def to_sympy(self) -> sympy.Expr:
        return to_sympy(self)

    def latex(self) -> str:
        return sympy.latex(to_sympy(self))


# ----- printing -------------------------------------------------------------------------
_INFIX = {"add": ("+", 1), "sub": ("-", 1), "mul": ("*", 2), "div": ("/", 2)}
_ATOM = 5


def to_text(program: Program, names: Sequence[str] | None = None) -> str:
    """Canonical infix text; ``parse(to_text(p)) == p`` for every program. ``names`` prints the
    variables x1, x2, ... under the data's own names (for reading; parse expects x1..xn)."""
    toks, consts, ends, co = program.tokens, program.consts, program.ends, program.const_offsets

    def go(i: int) -> tuple[str, int]:
        """Text of subtree ``i`` and its binding strength (higher binds tighter)."""
        t = toks[i]
        if t == CONST:
            v = consts[co[i]]
            return repr(float(v)), (3 if math.copysign(1.0, v) < 0 else _ATOM)
        if arity(t) == 0:
            return (names[variable_index(t)] if names and is_variable(t) else t), _ATOM
        if t in _INFIX:
            sym, prec = _INFIX[t]
            (ls, lp), (rs, rp) = go(i + 1), go(ends[i + 1])
            ls = f"({ls})" if lp < prec else ls
            rs = f"({rs})" if rp <= prec else rs
            return (f"{ls} {sym} {rs}" if prec == 1 else f"{ls}{sym}{rs}"), prec
        if t == "pow":
            (ls, lp), (rs, rp) = go(i + 1), go(ends[i + 1])
            ls = f"({ls})" if lp < _ATOM else ls
            rs = f"({rs})" if rp < _ATOM else rs
            return f"{ls}**{rs}", 4
        if t == "neg":
            if toks[i + 1] == CONST:  # "-2.5" would parse back as one negative constant
                return f"neg({go(i + 1)[0]})", _ATOM
            cs, cp = go(i + 1)
            return (f"-({cs})" if cp < 4 else f"-{cs}"), 3
        return f"{t}({go(i + 1)[0]})", _ATOM

    return go(0)[0]


# ----- parsing --------------------------------------------------------------------------
def _operator_name(name: str) -> str | None:
    """The operator a function name in text means: its own name or an alias (``Abs``, ``ln``)."""
    if operators.get(name) is not None:
        return name
    return next((op.name for op in operators.OPERATORS.values() if name in op.aliases), None)


_CONSTANTS = {"pi": math.pi, "E": math.e, "e": math.e}


@dataclass(frozen=True)
class _Tokens:
    """Builds a program for :func:`read_expression`: a node is a tuple (operator, its
    arguments), a leaf a token or a float (a fitted constant's value), laid flat at the end."""

    text: str

    def number(self, v: object, negative: bool) -> object:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ParseError(f"unsupported literal {v!r} in {self.text!r}")
        if isinstance(v, int) and 0 <= v <= 9:
            return ("neg", str(v)) if negative else str(v)
        if not math.isfinite(v):
            raise ParseError(f"non-finite number in {self.text!r}")
        return float(-v if negative else v)

    def name(self, name: str) -> object:
        if is_variable(name):
            return name
        if name in _CONSTANTS:
            return float(_CONSTANTS[name])
        return 1.0 if name == CONST else None

    def negate(self, value: object) -> tuple:
        return ("neg", value)

    def binary(self, op: str, left: object, right: object) -> tuple:
        return (op, left, right)

    def function(self, name: str, n_args: int):
        op = _operator_name(name)
        if op is None:
            raise ParseError(f"unknown operator {name!r} in {self.text!r}")
        want = arity(op)
        if n_args != want:
            raise ParseError(f"{name} takes {want} argument(s), got {n_args} in {self.text!r}")
        return lambda args: (op, *args)


def parse(text: str) -> Program:
    """Parse infix text in sympy syntax into a program.

    Floats become fitted constants holding their value; non-negative integers up to 9
    become literal leaves; ``x`` is read as ``x1``. Raises :class:`ParseError`.
    """
    tokens: list[str] = []
    consts: list[float] = []
    stack = [read_expression(text, _Tokens(text))]
    while stack:  # prefix order, without recursion: the tree may nest as deep as the reader allows
        node = stack.pop()
        if isinstance(node, tuple):
            stack.extend(reversed(node))
        elif isinstance(node, float):
            tokens.append(CONST)
            consts.append(node)
        else:
            tokens.append(node)
    return Program(tuple(tokens), tuple(consts))


# ----- sympy ----------------------------------------------------------------------------
def symbols(n: int, names: Sequence[str] | None = None, **assumptions) -> list[sympy.Symbol]:
    """Symbols x1..xn (or the data's own ``names``); real by default so sympy simplifies as a
    scientist would."""
    assumptions = assumptions or {"real": True}
    names = list(names) if names else [f"x{i + 1}" for i in range(n)]
    return [sympy.Symbol(name, **assumptions) for name in names[: max(n, len(names))]]


def to_sympy(
    program: Program, xs: list[sympy.Symbol] | None = None, exact: Mapping[int, sympy.Expr] | None = None
) -> sympy.Expr:
    """The program as a sympy expression over x1..xn (real symbols). ``exact`` maps a
    constant's index to the exact value it stands for (a snapped 3/2, pi), written in place
    of its float so that sympy never folds the float into another number first."""
    xs = xs or symbols(max(program.n_vars, 1))
    toks, co = program.tokens, program.const_offsets
    stack: list[sympy.Expr] = []
    for i in range(len(toks) - 1, -1, -1):
        t = toks[i]
        if t == CONST:
            j = co[i]
            stack.append(exact[j] if exact and j in exact else sympy.Float(program.consts[j]))
        elif is_variable(t):
            stack.append(xs[variable_index(t)])
        elif is_literal(t):
            stack.append(sympy.Integer(int(t)))
        else:
            op = operators.OPERATORS[t]
            args = [stack.pop() for _ in range(op.arity)]
            stack.append(op.sympy(*args))
    return stack[0]


def from_sympy(expr: sympy.Expr) -> Program:
    """A program from a sympy expression, through its text form and the same parser.

    Numeric sub-expressions that are not plain rationals (``cosh(2)``, ``log(3)``) become one
    fitted constant holding their value, since sympy may write them with functions that are
    not in the language.
    """

    def fold(e: sympy.Expr) -> sympy.Expr:
        if e.is_number and not e.is_Rational:
            try:
                value = complex(e.evalf())
            except (TypeError, ValueError):  # zoo, nan: left for the parser to reject
                return e
            if value.imag != 0:
                raise ParseError(f"{e} is complex-valued; programs are real")
            return sympy.Float(value.real)
        return e.func(*[fold(a) for a in e.args]) if e.args else e

    return parse(sympy.sstr(fold(sympy.sympify(expr)), full_prec=True))
