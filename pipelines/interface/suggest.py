"""Which point to measure next: query by committee, with the Pareto front as the committee.

A solve leaves more than one law: the front holds programs of other sizes that fit the data
nearly as well as the chosen one. Where they agree, a new measurement tells little; where
they disagree, it refutes some of them. So the next points to measure are the inputs where
the leading programs of the front disagree most (query by committee, Seung, Opper and
Sompolinsky 1992; the front as the committee in symbolic regression: Haut, Banzhaf and Punch
2022; Medina and White 2023). ``docs/suggest.md`` has the definitions.

:func:`suggest` takes (X, y, result, bounds, n, seed), so the command line
(``induce suggest``), ``ProgramRegressor.suggest`` and a measure-and-refit loop call one function.
"""

from __future__ import annotations

import difflib
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.execute import evaluate
from simulator.program import Program

LOSS_FACTOR = 1.5  # members fit within this factor of the best loss (PySR's factor for "best")
EXACT_NMSE = 1e-12  # losses below this are exact fits, all alike (the planner's default tol)
MIN_COMMITTEE = 3  # the chosen law and two rivals at least, when the front has them
MAX_COMMITTEE = 8  # the most members: more only adds programs that fit far worse
MIN_CANDIDATES = 4096  # quasi-random candidate inputs (a power of 2, as Sobol's balance wants)
SPACING = 0.5  # picks keep this fraction of the spacing of n points spread evenly over the box
MAX_POINTS = 10_000  # suggested at once; a loop asks again after measuring instead
DIGITS = 5  # a suggested coordinate is rounded to about this many digits of its range


class SuggestError(ValueError):
    """Bad bounds, a bad count, or a front that cannot disagree with itself."""


@dataclass(frozen=True)
class Suggestion:
    """The suggested inputs and why: each point's disagreement and each member's prediction.

    ``points`` is (n, d): the committee's picks in decreasing disagreement, then the gap
    points; ``predictions`` is (members, n), row 0 the chosen law; ``box`` is the (d, 2) box
    the points were drawn from.
    """

    points: np.ndarray
    scores: np.ndarray
    predictions: np.ndarray
    committee: list[Program]
    losses: list[float]
    box: np.ndarray
    names: tuple[str, ...]

    def frame(self, explain: bool = False):
        """The points as a DataFrame with the feature names as columns; ``explain`` adds the
        disagreement and each member's prediction (``m1`` is the chosen law)."""
        import pandas as pd

        df = pd.DataFrame(self.points, columns=list(self.names))
        if explain:  # ten digits: 17.54794041, not 17.547940410000002
            short = np.vectorize(lambda v: float(f"{v:.10g}"), otypes=[float])
            df["disagreement"] = short(self.scores)
            for k, row in enumerate(self.predictions):
                df[f"m{k + 1}"] = short(row)
        return df


def committee(result, max_size: int = MAX_COMMITTEE) -> tuple[list[Program], list[float]]:
    """The chosen law first, then the front rows that fit nearly as well, lowest loss first.

    Nearly as well: a training loss within ``LOSS_FACTOR`` of the best one, the best counted
    as at least the noise floor (on noisy data the law itself scores that) and the exact-fit
    bar (exact fits differ only by rounding). A loss ratio, not a fixed count, so a committee
    holds only programs the data cannot yet tell apart. When too few rows qualify (exact data:
    the chosen law is alone in fitting exactly), the next lowest losses fill it to
    ``MIN_COMMITTEE``: the nearest rivals are the ones a measurement should refute. Rows no
    better than the mean of y (NMSE 1) join only when nothing else is left.
    """
    chosen = result.program
    rows = sorted(
        (r for r in result.front if r.program.key != chosen.key and math.isfinite(r.loss)),
        key=lambda r: r.loss,
    )
    best = min([result.loss, *(r.loss for r in rows)])
    bar = LOSS_FACTOR * max(best, result.noise_floor, EXACT_NMSE)
    near = [r for r in rows if r.loss <= bar]
    rest = sorted([r for r in rows if r.loss > bar], key=lambda r: (r.loss >= 1.0, r.loss))
    members = [*near, *rest[: max(0, MIN_COMMITTEE - 1 - len(near))]][: max_size - 1]
    return [chosen, *(r.program for r in members)], [float(result.loss), *(r.loss for r in members)]


