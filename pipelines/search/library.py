"""The sub-goal library: small programs enumerated on the task's X, looked up by their output.

A sub-goal is a value a node must produce; the library answers it exactly (an entry equal
to it), as a split ``A op B`` of two entries, as a sum of entries with fitted coefficients,
or with a fitted constant inside one entry. The sub-goal stage (``pipelines/search/subgoal.py``)
builds and grows it; the recursion (``pipelines/search/decompose.py``) peels siblings off its
first entries.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from pipelines.search.linear import subset_fits
from simulator.execute import node_values
from simulator.inverse import split_solvers
from simulator.language import arity
from simulator.operators import OPERATORS
from simulator.program import Program


def unary_preimage(u: str, z: np.ndarray) -> np.ndarray:
    """The B with ``u(B) = z`` on u's principal branch (NaN outside u's range)."""
    return OPERATORS[u].inverse(z)[0]


class Library:
    """Small programs enumerated on the task's X, with their outputs, for lookup by value.

    Exact lookups project each output on a fixed random direction and binary-search the
    sorted projections, so thousands of targets are matched in a few vectorised calls.
    """

    def __init__(self, programs: list[Program], outputs: np.ndarray, X: np.ndarray, tol: float = 1e-9):
        with np.errstate(all="ignore"):
            small = np.abs(outputs).max(axis=1) < 1e6 if len(programs) else np.zeros(0, bool)
        self.programs = [p for p, s in zip(programs, small) if s]
        self.outputs = outputs[small]
        self.position = {p.tokens: j for j, p in enumerate(self.programs)}
        arithmetic = {"add", "sub", "mul", "div"}
        self.rational_limit = 5_000
        self.rational = [all(t in arithmetic or arity(t) == 0 for t in p.tokens) for p in self.programs]
        self.X = X
        self.tol = tol
        n = outputs.shape[1] if outputs.ndim == 2 else 0
        self.direction = np.random.default_rng(12345).normal(size=n)
        self.direction_norm = float(np.linalg.norm(self.direction))
        # Candidates scored without a simulator call: a lookup decides, for every entry, whether
        # it equals the target, so it scores len(self) candidates per target row.
        self.scored = 0
        keys = self.outputs @ self.direction
        self.order = np.argsort(keys)
        self.keys = keys[self.order]

    def __len__(self) -> int:
        return len(self.programs)

    @cached_property
    def centered(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each output minus its mean, its norm, and whether it is not a constant: the shapes
        that affine fits (``c1*L + c0``) compare, computed once per library."""
        F = self.outputs - self.outputs.mean(axis=1, keepdims=True)
        norms = np.sqrt((F**2).sum(axis=1))
        return F, norms, norms > 1e-9 * (np.abs(self.outputs).max(axis=1) + 1e-300)

    def lookup(self, targets: np.ndarray) -> np.ndarray:
        """For each row of ``targets`` (m, n), the index of a library entry equal to it, or -1."""
        out = np.full(len(targets), -1)
        if len(self.programs) < 2 or not len(targets):
            return out
        with np.errstate(all="ignore"):
            ok = np.isfinite(targets).all(axis=1)
            self.scored += int(ok.sum()) * len(self.programs)
            s = targets @ self.direction
            power = np.mean(targets**2, axis=1) + 1e-12
            # An entry within tol has |key - s| <= |entry - target| * |direction|: only rows
            # whose neighbour's key is that close are compared point by point.
            reach = 1.01 * np.sqrt(self.tol * power * targets.shape[1]) * self.direction_norm
            pos = np.clip(np.searchsorted(self.keys, s), 1, len(self.keys) - 1)
            for shift in (-1, 0):
                rows = np.flatnonzero(ok & (out < 0) & (np.abs(self.keys[pos + shift] - s) <= reach))
                if not len(rows):
                    continue
                j = self.order[pos[rows] + shift]
                err = np.mean((self.outputs[j] - targets[rows]) ** 2, axis=1) / power[rows]
                hit = err < self.tol
                out[rows[hit]] = j[hit]
        return out

    def nearest(self, target: np.ndarray, k: int) -> list[int]:
        """The ``k`` entries closest to ``target`` in relative squared error."""
        with np.errstate(all="ignore"):
            err = np.mean((self.outputs - target) ** 2, axis=1) / (np.mean(target**2) + 1e-12)
        err[~np.isfinite(err)] = np.inf
        self.scored += len(err)
        k = min(k, len(err))
        best = np.argpartition(err, k - 1)[:k]
        return [int(j) for j in sorted(best, key=lambda j: err[j]) if np.isfinite(err[j])]

    def match(self, targets: np.ndarray, unary: tuple[str, ...]) -> list[tuple[int, Program]]:
        """Rows of ``targets`` that equal a library entry L or ``u(L)``: (row, program) pairs."""
        m = len(targets)
        with np.errstate(all="ignore"):  # one lookup for the targets and all their preimages
            hits = self.lookup(np.concatenate([targets, *(unary_preimage(u, targets) for u in unary)]))
        found = []
        for k in np.flatnonzero(hits >= 0):
            block, row = divmod(int(k), m)
            tokens = self.programs[hits[k]].tokens
            found.append((row, Program(tokens if block == 0 else (unary[block - 1], *tokens))))
        return found

    @np.errstate(all="ignore")  # huge targets overflow the normal equations; those fits are NaN and dropped
    def linear_fits(
        self, target: np.ndarray, terms: int = 3, pool: int = 30, rational: int = 40, exact_only: bool = False
    ) -> list[Program]:
        """``c1*L1 + ... + ck*Lk + c0`` fits of ``target``, for sets with fitted constants.

        The library supplies the shapes, least squares the coefficients. Every subset of up
        to ``terms`` shapes from a pool is solved at once (batched normal equations): the
        pool holds the simplest shapes, the rational ones (arithmetic only), and those most
        correlated with the target and with the best one-term residual. Returns, for each
        k, every fit that is exact, and (unless ``exact_only``) the best one-term fit.
        """
        n = len(target)
        F, norms, usable = self.centered
        t = target - target.mean()
        corr = np.where(usable, np.abs(F @ t) / (norms + 1e-300), -1)
        best = int(np.argmax(corr))
        r1 = t - F[best] * (F[best] @ t) / (norms[best] ** 2)
        corr1 = np.where(usable, np.abs(F @ r1) / (norms + 1e-300), -1)
        simple = [j for j in np.flatnonzero(usable)[:pool]]
        rational_ids = [j for j in np.flatnonzero(usable[: self.rational_limit]) if self.rational[j]][
            :rational
        ]
        chosen: list[int] = []
        seen: set[bytes] = set()
        for j in [*simple, *rational_ids, *np.argsort(-corr)[:pool], *np.argsort(-corr1)[:pool]]:
            sig = np.round(F[j] / norms[j] * np.sign(F[j][np.argmax(np.abs(F[j]))]), 9).tobytes()
            if usable[j] and sig not in seen:  # shapes equal up to scale and shift count once
                seen.add(sig)
                chosen.append(int(j))
        D = F[chosen] / norms[chosen, None]
        G, b, tt = D @ D.T, D @ t, float(t @ t) + 1e-300
        out: list[Program] = []
        for k in range(1, min(terms, n - 2) + 1):
            fit = subset_fits(G, b, tt, k)
            if fit is None:
                continue
            subsets, rss = fit
            self.scored += len(subsets)
            order = np.argsort(rss)
            # The best one-term fit seeds the search; longer sums only when exact (checked
            # again by lstsq), since inexact many-term fits of smooth data reach 1e-14 and
            # crowd the search out.
            fits = [
                self._least_squares([chosen[j] for j in subsets[i]], target)
                for i in order[:8]
                if rss[i] < 1e-10
            ]
            exact = [p for p, res in fits if res < 1e-20]
            out += exact
            if k == 1 and not exact and not exact_only:
                out.append(self._least_squares([chosen[j] for j in subsets[order[0]]], target)[0])
        return out

    def affine_split(
        self, target: np.ndarray, binary: tuple[str, ...], unary: tuple[str, ...], left: int
    ) -> list[Program]:
        """Programs ``op(A, u(c1*L + c0))`` (and ``op(u(...), A)``) equal to ``target``: A among
        the first ``left`` entries, L any entry, u a unary operator or none, c fitted.

        A library entry with a fitted inner constant: ``exp(-0.3*x)`` is no entry, but it is
        ``exp(c1*x + c0)``. For each A and u, the needed inner values are matched against
        every entry at once by correlation; only exact matches (up to rounding) are returned,
        each checked forwards.
        """
        n = len(target)
        F, norms, usable = self.centered
        D = np.where(usable[:, None], F / (norms[:, None] + 1e-300), 0.0)
        A = self.outputs[:left]
        scale = np.mean(target**2) + 1e-12
        found: list[Program] = []
        with np.errstate(all="ignore"):
            for op in binary:
                f = OPERATORS[op].numpy
                for solve, a_left in split_solvers(op):
                    need = solve(target[None, :], A)  # (left, n): what B must be
                    for u in (None, *unary):
                        inner = need if u is None else unary_preimage(u, need)
                        rows = np.flatnonzero(np.isfinite(inner).all(axis=1))
                        if not len(rows):
                            continue
                        T = inner[rows] - inner[rows].mean(axis=1, keepdims=True)
                        tn = np.sqrt((T**2).sum(axis=1))
                        ok = tn > 1e-9 * (np.abs(inner[rows]).max(axis=1) + 1e-300)
                        corr = np.abs((T[ok] / tn[ok, None]) @ D.T)  # (rows, entries)
                        self.scored += corr.size
                        for r, j in zip(*np.nonzero(corr > 1 - 1e-12)):
                            a = int(rows[np.flatnonzero(ok)[r]])
                            basis = np.column_stack([self.outputs[j], np.ones(n)])
                            coef, *_ = np.linalg.lstsq(basis, inner[a], rcond=None)
                            b = Program(
                                ("add", "mul", "const", *self.programs[j].tokens, "const"),
                                (float(coef[0]), float(coef[1])),
                            )
                            if u is not None:
                                b = Program((u, *b.tokens), b.consts)
                            bv = node_values(b, self.X)[0]
                            out = f(A[a], bv) if a_left else f(bv, A[a])
                            if np.mean((out - target) ** 2) / scale < self.tol:
                                ta = self.programs[a].tokens
                                tokens = (op, *ta, *b.tokens) if a_left else (op, *b.tokens, *ta)
                                found.append(Program(tokens, b.consts))
                            if len(found) >= 8:
                                return found
        return found

    def _least_squares(self, terms: list[int], target: np.ndarray) -> tuple[Program, float]:
        """The fitted sum, and its residual relative to the target's spread."""
        A = np.column_stack([self.outputs[terms].T, np.ones(len(target))])
        coef, *_ = np.linalg.lstsq(A, target, rcond=None)
        with np.errstate(all="ignore"):  # a huge entry gives an inf residual: not a fit
            res = float(np.mean((A @ coef - target) ** 2) / (np.var(target) + 1e-300))
        return self._linear_program(tuple(terms), coef), res

    def _linear_program(self, chosen: tuple[int, ...], coef: np.ndarray) -> Program:
        tokens: list[str] = ["add"] * len(chosen)
        for k in chosen:
            tokens += ["mul", "const", *self.programs[k].tokens]
        tokens.append("const")
        return Program(tuple(tokens), tuple(float(c) for c in coef))

    def split(
        self, target: np.ndarray, binary: tuple[str, ...], unary: tuple[str, ...], left: int
    ) -> list[Program]:
        """Programs ``op(A, B)`` / ``op(B, A)`` equal to ``target``: A among the first ``left``
        entries, B a library entry or a unary operator of one.

        Each match is checked forwards, since solving for B can lose all precision (z - A
        when A is huge): only programs whose output equals the target are returned.
        """
        found: list[Program] = []
        A = self.outputs[:left]
        with np.errstate(all="ignore"):
            scale = np.mean(target**2) + 1e-12
            for op in binary:
                f = OPERATORS[op].numpy
                for solve, a_left in split_solvers(op):
                    for row, b in self.match(solve(target[None, :], A), unary):
                        known = self.position.get(b.tokens)
                        bv = node_values(b, self.X)[0] if known is None else self.outputs[known]
                        out = f(A[row], bv) if a_left else f(bv, A[row])
                        if np.mean((out - target) ** 2) / scale < self.tol:
                            a = self.programs[row].tokens
                            found.append(Program((op, *a, *b.tokens) if a_left else (op, *b.tokens, *a)))
        return found
