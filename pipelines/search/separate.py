"""Separability: split a many-variable task into parts on fewer variables, solve each apart.

Laws with many variables are mostly a product of powers times a part that needs only a few
of them: F = k q1 q2 / r², or P = ε c E² r² ω⁴ / (ω² − ω0²)². In log space each power is
linear, log|y| = c + Σ_P a_i log|x_i| + log|R(x_S)|, and a variable the law ignores is a
power with exponent 0. So a least-squares fit of log|y| on log|x_i| for the variables in P
and a cubic polynomial in the rest S, scored by BIC over every S of up to ``MAX_REST``
variables, names the split, and the exponents are rounded to halves. The remainder
y / ∏ x_i^a_i then depends on x_S alone: a smaller task for the planner, on exact data.
Its answer is recombined with the powers and verified on the whole data, so a wrong split
costs budget but never a wrong answer.

Sums are split the same way: y = F(x_A) + G(x_B) when a polynomial in x_A plus one in x_B
fits y near exactly (a law in which some variables do not enter at all is the case G = 0).
F is solved on y minus the fitted polynomial in x_B, then G on y − F(x_A), which is exact
once F is.

Symmetries: when y sees x_i and x_j only through x_i − x_j or x_i / x_j, the task is solved
with that one variable in their place (a higher-degree polynomial in it must fit y as well
as a lower-degree one in all the variables).

AI Feynman tests separability on a neural surrogate; here the surrogate is the polynomial
fit, and the check is the sub-solve itself.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from simulator.language import CONST, FunctionSet
from simulator.program import Program

MAX_REST = 4  # the most variables the remainder may keep
DEGREE = 3  # of the polynomial that stands in for log|R(x_S)|
# An exponent counts as a half-integer when the fit puts it this close; else the variable
# joins the remainder.
ROUNDING = 0.05
# The split's log-space fit must explain at least this share of log|y|'s variance, and,
# with its exponents rounded and its polynomial refitted, leave at most ``ROUNDED_SLACK``
# times the residual of the free fit: a true power's exponent is rounded, not changed.
MIN_EXPLAINED = 0.99
ROUNDED_SLACK = 2.0
MAX_POINTS = 400  # the fits' cost grows with the points; a seeded subsample beyond this
SUM_DEGREE = 4  # of each part's polynomial in a sum split
# A sum split's additive fit must leave at most this share of y's variance: near exact, since
# the first part's data carries the fit's error.
SUM_EXACT = 1e-6
# An offset product's log-space fit must leave at most this share of the variance.
OFFSET_EXACT = 1e-8
SYMMETRY_EXACT = 1e-3  # a symmetry split's polynomial in u must explain all but this of y


@dataclass(frozen=True)
class PowerSplit:
    """y = R(x_rest) · ∏ x_i^a_i: which variables are powers (with their exponents), which
    the remainder R keeps; a variable in neither does not enter the law. Half-integer powers
    are of |x_i|."""

    powers: tuple[tuple[int, float], ...]
    rest: tuple[int, ...]
    n_vars: int
    negative: frozenset[int] = frozenset()  # variables below 0 somewhere: sqrt needs abs there
    offset: float = 0.0  # y = offset + R · ∏ x_i^a_i (only for a product with nothing left)

    def __str__(self) -> str:
        terms = [f"x{i + 1}^{a:g}" for i, a in self.powers]
        kept = ", ".join(f"x{i + 1}" for i in self.rest)
        return (f"{self.offset:.4g} + " if self.offset else "") + f"{' '.join(terms) or '1'} · R({kept})"

    def factor(self, X: np.ndarray) -> np.ndarray:
        """∏ x_i^a_i on the rows of X (|x_i| for half-integer exponents)."""
        out = np.ones(len(X))
        with np.errstate(all="ignore"):
            for i, a in self.powers:
                out = out * (np.abs(X[:, i]) ** a if a != round(a) else X[:, i] ** int(a))
        return out

    def remainder(self, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The smaller task: (x_rest, (y - offset) / factor)."""
        with np.errstate(all="ignore"):
            return X[:, list(self.rest)], (y - self.offset) / self.factor(X)

    def combine(self, rest: Program | None, function_set: FunctionSet) -> Program | None:
        """The whole program R · ∏ x_i^a_i, with R written over the original variables, or
        None when the function set cannot write it. ``rest`` is the remainder's program over
        x1..x|rest| (None: R is the constant 1)."""
        numerator = [t for i, a in self.powers if a > 0 for t in self._terms(i, a)]
        denominator = [t for i, a in self.powers if a < 0 for t in self._terms(i, -a)]
        tokens: tuple[str, ...] = ()
        consts: tuple[float, ...] = ()
        if rest is not None:
            tokens, consts = rename(rest, self.rest).tokens, rest.consts
        if numerator:
            tokens = _product([tokens, *numerator] if tokens else numerator)
        if not tokens:
            tokens, consts = (CONST,), (1.0,)  # 1 / (...): written only where const is allowed
        if denominator:
            tokens = ("div", *tokens, *_product(denominator))
        if self.offset:
            tokens, consts = ("add", CONST, *tokens), (self.offset, *consts)
        if not set(function_set.tokens).issuperset(tokens):
            return None
        return Program(tokens, consts)

    def _terms(self, i: int, a: float) -> list[tuple[str, ...]]:
        """x^a for a > 0 as factors: x repeated, and sqrt(x) (sqrt(|x|) if x < 0 somewhere)
        for a half."""
        x = f"x{i + 1}"
        whole = int(math.floor(a))
        terms = [(x,)] * whole
        if a != whole:
            terms.append(("sqrt", "abs", x) if i in self.negative else ("sqrt", x))
        return terms


