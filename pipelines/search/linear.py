"""Linear and rational fits over a basis: exact algebra offered to the search as starts.

A target that is linear in a few basis terms (a polynomial, a sum of functions of the
variables with coefficients) is met by least squares in one step; a ratio of polynomials
P/Q by the linearised system ``y*Q = P`` (Sanathanan-Koerner reweighting against the bias
of that system on noisy data). Search reaches such targets slowly, one edit at a time.

* **Linear**: the basis holds the monomials up to a degree that the points can support,
  each unary operator of the set on each variable, times 1, x and x**2, ``exp(-x)``, and
  reciprocals and ratios of variables. A sparsity path (forward selection and backward
  elimination) gives the fewest terms that fit.
* **Rational**: P/Q over monomials of total degree p and q, the smallest p + q first.

A fit is accepted when it meets ``bar`` (an exact fit, or the noise floor). Sets with fitted
constants get ``const`` coefficients (verification refits them); sets without get the
coefficients snapped to small integers and fractions, accepted only if the snapped program
still meets the bar, and written in the set's own tokens (:mod:`pipelines.search.spelling`).
Every basis column evaluated is a simulator call; every support or degree pair solved is a
candidate scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from itertools import combinations, combinations_with_replacement

import numpy as np

from pipelines.search.spelling import Speller, Tokens, const_horner, const_sum, respell
from simulator.execute import evaluate_many
from simulator.language import CONST, FunctionSet
from simulator.program import Program
from simulator.scoring import nmse

MAX_MONOMIALS = 40  # monomial columns, and at most half the points
MAX_DEGREE = 10
MAX_TERMS = 10  # the longest sum the sparsity path considers
NOISY_TERMS = 2  # on noisy data a long sum only fits the noise
MAX_RATIONAL_COLUMNS = 48
NOISY_RATIONAL_DEGREE = 4
SPARSE_MONOMIALS = 15  # monomials the sparse rational supports are drawn from
SPARSE_KEEP = 4  # sparse rational fits written out, the closest first
DENOMINATOR = 12  # fractions snapped to at most this denominator
FIT_BAR = 1e-10  # fits this close are polished by verification's Levenberg-Marquardt
SK_ROUNDS = 3
# On exact data a rational law leaves one singular value at rounding error, orders of
# magnitude below the next (1e-12 and less); a Pade look-alike leaves a gradual decay (1e-3).
GAP = 1e-8
EXHAUSTIVE_TERMS = 3  # every support up to this size is solved
MAX_SUBSETS = 20_000
STRICT_BAR = 1e-26  # exact fits with fitted constants: rounding error, not approximation
NOISY_SUPPORT = 6  # on noisy data, rational coefficients are pruned one at a time from this many
# How a fit of an inverse is described: "a rational fit P/Q of degrees 2/2 of y**2"
INVERSE_WORDS = {"sqrt": "y**2", "log": "exp(y)", "exp": "log(y)"}
# Unary operators whose basis terms a polynomial already holds, or that add no new shape
SKIP_UNARY = ("square", "cube", "neg", "abs")


@dataclass
class LinearFits:
    """Programs that fit, each with what it is, and what finding them cost."""

    programs: list[tuple[Program, str]] = field(default_factory=list)
    calls: int = 0  # basis columns evaluated
    scored: int = 0  # supports and degree pairs solved


@dataclass(frozen=True)
class Term:
    """One basis column: its program tokens and, for a monomial, its exponents."""

    tokens: Tokens
    powers: tuple[int, ...] | None = None  # exponents per variable, for monomials

    @property
    def degree(self) -> int:
        return sum(self.powers) if self.powers is not None else -1


def monomial(powers: tuple[int, ...], square: bool = False) -> Tokens:
    """x1**a * x2**b ... as products (the 1 of degree 0 is the literal 1)."""
    factors = [f"x{i + 1}" for i, k in enumerate(powers) for _ in range(k)]
    if not factors:
        return ("1",)
    out: Tokens = (factors[0],)
    for f in factors[1:]:
        out = ("mul", *out, f)
    return out


def monomials(n_vars: int, degree: int) -> list[tuple[int, ...]]:
    """Exponent tuples of total degree 0..degree, by degree."""
    out = []
    for d in range(degree + 1):
        for combo in combinations_with_replacement(range(n_vars), d):
            out.append(tuple(combo.count(i) for i in range(n_vars)))
    return out


def degree_for(n_vars: int, points: int) -> int:
    """The highest total degree whose monomials fit the column cap and half the points."""
    cap = min(MAX_MONOMIALS, points // 2)
    d = 0
    while d < MAX_DEGREE and math.comb(n_vars + d + 1, d + 1) - 1 <= cap:
        d += 1
    return d


class LinearFitter:
    """Linear and rational fits of (X, y); see the module docstring."""

    def __init__(self, limit: int = 4):
        self.limit = limit

    def fit(
        self, X: np.ndarray, y: np.ndarray, function_set: FunctionSet, bar: float, noisy: bool = False
    ) -> LinearFits:
        """Programs with NMSE at most ``max(bar, FIT_BAR)``, smallest first."""
        fs, out = function_set, LinearFits()
        if not {"add", "mul"} <= set(fs.binary) or len(y) < 4:
            return out
        self.fs, self.X, self.y, self.noisy = fs, X, np.asarray(y, float), noisy
        self.bar = max(bar, FIT_BAR)
        if fs.has_const and not noisy:
            # smooth functions have many-term polynomial and Pade look-alikes down to about
            # 1e-23 on a narrow range; a true law fits to rounding error
            self.bar = min(self.bar, STRICT_BAR)
        self.speller = None if fs.has_const else Speller(fs, X)
        if self.speller is not None and not self.speller.integers:
            return out  # no way to write a coefficient
        terms = self._basis()
        columns, ok = evaluate_many([Program(t.tokens) for t in terms], X)
        out.calls += len(terms)
        keep = self._distinct(columns, ok)
        self.terms, self.columns = [terms[j] for j in keep], columns[keep]
        found = self._fits(out)
        if not found and not noisy:  # y = u(fit): the fit of the inverse u⁻¹(y), wrapped in u
            for unary, target in self._inverses():
                self.y = target
                found = [
                    (Program((unary, *p.tokens), p.consts), f"{reason} of {INVERSE_WORDS[unary]}")
                    for p, reason in self._fits(out)
                ]
                self.y = np.asarray(y, float)
                if found:
                    break
        written = [(respell(p, fs, self.speller), reason) for p, reason in found]
        written = [(p, r) for p, r in written if p is not None]
        seen: set[str] = set()
        for program, reason in sorted(written, key=self._order):
            if program.key not in seen and len(out.programs) < self.limit:
                seen.add(program.key)
                out.programs.append((program, reason))
        return out

    def _fits(self, out: LinearFits) -> list[tuple[Program, str]]:
        """Linear fits of the current target, and rational ones where no linear fit is exact
        (or on noisy data)."""
        found = self._linear(out)
        if "div" in self.fs.binary and (self.noisy or not found):
            found += self._rational(out)
        return found

    def _inverses(self) -> list[tuple[str, np.ndarray]]:
        """Targets u⁻¹(y) for the set's unaries u with an inverse that is defined on all of y:
        a law y = sqrt(P/Q) is a rational fit of y**2, y = log(P) a polynomial fit of exp(y)."""
        y, unary, out = self.y, set(self.fs.unary), []
        with np.errstate(all="ignore"):
            if "sqrt" in unary and (y >= 0).all():
                out.append(("sqrt", y**2))
            if "log" in unary and y.max() < 300:
                out.append(("log", np.exp(y)))
            if "exp" in unary and (y > 0).all():
                out.append(("exp", np.log(y)))
        return [(u, t) for u, t in out if np.isfinite(t).all() and np.ptp(t) > 0]

    def _order(self, written: tuple[Program, str]) -> float:
        """Smallest first on exact data; on noisy data, the shortest description (the
        selection's ``mdl``: every candidate fits within the floor, so size must decide)."""
        program = written[0]
        if not self.noisy:
            return program.complexity
        with np.errstate(all="ignore"):
            loss = float(nmse(evaluate_many([program], self.X)[0][0], self.y)[0])
        n, v = len(self.y), len(self.fs.tokens)
        if not math.isfinite(loss):
            return math.inf
        return (
            n / 2 * math.log(max(loss, 1e-300))
            + program.complexity * math.log(v)
            + len(program.consts) / 2 * math.log(n)
        )

    # -- the basis -----------------------------------------------------------------------

    def _basis(self) -> list[Term]:
        d = self.X.shape[1]
        xs = [f"x{i + 1}" for i in range(d)]
        degree = degree_for(d, len(self.y))
        terms = [Term(monomial(p), p) for p in monomials(d, degree) if sum(p) > 0]
        ops = set(self.fs.binary)
        for u in (u for u in self.fs.unary if u not in SKIP_UNARY):
            for x in xs:
                terms.append(Term((u, x)))
                if d <= 2:
                    terms += [Term(("mul", x, u, x)), Term(("mul", "mul", x, x, u, x))]
        if "exp" in self.fs.unary:
            for x in xs:
                if "neg" in self.fs.unary:
                    terms.append(Term(("exp", "neg", x)))
                elif "div" in ops:
                    terms.append(Term(("div", "1", "exp", x)))
        if "div" in ops:
            terms += [Term(("div", "1", x)) for x in xs]
            terms += [Term(("div", a, b)) for a in xs for b in xs if a != b]
        return terms

    @staticmethod
    def _distinct(columns: np.ndarray, ok: np.ndarray) -> list[int]:
        """Finite, non-constant columns, each shape once."""
        keep, seen = [], set()
        with np.errstate(all="ignore"):
            for j in np.flatnonzero(ok):
                c = columns[j]
                s = float(np.std(c))
                if not np.isfinite(s) or s < 1e-12 * (np.abs(c).max() + 1e-300):
                    continue
                sig = np.round((c - c.mean()) / s, 9)
                key = min(sig.tobytes(), (-sig).tobytes())
                if key not in seen:
                    seen.add(key)
                    keep.append(int(j))
        return keep

    # -- linear --------------------------------------------------------------------------

    def _lstsq(self, support: tuple[int, ...]) -> tuple[np.ndarray, float, float]:
        """Coefficients, intercept and NMSE of the least-squares fit on ``support``."""
        A = self.columns[list(support)].T
        mu, sd = A.mean(axis=0), A.std(axis=0)
        Z = (A - mu) / sd
        ym = self.y.mean()
        coef, *_ = np.linalg.lstsq(Z, self.y - ym, rcond=None)
        beta = coef / sd
        c0 = ym - float(mu @ beta)
        loss = float(nmse(A @ beta + c0, self.y)[0])
        return beta, c0, loss

    def _path(self, out: LinearFits) -> list[tuple[int, ...]]:
        """Supports of every size from forward selection and from backward elimination of
        the monomials."""
        m = len(self.terms)
        if m == 0:
            return []
        top = min(MAX_TERMS if not self.noisy else NOISY_TERMS, len(self.y) - 2, m)
        C = self.columns - self.columns.mean(axis=1, keepdims=True)
        C = C / np.linalg.norm(C, axis=1, keepdims=True)
        supports = self._small_subsets(C, out)
        chosen: list[int] = []
        r = self.y - self.y.mean()
        for _ in range(top):  # orthogonal matching pursuit
            scores = np.abs(C @ r)
            scores[chosen] = -1
            chosen.append(int(np.argmax(scores)))
            supports.append(tuple(sorted(chosen)))
            A = C[chosen].T
            coef, *_ = np.linalg.lstsq(A, self.y - self.y.mean(), rcond=None)
            r = self.y - self.y.mean() - A @ coef
            out.scored += 1
            if np.linalg.norm(r) ** 2 <= self.bar * 1e-3 * np.sum((self.y - self.y.mean()) ** 2):
                break
        mono = [j for j, t in enumerate(self.terms) if t.powers is not None]
        current = list(mono)
        if 0 < len(current) < len(self.y) - 1 and not self.noisy:
            while len(current) > 1:  # backward elimination: drop the term that costs least
                if len(current) <= MAX_TERMS:
                    supports.append(tuple(current))
                losses = [self._lstsq(tuple(c for c in current if c != j))[2] for j in current]
                out.scored += len(current)
                current.remove(current[int(np.argmin(losses))])
            supports.append(tuple(current))
        return list(dict.fromkeys(supports))

    def _small_subsets(self, C: np.ndarray, out: LinearFits) -> list[tuple[int, ...]]:
        """The best few supports of each size up to ``EXHAUSTIVE_TERMS``, every subset solved
        at once by batched normal equations (greedy selection misses pairs such as
        exp(x) - exp(-x), where each term alone explains little)."""
        yc = self.y - self.y.mean()
        G, b, tt = C @ C.T, C @ yc, float(yc @ yc) + 1e-300
        out_supports: list[tuple[int, ...]] = []
        for k in range(1, (NOISY_TERMS if self.noisy else EXHAUSTIVE_TERMS) + 1):
            if math.comb(len(C), k) > MAX_SUBSETS or k > len(self.y) - 2:
                break
            fit = subset_fits(G, b, tt, k)
            if fit is None:
                continue
            subsets, rss = fit
            out.scored += len(subsets)
            out_supports += [tuple(int(j) for j in subsets[i]) for i in np.argsort(rss)[:3]]
        return out_supports

    def _linear(self, out: LinearFits) -> list[tuple[Program, str]]:
        found: list[tuple[Program, str]] = []
        fitted = []
        for support in self._path(out):
            beta, c0, loss = self._lstsq(support)
            if loss <= self.bar:
                fitted.append((len(support), support, beta, c0))
        fitted.sort(key=lambda f: f[0])
        for k, support, beta, c0 in fitted[:3]:
            terms = [self.terms[j] for j in support]
            for program in self._write_linear(terms, self.columns[list(support)], beta, c0):
                found.append((program, f"a linear fit over {k} term{'s' if k > 1 else ''}"))
        return found

    def _write_linear(
        self, terms: list[Term], columns: np.ndarray, beta: np.ndarray, c0: float
    ) -> list[Program]:
        """The fit in the set's tokens: fitted constants, or snapped coefficients."""
        scale = float(np.std(self.y)) + 1e-300
        intercept = abs(c0) > 1e-9 * scale
        one_var = {i for t in terms if t.powers for i, k in enumerate(t.powers) if k}
        horner_ok = all(t.powers is not None for t in terms) and len(one_var) == 1
        if self.fs.has_const:
            programs = [
                const_sum([t.tokens for t in terms], intercept).with_consts(
                    (*beta.tolist(), *([c0] if intercept else []))
                )
            ]
            if horner_ok:
                degrees = [t.degree for t in terms]
                by_degree = dict(zip(degrees, beta.tolist(), strict=True))
                order = sorted(set(degrees) | ({0} if intercept else set()), reverse=True)
                consts = [by_degree.get(k, c0) for k in order]
                programs.append(
                    const_horner(degrees, f"x{next(iter(one_var)) + 1}", intercept).with_consts(consts)
                )
            return programs
        coefs = [snap(b) for b in beta]
        c0s = snap(c0) if intercept else Fraction(0)
        if any(c is None for c in coefs) or c0s is None:
            return []
        values = np.array([float(c) for c in coefs]) @ columns + float(c0s)
        if not float(nmse(values, self.y)[0]) <= self.bar:
            return []
        out = []
        written = self.speller.signed_sum([*zip(coefs, [t.tokens for t in terms]), (c0s, None)])
        if written is not None:
            out.append(Program(written))
        if horner_ok:
            x = f"x{next(iter(one_var)) + 1}"
            dense = [Fraction(0)] * (max(t.degree for t in terms) + 1)
            for c, t in zip(coefs, terms, strict=True):
                dense[t.degree] = c
            dense[0] = c0s
            h = self.speller.horner(dense, x)
            if h is not None:
                out.append(Program(h))
        return out

    # -- rational ------------------------------------------------------------------------

    def _rational(self, out: LinearFits) -> list[tuple[Program, str]]:
        """P/Q of the smallest total degree that fits; on noisy data, sparse ones as well."""
        found = self._sparse_rational(out) if self.noisy else []
        return found + self._dense_rational(out)

    def _sparse_rational(self, out: LinearFits) -> list[tuple[Program, str]]:
        """P/Q with one or two monomials in P and two in Q (a*S/(b + S), (a + b*x)/(c + x**2)),
        every such support solved at once by a batched SVD of the linearised system.

        On noisy data a dense P/Q of degrees 2/2 already has the freedom to put a pole
        between the points and fit the noise; the law is sparse. Supports whose Q changes
        sign on the data (a pole) are dropped; the rest are ordered by description length.
        """
        d, n = self.X.shape[1], len(self.y)
        degree = 0
        while degree < NOISY_RATIONAL_DEGREE and math.comb(d + degree + 1, degree + 1) <= SPARSE_MONOMIALS:
            degree += 1
        powers = monomials(d, degree)
        with np.errstate(all="ignore"):
            V = np.stack([np.prod(self.X ** np.array(p), axis=1) for p in powers])
        if not np.isfinite(V).all() or n < 6:
            return []
        out.calls += len(powers)
        norms = np.linalg.norm(V, axis=1) + 1e-300
        fits: list[tuple[float, np.ndarray, np.ndarray]] = []
        q_sets = list(combinations(range(len(powers)), 2))
        for k in (1, 2):
            p_sets = list(combinations(range(len(powers)), k))
            pq = np.array([(*ps, *qs) for ps in p_sets for qs in qs_without(qs_all=q_sets, ps=ps)])
            if not len(pq):
                continue
            out.scored += len(pq)
            A = np.concatenate([V[pq[:, :k]], -self.y * V[pq[:, k:]]], axis=1)  # (m, k + 2, n)
            scale = np.concatenate([norms[pq[:, :k]], np.linalg.norm(self.y * V[pq[:, k:]], axis=2)], axis=1)
            _, _, vt = np.linalg.svd(np.swapaxes(A / scale[..., None], 1, 2), full_matrices=False)
            coef = vt[:, -1, :] / scale
            a, b = coef[:, :k], coef[:, k:]
            with np.errstate(all="ignore"):
                Q = np.einsum("mj,mjn->mn", b, V[pq[:, k:]])
                P = np.einsum("mj,mjn->mn", a, V[pq[:, :k]])
                pole = (Q.min(axis=1) < 0) & (Q.max(axis=1) > 0)
                loss = nmse(P / Q, self.y)
            for i in np.flatnonzero(~pole & np.isfinite(loss) & (loss <= self.bar)):
                fits.append((float(loss[i]), pq[i], coef[i]))
        programs = []
        for _, support, coef in sorted(fits, key=lambda f: f[0])[:SPARSE_KEEP]:
            k = len(support) - 2
            pairs_p = [(c, powers[j]) for c, j in zip(coef[:k], support[:k], strict=True)]
            pairs_q = [(c, powers[j]) for c, j in zip(coef[k:], support[k:], strict=True)]
            for program in self._write_pq(pairs_p, pairs_q):
                programs.append((program, f"a sparse rational fit, {k} over 2 terms"))
        return programs

    def _dense_rational(self, out: LinearFits) -> list[tuple[Program, str]]:
        """P/Q over every monomial of total degrees p and q, the smallest p + q that fits."""
        d, n = self.X.shape[1], len(self.y)
        cap = min(MAX_RATIONAL_COLUMNS, (2 * n) // 3)
        top = NOISY_RATIONAL_DEGREE if self.noisy else MAX_DEGREE
        pairs = sorted(
            ((p, q) for p in range(0, top + 1) for q in range(1, top + 1) if p + q <= top),
            key=lambda pq: (pq[0] + pq[1], pq[1]),
        )
        cache: dict[int, tuple[list[tuple[int, ...]], np.ndarray]] = {}

        def columns(degree: int) -> tuple[list[tuple[int, ...]], np.ndarray]:
            if degree not in cache:
                powers = monomials(d, degree)
                with np.errstate(all="ignore"):
                    V = np.stack([np.prod(self.X ** np.array(p), axis=1) for p in powers])
                cache[degree] = (powers, V)
            return cache[degree]

        for p, q in pairs:
            P, VP = columns(p)
            Q, VQ = columns(q)
            if len(P) + len(Q) > cap or not (np.isfinite(VP).all() and np.isfinite(VQ).all()):
                continue
            out.scored += 1
            fit = self._solve_rational(VP, VQ)
            if fit is None:
                continue
            a, b = fit
            programs = self._write_rational(P, a, Q, b)
            if programs:
                out.calls += len(P) + len(Q)  # the monomial columns, each once
                return [(prog, f"a rational fit P/Q of degrees {p}/{q}") for prog in programs]
        return []

    def _solve_rational(self, VP: np.ndarray, VQ: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Coefficients (a, b) of P = a @ VP, Q = b @ VQ with P/Q within the bar, sparsified."""
        y = self.y
        w = np.ones_like(y)
        support = np.ones(len(VP) + len(VQ), bool)
        a = b = None
        for _ in range(SK_ROUNDS):
            solved = self._svd_rational(VP, VQ, support, w)
            if solved is None:
                return None
            a, b, gap = solved
            if not self.noisy and gap > GAP:
                return None  # no clear null space: an approximation (Pade), not the law
            v = np.concatenate([a, b])
            with np.errstate(all="ignore"):
                Qv = b @ VQ
                if not np.all(np.abs(Qv) > 1e-12 * np.abs(Qv).max()):
                    return None
                w = 1.0 / np.abs(Qv)
                w /= w.mean()
            # drop coefficients that contribute nothing
            contrib = np.abs(v) * np.concatenate([np.linalg.norm(VP, axis=1), np.linalg.norm(y * VQ, axis=1)])
            support = support & (contrib > 1e-9 * contrib.max())
        if self._rational_loss(VP, VQ, a, b) > self.bar:
            return None
        # backward elimination: drop the coefficient whose loss is least while the bar holds
        while support.sum() > 2 and support.sum() <= 2 * NOISY_SUPPORT:
            trials = []
            for j in np.flatnonzero(support):
                trial = support.copy()
                trial[j] = False
                if not trial[: len(VP)].any() or not trial[len(VP) :].any():
                    continue
                solved = self._svd_rational(VP, VQ, trial, w)
                if solved is not None:
                    ab = solved[:2]
                    trials.append((self._rational_loss(VP, VQ, *ab), j, ab))
            if not trials:
                break
            loss, j, ab = min(trials, key=lambda t: t[0])
            if loss > self.bar:
                break
            support[j] = False
            a, b = ab
        return a, b

    def _svd_rational(self, VP, VQ, support, w):
        """P and Q coefficients from the smallest singular vector of the weighted system
        ``P - y*Q = 0`` on ``support``, and that singular value over the next (the gap)."""
        A = (np.concatenate([VP, -self.y * VQ]).T * w[:, None])[:, support]
        norms = np.linalg.norm(A, axis=0) + 1e-300
        try:
            _, s, vt = np.linalg.svd(A / norms, full_matrices=False)
        except np.linalg.LinAlgError:
            return None
        v = np.zeros(len(support))
        v[support] = vt[-1] / norms
        gap = s[-1] / s[-2] if len(s) > 1 and s[-2] > 0 else 0.0
        return v[: len(VP)], v[len(VP) :], gap

    def _rational_loss(self, VP, VQ, a, b) -> float:
        with np.errstate(all="ignore"):
            pred = (a @ VP) / (b @ VQ)
            loss = float(nmse(pred, self.y)[0])
        return loss if np.isfinite(pred).all() and math.isfinite(loss) else math.inf

    def _write_rational(self, P, a, Q, b) -> list[Program]:
        pairs_p = [(c, p) for c, p in zip(a, P, strict=True) if c != 0]
        pairs_q = [(c, q) for c, q in zip(b, Q, strict=True) if c != 0]
        return self._write_pq(pairs_p, pairs_q)

    def _write_pq(self, pairs_p, pairs_q) -> list[Program]:
        """P/Q from (coefficient, exponents) pairs, in the set's tokens."""
        if not pairs_p or not pairs_q:
            return []
        # Q's largest coefficient becomes 1: of a monomial, where there is one, so that
        # it is written without a constant (c*S/(S + c), not c*S/(c*S + 1))
        monos = [cq for cq in pairs_q if sum(cq[1]) > 0] if self.fs.has_const else []
        lead = max(monos or pairs_q, key=lambda cq: abs(cq[0]))[0]
        pairs_p = [(c / lead, p) for c, p in pairs_p]
        pairs_q = [(c / lead, q) for c, q in pairs_q]
        if self.fs.has_const:
            num = self._const_poly(pairs_p)
            den = self._const_poly(pairs_q, fixed_one=True)
            tokens = ("div", *num[0], *den[0])
            return [Program(tokens, (*num[1], *den[1]))]
        for scale in self._scales(pairs_p + pairs_q):
            sp = [(snap(c * scale), p) for c, p in pairs_p]
            sq = [(snap(c * scale), q) for c, q in pairs_q]
            if any(c is None for c, _ in sp + sq):
                continue
            with np.errstate(all="ignore"):
                num = sum(float(c) * np.prod(self.X ** np.array(p), axis=1) for c, p in sp)
                den = sum(float(c) * np.prod(self.X ** np.array(q), axis=1) for c, q in sq)
                loss = float(nmse(num / den, self.y)[0])
            if not loss <= self.bar:
                continue
            if all(c < 0 for c, _ in sq):  # flip both signs: Q written with a positive part
                sp, sq = [(-c, p) for c, p in sp], [(-c, q) for c, q in sq]
            num_t = self._exact_poly(sp)
            den_t = self._exact_poly(sq)
            if num_t is not None and den_t is not None:
                return [Program(("div", *num_t, *den_t))]
        return []

    @staticmethod
    def _scales(pairs) -> list[float]:
        """Scales that may make every coefficient a small integer or fraction: each
        coefficient's reciprocal, smallest magnitude first."""
        mags = sorted({abs(c) for c, _ in pairs if c != 0})
        return [1.0] + [1.0 / m for m in mags[:6]]

    def _exact_poly(self, pairs) -> Tokens | None:
        d = self.X.shape[1]
        if d == 1:
            dense = [Fraction(0)] * (max(p[0] for _, p in pairs) + 1)
            for c, p in pairs:
                dense[p[0]] = c
            if dense[-1] > 0:
                h = self.speller.horner(dense, "x1")
                if h is not None:
                    return h
        return self.speller.signed_sum([(c, None if sum(p) == 0 else monomial(p)) for c, p in pairs])

    @staticmethod
    def _const_poly(pairs, fixed_one: bool = False) -> tuple[Tokens, list[float]]:
        """``sum(c * monomial)`` with fitted constants; with ``fixed_one`` the coefficient
        equal to 1 is left out (P/Q is unchanged by a common scale)."""
        parts: list[Tokens] = []
        consts: list[float] = []
        for c, p in pairs:
            mono = monomial(p)
            if fixed_one and abs(c - 1.0) < 1e-12 and sum(p) > 0:
                parts.append(mono)
                fixed_one = False
            elif sum(p) == 0:
                parts.append((CONST,))
                consts.append(float(c))
            else:
                parts.append(("mul", CONST, *mono))
                consts.append(float(c))
        tokens = parts[0]
        for part in parts[1:]:
            tokens = ("add", *tokens, *part)
        # consts appear in prefix order, which here is the order of the parts
        return tokens, consts


def subset_fits(G: np.ndarray, b: np.ndarray, tt: float, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Every support of ``k`` columns solved at once by batched normal equations, from the
    columns' Gram matrix ``G``, their products ``b`` with the centred target and its squared
    norm ``tt``: the supports (rows of column indices) and each one's residual share
    (about 1e-14 at best). None when a system is singular."""
    subsets = np.array(list(combinations(range(len(G)), k)))
    Gs = G[subsets[:, :, None], subsets[:, None, :]] + 1e-12 * np.eye(k)
    bs = b[subsets]
    try:
        coef = np.linalg.solve(Gs, bs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return None
    return subsets, (tt - np.sum(bs * coef, axis=1)) / tt


def qs_without(qs_all: list[tuple[int, ...]], ps: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Q's supports that do not equal P's (P/Q would be constant)."""
    return [qs for qs in qs_all if qs != ps]


def snap(value: float) -> Fraction | None:
    """``value`` as a fraction with a small denominator, or None if it is not near one."""
    if not math.isfinite(value):
        return None
    f = Fraction(value).limit_denominator(DENOMINATOR)
    if abs(f.numerator) > 999 or abs(float(f) - value) > 1e-6 * max(1.0, abs(value)):
        return None
    return f