def disagreement(programs: Sequence[Program], X: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """The committee's disagreement at each row of X: the standard deviation of the members'
    predictions over ``scale`` (y's, so 1 is a spread as wide as the data's own).

    ``programs[0]`` is the chosen law. Where it is undefined the score is NaN: such a point is
    never suggested, since the law under test says nothing there, and it is most often outside
    the system's domain too (a log of a negative input). Where it is defined but another
    member is not, the score is inf: a measurement there refutes one side whatever it shows.
    """
    P, spread = _predictions(programs, X, scale)
    finite = np.isfinite(P)
    score = spread.copy()
    score[~finite.all(axis=0)] = np.inf
    score[~finite[0]] = np.nan
    return score


def _predictions(programs: Sequence[Program], X: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Each member's predictions (members, rows), and their spread over ``scale`` among the
    members that are finite at each row (0 where fewer than two are)."""
    P = np.stack([evaluate(p, X) for p in programs])
    finite = np.isfinite(P)
    with np.errstate(all="ignore"):
        Z = np.where(finite, P / scale, 0.0)
        count = finite.sum(axis=0)
        mean = Z.sum(axis=0) / np.maximum(count, 1)
        var = np.where(finite, (Z - mean) ** 2, 0.0).sum(axis=0) / np.maximum(count, 1)
        spread = np.where(count >= 2, np.sqrt(var), 0.0)
    return P, np.nan_to_num(spread, nan=np.inf)


def parse_bounds(text: str, option: str = "--bounds") -> dict[str, tuple[float, float]]:
    """``x=0:3,t=1:10`` as {name: (low, high)}; the names are checked by :func:`resolve_bounds`."""
    out: dict[str, tuple[float, float]] = {}
    example = f"write name=low:high, e.g. {option} x=0:3,t=1:10"
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise SuggestError(f"{option} is empty; {example}")
    for part in parts:
        name, eq, span = part.partition("=")
        low, colon, high = span.partition(":")
        try:
            if not (eq and colon and name.strip()):
                raise ValueError
            pair = (float(low), float(high))
        except ValueError:
            raise SuggestError(f"{option}: cannot read {part!r}; {example}") from None
        if name.strip() in out:
            raise SuggestError(f"{option}: {name.strip()!r} is bounded twice")
        out[name.strip()] = pair
    return out


def resolve_bounds(
    bounds: Mapping[str, tuple[float, float]] | None,
    names: Sequence[str],
    X: np.ndarray,
    option: str = "bounds",
) -> np.ndarray:
    """The (d, 2) box to suggest in: each named bound, and the data's own range (min..max of
    the column) for every column not named, since a law is trusted only where it was fitted
    unless the user says how far to look."""
    box = np.column_stack([X.min(axis=0), X.max(axis=0)]).astype(np.float64)
    for name, pair in (bounds or {}).items():
        key = str(name)
        if key not in names:
            close = difflib.get_close_matches(key, list(names), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            columns = ", ".join(repr(n) for n in names)
            raise SuggestError(f"{option}: no input column named {key!r}{hint} (inputs: {columns})")
        try:
            low, high = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise SuggestError(f"{option}: {key!r} needs (low, high), got {pair!r}") from None
        if not (math.isfinite(low) and math.isfinite(high)):
            raise SuggestError(f"{option}: {key!r} needs finite ends, got {low:g}:{high:g}")
        if low >= high:
            raise SuggestError(f"{option}: {key}={low:g}:{high:g}: the low end must be below the high end")
        box[list(names).index(key)] = (low, high)
    return box


def suggest(
    X: np.ndarray,
    y: np.ndarray,
    result,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    n: int = 5,
    seed: int | None = None,
    names: Sequence[str] | None = None,
    gaps: int = 0,
) -> Suggestion:
    """The ``n`` inputs inside ``bounds`` where the front's leading programs disagree most,
    but ``gaps`` of them where the measured points leave the widest gap.

    Candidates are a scrambled Sobol sample of the box (seeded by ``seed``); picks go greedily
    by disagreement, each at least a minimum distance (in coordinates scaled to the box) from
    the earlier ones, so that n points are not n copies of one spot. The distance halves when
    too few candidates keep it. The gap points go last, each the candidate farthest from
    every measured point and every earlier pick: the committee knows only the laws the search
    has found, and a law none of them is can show anywhere, most likely where nothing was
    measured. ``names`` name X's columns (default: the result's variable names, else x1,
    x2, ...); ``bounds`` uses them.
    """
    from scipy.stats import qmc

    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    y = np.asarray(y, dtype=np.float64).ravel()
    d = X.shape[1]
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_POINTS:
        raise SuggestError(f"n must be an integer from 1 to {MAX_POINTS:,}, got {n!r}")
    if isinstance(gaps, bool) or not isinstance(gaps, (int, np.integer)) or not 0 <= gaps < n:
        raise SuggestError(f"gaps must be an integer from 0 to n - 1 = {n - 1}, got {gaps!r}")
    names = tuple(names or result.variable_names or [f"x{i + 1}" for i in range(d)])
    if len(names) != d:
        raise SuggestError(f"{len(names)} names for {d} input column(s)")
    box = resolve_bounds(bounds, names, X)
    programs, losses = committee(result)
    if len(programs) < 2:
        raise SuggestError("the Pareto front holds only the chosen law; a committee of one cannot disagree")
    scale = float(np.std(y)) or 1.0
    m = max(int(math.log2(MIN_CANDIDATES)), math.ceil(math.log2(64 * n)))
    U = qmc.Sobol(d, scramble=True, rng=np.random.default_rng(seed)).random_base2(m)
    width = box[:, 1] - box[:, 0]
    C = box[:, 0] + U * width
    score = disagreement(programs, C, scale)
    _, spread = _predictions(programs, C, scale)
    ok = ~np.isnan(score)
    if ok.sum() < n:
        raise SuggestError(
            f"the chosen law is defined at only {int(ok.sum())} of {len(C)} candidate points in the "
            f"bounds, fewer than {n}; narrow the bounds to where it is defined"
        )
    spans = width > 0  # a column the data hold constant, and no bound widens, cannot spread picks
    radius = SPACING * n ** (-1.0 / max(int(spans.sum()), 1))
    picks = _spread_out((U * spans)[ok], score[ok], spread[ok], n - gaps, radius)
    if gaps:
        measured = np.clip((X - box[:, 0]) / np.where(width > 0, width, 1.0), 0.0, 1.0) * spans
        picks += _fill_gaps((U * spans)[ok], np.vstack([measured, (U * spans)[ok][picks]]), gaps)
    points = _rounded(C[ok][picks], box)
    P, _ = _predictions(programs, points, scale)
    return Suggestion(
        points=points,
        scores=disagreement(programs, points, scale),
        predictions=P,
        committee=programs,
        losses=losses,
        box=box,
        names=names,
    )


def _spread_out(U: np.ndarray, score: np.ndarray, spread: np.ndarray, n: int, radius: float) -> list[int]:
    """Greedy picks by ``score`` (ties by ``spread``), each at least ``radius`` from the
    earlier picks in U's unit-box coordinates; the radius halves when no candidate keeps it."""
    order = np.lexsort((-spread, -score))
    nearest = np.full(len(U), np.inf)  # each candidate's distance to the nearest pick
    free = np.ones(len(U), dtype=bool)
    picked: list[int] = []
    while len(picked) < n:
        eligible = (free & (nearest >= radius))[order]
        if not eligible.any():
            radius = radius / 2 if radius > 1e-12 else 0.0
            continue
        i = int(order[np.argmax(eligible)])
        picked.append(i)
        free[i] = False
        nearest = np.minimum(nearest, np.linalg.norm(U - U[i], axis=1))
    return picked