@dataclass(frozen=True, eq=False)
class SumSplit:
    """y = F(x_first) + G(x_second). ``first_target`` is F's data: y minus the polynomial
    in x_second fitted with it, which is 0 at x_second = 0 (any constant stays with F)."""

    first: tuple[int, ...]
    second: tuple[int, ...]
    n_vars: int
    first_target: np.ndarray
    second_is_zero: bool = False  # y = F(x_first): the other variables do not enter

    def __str__(self) -> str:
        names = lambda group: ", ".join(f"x{i + 1}" for i in group)  # noqa: E731
        return f"F({names(self.first)})" + ("" if self.second_is_zero else f" + G({names(self.second)})")

    def combine(self, first: Program, second: Program | None, function_set: FunctionSet) -> Program | None:
        """F + G over the original variables (None when ``add`` is not allowed)."""
        f = rename(first, self.first)
        if second is None:
            return f
        if "add" not in function_set.binary:
            return None
        g = rename(second, self.second)
        return Program(("add", *f.tokens, *g.tokens), (*f.consts, *g.consts))


def rename(program: Program, columns: tuple[int, ...]) -> Program:
    """A sub-task's program (over x1..x|columns|) over the original variables."""
    names = {f"x{k + 1}": f"x{i + 1}" for k, i in enumerate(columns)}
    return Program(tuple(names.get(t, t) for t in program.tokens), program.consts)


def _product(factors: list[tuple[str, ...]]) -> tuple[str, ...]:
    out = factors[0]
    for f in factors[1:]:
        out = ("mul", *out, *f)
    return out


