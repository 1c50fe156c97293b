"""Shapes with fitted inner constants: ``a + b*u(c*L + d)`` and ``a + b*F1*F2``.

Library entries carry no constants, so ``exp(-0.3*t)*cos(2*t)`` or ``sin(1.5*x1)*cos(0.5*x2)``
is no entry and no split of two entries. Here a small set of bases L (the variables, their
pairwise products and ratios, roots and cubes, sums and differences) is wrapped in each
unary operator with an inner scale and shift, and whole programs of one or two factors
(each such a shape, a plain base, or one base's reciprocal) are fitted to the data by
variable projection: the inner constants are scanned on a grid, the outer ``a`` and ``b``
come from least squares at every grid point, and the best grid points are refined by a
batched Levenberg-Marquardt with ``a`` and ``b`` projected out. The second factor is
searched around the best first factors (greedy), so a fit takes well under a second.

Every grid point is a candidate scored without a simulator call, and every LM iteration of
every problem a forward pass; both are reported. On noisy data a fit is kept when it meets
the noise floor, so laws such as a damped oscillation are found where exact lookups fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipelines.search.levenberg_marquardt import Evaluation, Rules, levenberg_marquardt
from pipelines.search.problem import fixed_rows
from pipelines.search.spelling import respell
from simulator.execute import evaluate_many
from simulator.language import CONST, FunctionSet
from simulator.operators import OPERATORS
from simulator.program import Program

# Unary operators whose inner affine argument adds nothing that a polynomial fit lacks
POLYNOMIAL = ("square", "cube")
# Inner shifts tried on the grid, per operator: a shift changes the shape of these only
SHIFTS = {
    "sin": (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4),
    "cos": (0.0, np.pi / 4),
    "tanh": (0.0, -1.0, 1.0),
    "log": (1.5, 3.0, -1.5, -3.0),
    "sqrt": (1.5, 3.0, -1.5, -3.0),
    "abs": (0.0, -1.0, 1.0),
}
PERIODIC = ("sin", "cos")
# A saturating step 1/(1 + exp(z)): logistic growth and dose-response curves. It is no
# operator of the language but a shape written with exp, add and div (see _program).
LOGISTIC = "logistic"
SHIFTS[LOGISTIC] = (0.0, -2.0, 2.0)
# An inverse root 1/sqrt(z): Lorentz factors, resonance amplitudes, fields on an axis. Written
# as a division by sqrt, so it needs sqrt and div.
RSQRT = "rsqrt"
SHIFTS[RSQRT] = SHIFTS["sqrt"]
# The absent second factor of a one-factor model
NONE = "1"
# The grid and LM see at most this many points (a seeded draw); the planner verifies on all
MAX_ROWS = 64
# Inner constants on a normalised base: a fit ends once exact, or once its damping passes 1e8
RULES = Rules(jitter=1e-12, least=1e-12, most=1e8, exact=1e-30)
# Written with a positive inner scale: u(-z) == -u(z) for the odd, u(-z) == u(z) for the even
ODD = ("sin", "tanh")
EVEN = ("cos", "abs")


def scales(unary: str, fine: bool, points: int) -> np.ndarray:
    """Inner scales tried on the grid (on a base normalised to unit spread), both signs.

    A monotone operator's fit has a wide basin, so a log grid does; a periodic one's basin
    in its frequency is narrow (about pi over the data's span), so high frequencies are
    stepped linearly, up to what ``points`` samples can resolve.
    """
    small = np.geomspace(0.02 if fine else 0.05, 2, 24 if fine else 10)
    if unary in PERIODIC:
        top = float(np.clip(points / 2, 6.0, 60.0))
        large = np.arange(2.25, top, 0.25) if fine else np.arange(3.0, min(top, 20.0), 1.0)
    else:
        large = np.geomspace(2.5, 25.0, 12 if fine else 5)
    grid = np.concatenate([small, large])
    return np.concatenate([-grid, grid])


def shifts(unary: str, others: list[str], fine: bool) -> tuple[float, ...]:
    """Inner shifts tried for ``unary``; sin's half-period shifts are cos's, when cos is there."""
    out = SHIFTS.get(unary, (0.0,))
    if unary == "sin" and "cos" in others:
        out = out[:2]
    return out if fine else out[:2]


@dataclass
class Grid:
    """Many factors at once, as arrays: operator name ("" for a plain base, "/" for its
    reciprocal), base, c, d."""

    unary: np.ndarray
    base: np.ndarray
    c: np.ndarray
    d: np.ndarray

    @classmethod
    def of(cls, unary: list[str], n_bases: int, fine: bool, points: int, divide: bool = False) -> Grid:
        plain = ["", "/"] if divide else [""]
        parts = [(np.array([p]), np.arange(n_bases), np.array([1.0]), np.array([0.0])) for p in plain]
        parts += [
            (np.array([u]), np.arange(n_bases), scales(u, fine, points), np.array(shifts(u, unary, fine)))
            for u in unary
        ]
        cols = []
        for u, b, c, d in parts:
            B, C, D = (a.ravel() for a in np.meshgrid(b, c, d, indexing="ij"))
            cols.append((np.repeat(u, len(B)), B, C, D))
        return cls(*(np.concatenate(col) for col in zip(*cols)))

    def __len__(self) -> int:
        return len(self.base)

    def factor(self, i: int) -> Factor:
        return Factor(str(self.unary[i]) or None, int(self.base[i]), float(self.c[i]), float(self.d[i]))

    def shaped(self) -> np.ndarray:
        return (self.unary != "") & (self.unary != "/")


@dataclass
class Factor:
    """``u(c*Ln + d)`` on a normalised base Ln = (L - mean)/spread, the base L itself
    (``unary`` None), or its reciprocal (``unary`` "/")."""

    unary: str | None
    base: int
    c: float = 1.0
    d: float = 0.0

    @property
    def shaped(self) -> bool:
        """Whether it has inner constants."""
        return self.unary not in (None, "/")


@dataclass
class Fit:
    """``a + b * (product of the factors)`` and its NMSE."""

    factors: list[Factor]
    a: float
    b: float
    loss: float


# A shape fit this close, when none meets the bar, may be the law on data whose noise is too
# faint for the floor's estimate (relative noise of 0.1% gives about 1e-6): it joins the front, where
# the choice by description length weighs it, but not the search.
NEAR_BAR = 1e-4


@dataclass
class ShapeFits:
    """Whole programs that fit, best first, and what finding them cost; ``near``: when none
    fits, the best fit of each size within ``NEAR_BAR``, smallest first."""

    programs: list[Program] = field(default_factory=list)
    near: list[Program] = field(default_factory=list)
    calls: int = 0  # bases evaluated by the simulator
    scored: int = 0  # grid points whose error was known by least squares
    passes: int = 0  # LM iterations times problems


def bases(function_set: FunctionSet) -> list[Program]:
    """The variables, their pairwise products and ratios, their power-like unaries, then
    their sums and differences: the arguments an inner constant scales."""
    xs = [t for t in function_set.leaves if t != CONST]
    out = [Program((x,)) for x in xs]

    def pairs(op: str) -> None:
        if op in function_set.binary:
            for i, a in enumerate(xs):
                for j, b in enumerate(xs):
                    if j > i or (j < i and op in ("div", "sub")) or (i == j and op == "mul"):
                        out.append(Program((op, a, b)))

    pairs("mul")
    pairs("div")
    for u in ("sqrt", "cube"):
        if u in function_set.unary:
            out += [Program((u, x)) for x in xs]
    if "div" in function_set.binary:  # exp(c/T) and its kin: the reciprocal as a base
        out += [Program(("div", "1", x)) for x in xs]
    pairs("add")
    pairs("sub")
    return out


class ShapeFitter:
    """Fits of one or two inner-constant factors to (X, y); see the module docstring.

    ``bases`` caps the distinct bases, ``top`` the first factors refined and carried into
    pairs, ``pairs`` the two-factor models refined besides each first factor's best
    ``partners``, ``limit`` the programs returned. A fitter holds one fit's data while it
    fits: use one per solve.
    """

    def __init__(
        self,
        bases: int = 32,
        top: int = 16,
        pairs: int = 64,
        partners: int = 4,
        steps: int = 60,
        limit: int = 6,
    ):
        self.n_bases, self.top, self.pairs, self.partners = bases, top, pairs, partners
        self.steps, self.limit = steps, limit

    def fit(self, X: np.ndarray, y: np.ndarray, function_set: FunctionSet, bar: float) -> ShapeFits:
        """Programs with NMSE at most ``bar`` (an exact fit's tolerance, or the noise floor)."""
        fs, out = function_set, ShapeFits()
        self.fs = fs
        unary = [u for u in fs.unary if u not in POLYNOMIAL]
        if "exp" in unary and {"add", "div"} <= set(fs.binary):
            unary.append(LOGISTIC)
        if "sqrt" in unary and "div" in fs.binary:
            unary.append(RSQRT)
        self.unary = set(unary)
        if not fs.has_const or not {"add", "mul"} <= set(fs.binary) or not unary:
            return out
        if not self._set_bases(fs, X, out):
            return out
        self.y = np.asarray(y, float)[self.rows]
        self.var = float(np.var(self.y)) + 1e-300
        K = len(self.programs)

        # First factors: every shape on the fine grid, and every plain base
        divide = "div" in fs.binary
        singles = Grid.of(unary, K, True, len(self.y), divide)
        err = self._varpro(self._rows(self._values(singles)))
        out.scored += len(singles)
        shaped = singles.shaped()
        picks = [  # the best shapes and the best plain bases, one per (operator, base)
            *self._distinct(singles, np.where(shaped, err, np.inf), self.top),
            *self._distinct(singles, np.where(shaped, np.inf, err), 2 * self.top),
        ]
        fits = self._refine([[singles.factor(i)] for i in picks], out)

        # Second factors on a coarser grid, around each refined first factor (greedy)
        seconds = Grid.of(unary, K, False, len(self.y), divide)
        fits += self._refine(self._pairs([fit.factors[0] for fit in fits], seconds, out), out)

        good = [(self._program(f), f.loss) for f in fits if f.loss <= bar]
        good.sort(key=lambda t: (t[0].complexity, t[1]))
        out.programs = [p for p, _ in good[: self.limit]]
        if not good:
            near: dict[int, tuple[Program, float]] = {}
            for program, loss in ((self._program(f), f.loss) for f in fits if f.loss <= NEAR_BAR):
                if program.complexity not in near or loss < near[program.complexity][1]:
                    near[program.complexity] = (program, loss)
            out.near = [near[c][0] for c in sorted(near)][: self.limit]
        return out

    def _pairs(self, firsts: list[Factor], seconds: Grid, out: ShapeFits) -> list[list[Factor]]:
        """Two-factor models to refine: each (fitted) first factor times the second factors
        whose product fits best on the grid."""
        names = np.array([f.unary or "" for f in firsts], dtype=object)
        W = self._factors(
            names,
            np.array([f.base for f in firsts]),
            np.array([f.c for f in firsts]),
            np.array([f.d for f in firsts]),
        )[0].T
        E = self._varpro(self._rows(self._values(seconds)), W)
        pairs, pair_err, pair_rank = [], [], []
        for j, first in enumerate(firsts):
            e = E[:, j]
            if not first.shaped:  # two plain bases: one ratio of them at most
                e[(seconds.unary == "") | ((seconds.unary == "/") & (first.unary == "/"))] = np.inf
            out.scored += len(seconds)
            for rank, k in enumerate(self._distinct(seconds, e, self.top)):
                pairs.append([first, seconds.factor(k)])
                pair_err.append(e[k])
                pair_rank.append(rank)
        # the best pairs overall, and every first factor's best partners: the grid's error
        # of a pair is only a rough guide to where LM ends, so no first factor is crowded out
        pair_err, pair_rank = np.asarray(pair_err), np.asarray(pair_rank)
        best = set(np.argsort(pair_err)[: self.pairs].tolist())
        chosen, seen = [], set()
        for i in np.argsort(pair_err):
            key = frozenset((f.unary, f.base) for f in pairs[i])
            if key not in seen and (i in best or pair_rank[i] < self.partners):
                seen.add(key)
                chosen.append(pairs[i])
        return chosen

    def _set_bases(self, fs: FunctionSet, X: np.ndarray, out: ShapeFits) -> bool:
        """Evaluate the bases (simulator calls) and keep the first distinct ones, normalised."""
        programs = bases(fs)
        L, ok = evaluate_many(programs, X)
        out.calls += len(programs)
        keep, seen = [], set()
        with np.errstate(all="ignore"):
            for j in np.flatnonzero(ok):
                s = float(np.std(L[j]))
                if not np.isfinite(s) or s < 1e-9 * (np.abs(L[j]).max() + 1e-300):
                    continue  # constant on the data
                sig = np.round((L[j] - L[j].mean()) / s, 8)
                key = min(sig.tobytes(), (-sig).tobytes())  # equal up to scale and shift
                if key not in seen:
                    seen.add(key)
                    keep.append(int(j))
        keep = keep[: self.n_bases]
        self.programs = [programs[j] for j in keep]
        self.rows = fixed_rows(L.shape[1], MAX_ROWS)
        self.raw = L[keep][:, self.rows]
        self.mean, self.spread = self.raw.mean(axis=1), self.raw.std(axis=1)
        self.Ln = (self.raw - self.mean[:, None]) / self.spread[:, None]
        return bool(keep)

    # -- values and fits ---------------------------------------------------------------

    def _values(self, grid: Grid) -> np.ndarray:
        """Each factor's output on the data (NaN outside its operator's domain)."""
        return self._factors(grid.unary, grid.base, grid.c, grid.d, slopes=False)[0]

    @staticmethod
    def _rows(G: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Grid outputs ready for :meth:`_varpro`: non-finite rows zeroed, squares, and which."""
        ok = np.isfinite(G).all(axis=1)
        G = np.where(ok[:, None], G, 0.0)
        with np.errstate(all="ignore"):
            return G, G**2, ok

    def _varpro(
        self, rows: tuple[np.ndarray, np.ndarray, np.ndarray], w: np.ndarray | None = None
    ) -> np.ndarray:
        """NMSE of the best ``a + b*g*w`` for each row g and each column w of ``w`` (n, F):
        (rows, F), inf where it is not finite; without ``w``, of ``a + b*g`` (rows,).

        Computed from three matrix products, so the rows times each of many ``w`` (the second
        factors times each first) are never formed.
        """
        G, G2, ok = rows
        W = np.ones((len(self.y), 1)) if w is None else w
        yc = self.y - self.y.mean()
        with np.errstate(all="ignore"):
            s1, s2, sy = G @ W, G2 @ (W**2), G @ (W * yc[:, None])
            gg = s2 - s1**2 / len(yc)
            err = (yc @ yc - np.where(gg > 1e-300 * (s2 + 1e-300), sy**2 / gg, 0.0)) / len(yc) / self.var
        err[~np.isfinite(err) | ~ok[:, None]] = np.inf
        err = np.maximum(err, 0.0)
        return err[:, 0] if w is None else err

    @staticmethod
    def _distinct(grid: Grid, err: np.ndarray, k: int) -> list[int]:
        """The ``k`` best grid points, one per (operator, base)."""
        out, seen = [], set()
        for i in np.argsort(err):
            if not np.isfinite(err[i]) or len(out) >= k:
                break
            key = (grid.unary[i], grid.base[i])
            if key not in seen:
                seen.add(key)
                out.append(int(i))
        return out

    def _refine(self, models: list[list[Factor]], out: ShapeFits) -> list[Fit]:
        """Levenberg-Marquardt on every shape's ``c, d``, batched over models, with ``a, b``
        solved by least squares at every step (variable projection, Kaufman's Jacobian):
        the outer pair is eliminated, so the steep exp and high-frequency fits converge."""
        if not models:
            return []
        B = len(models)
        names, bases = np.full((B, 2), NONE, dtype=object), np.zeros((B, 2), int)
        T, free = np.zeros((B, 4)), np.zeros((B, 4), bool)
        for i, m in enumerate(models):
            for k, f in enumerate(m):
                names[i, k], bases[i, k] = f.unary or "", f.base
                T[i, 2 * k : 2 * k + 2] = (f.c, f.d)
                free[i, 2 * k] = f.shaped
                free[i, 2 * k + 1] = f.shaped and f.unary != "exp"  # exp: d is in b

        def evaluate(rows: np.ndarray, inner: np.ndarray) -> Evaluation:
            J, r, ab = self._jacobian(names[rows], bases[rows], inner)
            Jf = np.where(free[rows, None, :], J, 0.0)
            with np.errstate(all="ignore"):  # a model outside its domain: r is inf, and so is its loss
                JJ, g = np.einsum("bni,bnj->bij", Jf, Jf), np.einsum("bni,bn->bi", Jf, r)
            return Evaluation(JJ, g, self._loss(r), ab)

        T, loss, ab, _, passes = levenberg_marquardt(evaluate, T, free, self.steps, RULES)
        out.passes += passes
        fits = []
        for i, m in enumerate(models):
            if np.isfinite(loss[i]):
                factors = [
                    Factor(f.unary, f.base, float(T[i, 2 * k]), float(T[i, 2 * k + 1]))
                    for k, f in enumerate(m)
                ]
                fits.append(Fit(factors, float(ab[i, 0]), float(ab[i, 1]), float(loss[i])))
        return fits

    def _loss(self, r: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            out = np.mean(r**2, axis=1) / self.var
        out[~np.isfinite(out)] = np.inf
        return out

    def _factors(
        self, names: np.ndarray, bases: np.ndarray, c: np.ndarray, d: np.ndarray, slopes: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Factor values (B, n) and, with ``slopes``, their derivatives in the inner argument
        (0 for a plain base or its reciprocal); ``NONE`` is the absent second factor, worth 1."""
        B, n = len(names), len(self.y)
        values, slope = np.ones((B, n)), (np.zeros((B, n)) if slopes else None)
        with np.errstate(all="ignore"):
            for u in set(names) - {NONE}:
                rows = np.flatnonzero(names == u)
                if u in ("", "/"):
                    values[rows] = self.raw[bases[rows]] if u == "" else 1.0 / self.raw[bases[rows]]
                    continue
                s = c[rows, None] * self.Ln[bases[rows]] + d[rows, None]
                if u == LOGISTIC:
                    v = 1.0 / (1.0 + np.exp(s))
                    values[rows] = v
                    if slopes:
                        slope[rows] = -v * (1.0 - v)
                    continue
                if u == RSQRT:
                    v = 1.0 / np.sqrt(s)
                    values[rows] = v
                    if slopes:
                        slope[rows] = -0.5 * v / s
                    continue
                values[rows] = OPERATORS[u].numpy(s)
                if slopes:
                    slope[rows] = OPERATORS[u].derivative(s)
        return values, slope

    def _jacobian(
        self, names: np.ndarray, bases: np.ndarray, T: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Residuals of the best ``a + b*G`` at inner constants ``T``, their derivatives in
        (c1, d1, c2, d2) projected off span{1, G}, and (a, b). A model outside an operator's
        domain gets an infinite residual."""
        v0, s0 = self._factors(names[:, 0], bases[:, 0], T[:, 0], T[:, 1])
        v1, s1 = self._factors(names[:, 1], bases[:, 1], T[:, 2], T[:, 3])
        yc = self.y - self.y.mean()
        with np.errstate(all="ignore"):
            G = v0 * v1
            Gc = G - G.mean(axis=1, keepdims=True)
            gg = (Gc**2).sum(axis=1)
            b = (Gc @ yc) / gg
            a = self.y.mean() - b * G.mean(axis=1)
            r = a[:, None] + b[:, None] * G - self.y
            d0, d1 = b[:, None] * s0 * v1, b[:, None] * s1 * v0
            J = np.stack([d0 * self.Ln[bases[:, 0]], d0, d1 * self.Ln[bases[:, 1]], d1], axis=2)
            Jc = J - J.mean(axis=1, keepdims=True)
            J = Jc - Gc[:, :, None] * (np.einsum("bn,bni->bi", Gc, Jc) / gg[:, None])[:, None, :]
        bad = ~np.isfinite(J).all(axis=(1, 2)) | ~np.isfinite(r).all(axis=1) | ~(gg > 1e-300)
        J[bad], r[bad] = 0.0, np.inf
        return J, r, np.stack([a, b], axis=1)

    def _program(self, fit: Fit) -> Program:
        """``a + b*F1[*F2]`` (or ``/L2``) in the language, the inner constants un-normalised."""
        ops = ["div" if f.unary in ("/", RSQRT) else "mul" for f in fit.factors]  # ((b op1 F1) op2 F2)
        tokens: list[str] = ["add", CONST, *reversed(ops), CONST]
        consts: list[float] = [fit.a, fit.b]
        for f in fit.factors:
            base = self.programs[f.base]
            if not f.shaped:
                tokens += base.tokens
                continue
            m, s = self.mean[f.base], self.spread[f.base]
            c, d = f.c / s, f.d - f.c * m / s  # c*(L - m)/s + d == c'*L + d'
            if f.unary in ODD and c < 0:  # u(-c*L - d) == -u(c*L + d)
                c, d, consts[1] = -c, -d, -consts[1]
            elif f.unary in EVEN and c < 0:
                c, d = -c, -d
            unary = "sqrt" if f.unary == RSQRT else f.unary  # b/sqrt(z): the division is the op
            if unary in ("sqrt", "log") and abs(d) > 1e-10:  # the shift scaled to 1, as laws write it
                k, c, d = abs(d), c / abs(d), d / abs(d)  # u(c*L + d) from u(k*(c/k*L + d/k))
                if unary == "log":  # log(k*z) == log(k) + log(z): into a
                    consts[0] += consts[1] * float(np.log(k))
                else:  # sqrt(k*z) == sqrt(k)*sqrt(z): into b, divided for 1/sqrt
                    consts[1] *= float(np.sqrt(k)) ** (-1 if f.unary == RSQRT else 1)
            if unary in PERIODIC:  # the phase in (-pi, pi], quarter turns absorbed
                d = float(d - 2 * np.pi * np.ceil((d - np.pi) / (2 * np.pi)))
                turns = round(d / (np.pi / 2))
                if abs(d - turns * np.pi / 2) < 1e-9 and set(PERIODIC) <= self.unary:
                    for _ in range(turns % 4):  # sin(z + pi/2) == cos(z), cos(z + pi/2) == -sin(z)
                        consts[1] *= -1 if unary == "cos" else 1
                        unary = "sin" if unary == "cos" else "cos"
                    d = 0.0
            if unary == LOGISTIC:  # 1/(1 + exp(c*L + d)) == k/(k + exp(c*L)), k = e**-d
                k = float(np.exp(min(-d, 700.0)))
                tokens += ["div", CONST, "add", CONST, "exp", "mul", CONST, *base.tokens]
                consts += [k, k, c]
            elif unary == "exp":  # exp(c*L + d) == e**d * exp(c*L): d moves into b
                tokens += [unary, "mul", CONST, *base.tokens]
                consts[1] *= float(np.exp(d))
                consts.append(c)
            elif abs(d) < 1e-10:
                tokens += [unary, "mul", CONST, *base.tokens]
                consts.append(c)
            else:
                tokens += [unary, "add", "mul", CONST, *base.tokens, CONST]
                consts += [c, d]
        return _reciprocals(Program(tuple(tokens), tuple(consts)), self.fs)


def _reciprocals(program: Program, function_set: FunctionSet) -> Program:
    """``c * (1/x)`` written ``c/x``; any other literal 1 of a reciprocal base becomes a
    fitted constant holding 1 (the task's tokens only)."""
    tokens, out = program.tokens, []
    i = 0
    while i < len(tokens):
        if tokens[i : i + 4] == ("mul", CONST, "div", "1"):
            out += ["div", CONST]
            i += 4
            continue
        out.append(tokens[i])
        i += 1
    return respell(Program(tuple(out), program.consts), function_set, None) or program