def _fill_gaps(U: np.ndarray, taken: np.ndarray, n: int) -> list[int]:
    """``n`` picks among the candidates U (unit-box coordinates), each the farthest from every
    row of ``taken`` and every earlier pick (maximin: the centre of the widest gap)."""
    from scipy.spatial import cKDTree

    nearest = cKDTree(taken).query(U)[0]
    picked: list[int] = []
    for _ in range(n):
        i = int(np.argmax(nearest))
        picked.append(i)
        nearest = np.minimum(nearest, np.linalg.norm(U - U[i], axis=1))
        nearest[i] = -1.0
    return picked


def _rounded(points: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Coordinates rounded to ``DIGITS`` digits of the box's width (2.71828 on 0..3, not
    2.718281828459045: a value one can set on an instrument), kept inside the box."""
    out = points.copy()
    for j, (low, high) in enumerate(box):
        if high > low:
            decimals = DIGITS - 1 - math.floor(math.log10(high - low))
            out[:, j] = np.clip(np.round(out[:, j], decimals), low, high)
    return out


def add_parser(sub) -> None:
    """``induce suggest``: the data and search options are solve's own."""
    from pipelines import cli

    p = sub.add_parser(
        "suggest",
        help="solve a CSV, then print the inputs to measure next: where the front's laws disagree most",
        description="Solve the CSV, then write as CSV the n inputs where the leading programs of the "
        "Pareto front disagree most (docs/suggest.md). The law and the committee go to stderr.",
    )
    cli.add_data_arguments(p)
    p.add_argument("-n", type=int, default=5, help="how many points to suggest (default 5)")
    p.add_argument(
        "--gaps",
        type=int,
        default=0,
        help="how many of the n points fill the widest gaps in the measured data instead of going "
        "where the committee disagrees (default 0: all by disagreement; docs/loop.md measures both)",
    )
    p.add_argument(
        "--bounds",
        help="where to look, e.g. x=0:3,t=1:10; columns not named keep the data's own range",
    )
    cli.add_search_arguments(p, "seeds the search and the candidate sample (default 0)")
    p.add_argument("--out", help="write the CSV here instead of stdout")
    p.add_argument("--force", action="store_true", help="replace --out when it exists")
    p.add_argument(
        "--plot",
        help="write a PNG: the data, the committee's laws and the suggested points (one input: the "
        "curves over the bounds; more: y against each input, the members' spread at each point)",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="add columns: the disagreement, and each committee member's prediction (m1: the chosen law)",
    )
    p.set_defaults(func=main)