def sum_splits(X: np.ndarray, y: np.ndarray, seed: int = 0, noise: float = 0.0) -> list[SumSplit]:
    """The split of the variables into two groups whose polynomials, added, fit y within
    ``SUM_EXACT`` of its variance (plus ``noise``, the data's noise floor as an NMSE), or [].
    A split whose second part fits as zero (those variables do not enter) is preferred, the
    smaller its first group the better; else the closest fit. Groups whose polynomials need
    more columns than half the points are not tried."""
    if (data := _data(X, y)) is None:
        return []
    X, y = data
    n, d = X.shape
    total = float(np.sum((y - y.mean()) ** 2))
    if total <= 0:
        return []
    rows = _rows(n, seed, 5)  # the fits see these; F's data is made for every point
    best = None
    for size in range(1, d // 2 + 1):
        for first in itertools.combinations(range(d), size):
            second = tuple(i for i in range(d) if i not in first)
            for a, b in ((first, second), (second, first)) if 2 * size < d else ((first, second),):
                # the intercept goes to F, and G is 0 where its variables are (G(0) = 0)
                P = _polynomial(X[:, list(a)], SUM_DEGREE, centered=False)
                Q = _polynomial(X[:, list(b)], SUM_DEGREE, centered=False)[:, 1:]
                A = np.concatenate([P, Q], axis=1)
                if A.shape[1] > len(rows) // 2:
                    continue
                coef, *_ = np.linalg.lstsq(A[rows], y[rows], rcond=None)
                rss = float(np.sum((y[rows] - A[rows] @ coef) ** 2))
                if rss > (SUM_EXACT + noise) * total * len(rows) / n:
                    continue
                second = Q @ coef[P.shape[1] :]
                zero = float(np.sum((second - second.mean()) ** 2)) <= (SUM_EXACT + noise) * total
                rank = (not zero, len(a) if zero else 0, rss)
                if best is None or rank < best[0]:
                    best = (rank, SumSplit(a, b, d, y - second, zero))
    return [] if best is None else [best[1]]


def offset_products(X: np.ndarray, y: np.ndarray) -> list[PowerSplit]:
    """y = c0 + k · ∏ x_i^a_i with every variable a power: the offset c0 that makes
    log|y - c0| exactly linear in the log|x_i|, searched outside y's range on a log grid and
    refined; [] when no offset makes the fit exact (or a plain product needs none)."""
    from scipy.optimize import minimize_scalar

    if (data := _data(X, y)) is None or (data[0] == 0).any():
        return []
    X, y = data
    n, d = X.shape
    span = float(np.ptp(y))
    if span <= 0:
        return []
    A = np.column_stack([np.ones(n), np.log(np.abs(X))])

    def misfit(c0: float) -> float:
        with np.errstate(all="ignore"):
            L = np.log(np.abs(y - c0))
        total = float(np.sum((L - L.mean()) ** 2))
        if not np.isfinite(total) or total <= 0:
            return np.inf
        coef, *_ = np.linalg.lstsq(A, L, rcond=None)
        return float(np.sum((L - A @ coef) ** 2)) / total

    steps = np.logspace(-6, 3, 37)
    grid = [float(y.min() - t * span) for t in steps] + [float(y.max() + t * span) for t in steps]
    values = [misfit(c) for c in grid]
    k = int(np.argmin(values))
    side = grid[: len(steps)] if k < len(steps) else grid[len(steps) :]
    j = k % len(steps)
    low, high = sorted((side[max(j - 1, 0)], side[min(j + 1, len(steps) - 1)]))
    c0 = float(minimize_scalar(misfit, bounds=(low, high), method="bounded", options={"xatol": 1e-12}).x)
    if misfit(c0) > OFFSET_EXACT or abs(c0) <= 1e-9 * span:
        return []
    with np.errstate(all="ignore"):
        coef, *_ = np.linalg.lstsq(A, np.log(np.abs(y - c0)), rcond=None)
    exponents = coef[1:]
    rounded = np.round(2 * exponents) / 2
    if np.abs(exponents - rounded).max() > ROUNDING:
        return []
    powers = tuple((i, float(a)) for i, a in enumerate(rounded) if a != 0)
    negative = frozenset(np.flatnonzero((X < 0).any(axis=0)).tolist())
    return [PowerSplit(powers, (), d, negative, c0)] if powers else []


def _data(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """X and y as float arrays, or None where no split can be tested: fewer than 10 points,
    one variable, or a value that is not finite."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(y) < 10 or X.shape[1] < 2 or not (np.isfinite(X).all() and np.isfinite(y).all()):
        return None
    return X, y


def _rows(n: int, seed: int, stream: int) -> np.ndarray:
    """Every row, or a seeded draw of ``MAX_POINTS`` (``stream`` keeps each test's draw apart)."""
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.random.default_rng([seed, stream]).choice(n, MAX_POINTS, replace=False)


def _polynomial(Z: np.ndarray, degree: int, centered: bool = True) -> np.ndarray:
    """Every monomial of the scaled columns of Z up to ``degree``, with the intercept first.
    Columns are standardized, or (``centered=False``) only divided by their largest size, so
    that every monomial is 0 where the variables are."""
    n, k = Z.shape
    cols = [np.ones(n)]
    if k:
        if centered:
            Zs = (Z - Z.mean(axis=0)) / (Z.std(axis=0) + 1e-300)
        else:
            Zs = Z / (np.abs(Z).max(axis=0) + 1e-300)
        for d in range(1, degree + 1):
            cols += [np.prod(Zs[:, c], axis=1) for c in itertools.combinations_with_replacement(range(k), d)]
    return np.stack(cols, axis=1)


def power_splits(
    X: np.ndarray, y: np.ndarray, seed: int = 0, keep: int = 2, noisy: bool = False
) -> list[PowerSplit]:
    """Up to ``keep`` candidate splits of y into powers and a remainder on fewer variables,
    best first (lowest BIC of the log-space fit); [] when y has zeros or nothing splits.

    ``noisy``: noise of one size on every point is relative noise of size 1/|y| in log|y|,
    so each point is weighted by |y| (the delta method), and small values do not swamp
    the fit.

    Variables with a zero in the data cannot be powers. Half-integer exponents need |x|
    only where x is negative somewhere; the caller's function set decides if they can be
    written (:meth:`PowerSplit.combine`).
    """
    if (data := _data(X, y)) is None or (data[1] == 0).any():
        return []
    rows = _rows(len(data[1]), seed, 4)
    X, y = data[0][rows], data[1][rows]
    n, d = X.shape
    with np.errstate(all="ignore"):
        U, L = np.log(np.abs(X)), np.log(np.abs(y))
    w = np.abs(y) / np.sqrt(np.mean(y**2)) if noisy else np.ones(n)  # row weights
    total = float(np.sum((w * (L - np.average(L, weights=w**2))) ** 2))
    if not np.isfinite(total) or total <= 0:
        return []
    forced = [i for i in range(d) if (X[:, i] == 0).any()]
    fits = []
    for size in range(min(MAX_REST, d - 1) + 1):
        for rest in itertools.combinations(range(d), size):
            if not set(forced).issubset(rest):
                continue
            powers = [i for i in range(d) if i not in rest]
            A = np.concatenate([U[:, powers], _polynomial(X[:, list(rest)], DEGREE)], axis=1)
            if A.shape[1] > n // 2:
                continue
            coef, *_ = np.linalg.lstsq(w[:, None] * A, w * L, rcond=None)
            rss = max(float(np.sum((w * (L - A @ coef)) ** 2)), 1e-30 * total)
            bic = n * math.log(rss / n) + A.shape[1] * math.log(n)
            fits.append((bic, rss, rest, dict(zip(powers, coef[: len(powers)], strict=True))))
    splits: list[PowerSplit] = []
    for _, rss, rest, exponents in sorted(fits, key=lambda f: f[0]):
        if rss > (1 - MIN_EXPLAINED) * total:
            continue
        rounded = {i: round(2 * a) / 2 for i, a in exponents.items()}
        moved = [i for i, a in exponents.items() if abs(a - rounded[i]) > ROUNDING]
        rest = tuple(sorted({*rest, *moved}))
        powers = tuple((i, rounded[i]) for i in sorted(rounded) if i not in rest and rounded[i] != 0)
        if len(rest) > MAX_REST or len(rest) == d:
            continue
        left = L - sum((a * U[:, i] for i, a in powers), np.zeros(n))
        A = _polynomial(X[:, list(rest)], DEGREE)
        if A.shape[1] > n // 2:
            continue
        coef, *_ = np.linalg.lstsq(w[:, None] * A, w * left, rcond=None)
        if float(np.sum((w * (left - A @ coef)) ** 2)) > ROUNDED_SLACK * rss:
            continue  # rounding the exponents changed the fit: they were not powers
        split = PowerSplit(powers, rest, d, frozenset(np.flatnonzero((X < 0).any(axis=0)).tolist()))
        if split not in splits:
            splits.append(split)
        if len(splits) == keep:
            break
    return splits


@dataclass(frozen=True)
class SymmetrySplit:
    """y depends on x_i and x_j only through x_i − x_j (``op`` "sub") or x_i / x_j ("div").
    The smaller task has u = op(x_i, x_j) as its first variable, then the others in order."""

    i: int
    j: int
    op: str
    n_vars: int

    def __str__(self) -> str:
        sign = "-" if self.op == "sub" else "/"
        return f"R(x{self.i + 1} {sign} x{self.j + 1}, ...)"

    @property
    def others(self) -> tuple[int, ...]:
        return tuple(k for k in range(self.n_vars) if k not in (self.i, self.j))

    def reduced(self, X: np.ndarray) -> np.ndarray:
        """The smaller task's inputs: u, then the other variables."""
        with np.errstate(all="ignore"):
            u = X[:, self.i] - X[:, self.j] if self.op == "sub" else X[:, self.i] / X[:, self.j]
        return np.column_stack([u, X[:, list(self.others)]])

    def combine(self, program: Program, function_set: FunctionSet) -> Program | None:
        """The smaller task's program with u written out, over the original variables."""
        if self.op not in function_set.binary:
            return None
        names = {f"x{k + 2}": f"x{v + 1}" for k, v in enumerate(self.others)}
        u = (self.op, f"x{self.i + 1}", f"x{self.j + 1}")
        tokens = tuple(t for tok in program.tokens for t in (u if tok == "x1" else (names.get(tok, tok),)))
        return Program(tokens, program.consts)


def symmetry_splits(X: np.ndarray, y: np.ndarray, seed: int = 0, noise: float = 0.0) -> list[SymmetrySplit]:
    """Pairs of variables that y sees only through their difference or ratio, best first
    (``noise``: the data's noise floor as an NMSE, added to the bar).

    The test is asymmetric on purpose: a polynomial in (u, the others) of a higher degree
    must fit y at least as well as one of a lower degree in all the variables, and explain
    all but ``SYMMETRY_EXACT`` of its variance. If y depends on x_i and x_j apart, no
    polynomial in u catches that; if only through u, the extra degree wins.
    """
    if (data := _data(X, y)) is None:
        return []
    rows = _rows(len(data[1]), seed, 6)
    X, y = data[0][rows], data[1][rows]
    n, d = X.shape
    total = float(np.sum((y - y.mean()) ** 2))
    if total <= 0:
        return []
    low = _degree_within(d, n // 3)
    if low < 2:
        return []
    A = _polynomial(X, low)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    full = float(np.sum((y - A @ coef) ** 2))
    found = []
    for i, j in itertools.permutations(range(d), 2):
        for op in ("sub", "div"):
            if (op == "sub" and i > j) or (op == "div" and (X[:, j] == 0).any()):
                continue  # a difference is one split whichever way round
            split = SymmetrySplit(i, j, op, d)
            Z = split.reduced(X)
            B = _polynomial(Z, _degree_within(d - 1, n // 3))
            coef, *_ = np.linalg.lstsq(B, y, rcond=None)
            rss = float(np.sum((y - B @ coef) ** 2))
            if rss <= full and rss <= (SYMMETRY_EXACT + noise) * total:
                found.append((rss, split))
    return [s for _, s in sorted(found, key=lambda f: f[0])][:1]


def _degree_within(k: int, columns: int) -> int:
    """The highest polynomial degree in k variables with at most ``columns`` monomials."""
    degree = 0
    while math.comb(k + degree + 1, degree + 1) <= columns and degree < 8:
        degree += 1
    return degree