def main(args) -> int:
    """Read, check the bounds and the output path (before the search, not after), solve, suggest."""
    from pathlib import Path

    from pipelines import cli

    if not args.csv:
        raise cli.UsageError("suggest needs --csv FILE and --target COLUMN")
    if not 1 <= args.n <= MAX_POINTS:
        raise cli.UsageError(f"-n must be from 1 to {MAX_POINTS:,}, got {args.n}")
    if not 0 <= args.gaps < args.n:
        raise cli.UsageError(f"--gaps must be from 0 to n - 1 = {args.n - 1}, got {args.gaps}")
    for path in (args.out, args.plot):
        if path and Path(path).exists() and not args.force:
            raise cli.UsageError(f"{path} exists; add --force to replace it")
    X, y, names = cli.load_csv(args)
    bounds = parse_bounds(args.bounds) if args.bounds is not None else None
    resolve_bounds(bounds, names, X, "--bounds")
    result = cli.run_search(args, X, y, names, f"{args.csv}: {args.target}")
    print(result, file=sys.stderr)
    found = suggest(X, y, result, bounds, args.n, args.seed, names, args.gaps)
    print(describe(found, result), file=sys.stderr)
    text = found.frame(args.explain).to_csv(index=False)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {len(found.points)} points to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.plot:
        plot(found, X, y, args.plot, args.target)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def plot(found: Suggestion, X: np.ndarray, y: np.ndarray, path: str, target: str = "y") -> None:
    """The data, the committee and the suggested points. One input: each member's curve over
    the box (m1, the chosen law, in bold) and the points where they part. More inputs: y
    against each input (at most four), and at each suggested point the range of the members'
    predictions, the disagreement a measurement there will settle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale = float(np.std(y)) or 1.0
    d = min(X.shape[1], 4)
    fig, axes = plt.subplots(1, d, figsize=(5.5 * d, 4.2), squeeze=False)
    for j, ax in enumerate(axes[0]):
        ax.scatter(X[:, j], y, color="gray", s=18, zorder=3, label="measured")
        if X.shape[1] == 1:
            grid = np.linspace(*found.box[0], 400)[:, None]
            P, _ = _predictions(found.committee, grid, scale)
            for k, row in enumerate(P):
                ax.plot(grid[:, 0], row, lw=2.2 if k == 0 else 1, color=f"C{k}", label=f"m{k + 1}")
            for x in found.points[:, 0]:
                ax.axvline(x, color="black", ls=":", lw=1)
        else:
            low, high = np.nanmin(found.predictions, axis=0), np.nanmax(found.predictions, axis=0)
            mid = found.predictions[0]
            ax.errorbar(found.points[:, j], mid, yerr=[mid - low, high - mid], fmt="o", color="C3",
                        capsize=4, label="suggested: m1, the members' range")  # fmt: skip
        ax.set_xlabel(found.names[j])
        ax.set_ylabel(target)
        ax.legend(fontsize=7)
    top = ", ".join(f"{v:.3g}" for v in found.scores[:5])
    fig.suptitle(f"where the committee disagrees (in sd of {target}): {top}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def describe(found: Suggestion, result) -> str:
    """The committee and the points' disagreement, for stderr."""
    from pipelines.search.result import rounded

    lines = ["", "committee (m1: the chosen law; then the front rows nearest it in loss)"]
    for k, (program, loss) in enumerate(zip(found.committee, found.losses)):
        lines.append(f"  m{k + 1}  loss {loss:10.4g}  {rounded(result.named(program))}")
    box = ", ".join(f"{n}={lo:g}:{hi:g}" for n, (lo, hi) in zip(found.names, found.box))
    scores = ", ".join(f"{s:.3g}" for s in found.scores)
    lines.append(f"suggested in {box}; disagreement (in y's standard deviations): {scores}")
    if np.isinf(found.scores).any():
        lines.append("  inf: a member is undefined there while the chosen law is defined")
    return "\n".join(lines)
