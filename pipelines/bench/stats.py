"""The bench's statistics, computed once from the run records (pandas).

:func:`summarize` gives a :class:`Summary`: recovery per task and method, the mean over
tasks, median calls to recovery and seconds per run, and the call ratios against
``uniform`` (over recovered runs, and censored). The Markdown summary, the console table and the W&B
table all read the same Summary; :func:`recovery_curve` feeds the plot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.sign_test import sign_test

BASELINE = "uniform"  # call ratios are this method's calls to recovery over each method's
REFERENCE = "plain"  # the paired comparison: the same machinery with every learned part swapped out
_COLUMNS = [
    "task", "seed", "method", "recovered", "calls_to_recovery", "seconds", "error",
    "simulator_calls", "candidates_scored", "noise", "noise_kind", "on_front", "peak_mib",
]  # fmt: skip


def frame(records: Sequence[dict]) -> pd.DataFrame:
    """The records as a table with the columns the statistics need (a failed run: ``failed``)."""
    df = pd.DataFrame.from_records(list(records), columns=_COLUMNS)
    df["recovered"] = df["recovered"].fillna(False).astype(bool)
    df["failed"] = df["error"].map(bool, na_action="ignore").fillna(False).astype(bool)
    for column in ("calls_to_recovery", "seconds", "simulator_calls", "candidates_scored"):
        df[column] = pd.to_numeric(df[column], errors="coerce").astype(float)
    return df


@dataclass
class Summary:
    """Every number the reports show, for the given tasks and methods (in their order)."""

    tasks: list[str]
    methods: list[str]
    runs: pd.DataFrame  # task x method: number of runs
    recovered: pd.DataFrame  # task x method: recovered runs
    failed: pd.DataFrame  # task x method: runs that ended with an error
    rate: pd.DataFrame  # task x method: recovered / runs (NaN without runs)
    mean_rate: dict[str, float | None]  # mean of ``rate`` over tasks; None for an unavailable method
    unavailable: set[str]  # methods whose every run failed
    median_calls: dict[str, float | None]  # over recovered runs, all tasks pooled
    median_seconds: dict[str, float | None]
    ratios: dict[str, dict[str, float]] = field(default_factory=dict)  # per method: task -> ratio
    censored: dict[str, dict[str, float]] = field(default_factory=dict)  # the same, censored
    errors: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # failed, runs, first error
    calls_per_second: dict[str, float | None] = field(default_factory=dict)  # over all its runs
    scored_per_second: dict[str, float | None] = field(default_factory=dict)
    # the median over the method's runs that did not recover: the speed of a search that goes on
    unrecovered_calls_per_second: dict[str, float | None] = field(default_factory=dict)
    peak_mib: dict[str, float | None] = field(default_factory=dict)  # the largest worker peak
    paired: dict[str, dict] = field(default_factory=dict)  # per method: against ``reference``
    reference: str = REFERENCE  # the stand-in every other method is paired against
    # (noise kind, noise, method): runs, law selected, law on the front
    by_noise: pd.DataFrame | None = None

    @property
    def n_runs(self) -> int:
        return int(self.runs.to_numpy().sum())

    @property
    def n_failed(self) -> int:
        return int(self.failed.to_numpy().sum())


def _none(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def summarize(
    records: Sequence[dict], tasks: list[str], methods: list[str], reference: str = REFERENCE
) -> Summary:
    """All the statistics of a bench, for ``tasks`` x ``methods``; each method is paired
    against ``reference`` (``plain`` unless the bench names another stand-in)."""
    df = frame(records)
    df = df[df["task"].isin(tasks) & df["method"].isin(methods)]
    grid = pd.MultiIndex.from_product([tasks, methods], names=["task", "method"])
    counts = (
        df.groupby(["task", "method"])
        .agg(runs=("recovered", "size"), recovered=("recovered", "sum"), failed=("failed", "sum"))
        .reindex(grid, fill_value=0)
    )

    def table(column: str) -> pd.DataFrame:
        return counts[column].unstack("method").reindex(index=tasks, columns=methods).astype(int)

    runs, recovered, failed = table("runs"), table("recovered"), table("failed")
    rate = (recovered / runs.where(runs > 0)).astype(float)
    unavailable = {m for m in methods if failed[m].sum() == runs[m].sum()}
    mean = rate.mean(axis=0, skipna=True)
    by_method = df.groupby("method")
    median_calls = df[df["recovered"]].groupby("method")["calls_to_recovery"].median()
    median_seconds = by_method["seconds"].median()

    errors = {}
    for m in methods:
        bad = df[(df["method"] == m) & df["failed"]]
        if len(bad):
            errors[m] = (len(bad), int(runs[m].sum()), str(bad["error"].iloc[0]))

    return Summary(
        tasks=list(tasks),
        methods=list(methods),
        runs=runs,
        recovered=recovered,
        failed=failed,
        rate=rate,
        mean_rate={m: None if m in unavailable else _none(mean.get(m)) for m in methods},
        unavailable=unavailable,
        median_calls={m: _none(median_calls.get(m)) for m in methods},
        median_seconds={m: _none(median_seconds.get(m)) for m in methods},
        ratios=call_ratios(df, tasks, methods) if BASELINE in methods else {},
        censored=call_ratios(df, tasks, methods, censored=True) if BASELINE in methods else {},
        errors=errors,
        calls_per_second={m: _rate(df, m, "simulator_calls") for m in methods},
        scored_per_second={m: _rate(df, m, "candidates_scored") for m in methods},
        unrecovered_calls_per_second={m: _unrecovered_rate(df, m) for m in methods},
        peak_mib={m: _peak(df, m) for m in methods},
        paired=paired(df, methods, reference) if reference in methods else {},
        reference=reference,
        by_noise=noise_table(df, methods),
    )


def noise_table(df: pd.DataFrame, methods: list[str]) -> pd.DataFrame | None:
    """Per noise kind, level and method: runs, % whose selected program is the law, and % whose
    Pareto front holds it; None when every run is noiseless. A record without ``noise_kind``
    (older than the kinds) is additive; a noiseless run's kind is ``none``."""
    noise = pd.to_numeric(df["noise"], errors="coerce").fillna(0.0)
    if not (noise > 0).any():
        return None
    kind = df["noise_kind"].astype(object).where(df["noise_kind"].notna(), "additive")
    kind = kind.where(noise > 0, "none")
    df = df.assign(noise=noise, noise_kind=kind, on_front=df["on_front"].astype("boolean"))
    out = (
        df.groupby(["noise_kind", "noise", "method"])
        .agg(
            runs=("recovered", "size"),
            selected=("recovered", "mean"),
            on_front=("on_front", "mean"),
        )
        .reset_index()
    )
    out = out[out["method"].isin(methods)]
    out[["selected", "on_front"]] = out[["selected", "on_front"]].astype(float) * 100
    order = {"none": 0, "additive": 1, "multiplicative": 2}
    out = out.sort_values(
        ["noise_kind", "noise", "method"], key=lambda c: c.map(order) if c.name == "noise_kind" else c
    )
    return out.reset_index(drop=True)


def _rate(df: pd.DataFrame, method: str, column: str) -> float | None:
    """Total of ``column`` over total seconds, for the method's completed runs that record it."""
    runs = df[(df["method"] == method) & ~df["failed"] & df[column].notna() & (df["seconds"] > 0)]
    return float(runs[column].sum() / runs["seconds"].sum()) if len(runs) else None


def _unrecovered_rate(df: pd.DataFrame, method: str) -> float | None:
    """The median over the method's completed runs that did not recover of calls per second."""
    runs = df[(df["method"] == method) & ~df["failed"] & ~df["recovered"] & (df["seconds"] > 0)]
    return float((runs["simulator_calls"] / runs["seconds"]).median()) if len(runs) else None


def _peak(df: pd.DataFrame, method: str) -> float | None:
    """The largest peak memory (MiB) recorded by the method's runs; None where none is."""
    peak = pd.to_numeric(df.loc[df["method"] == method, "peak_mib"], errors="coerce").dropna()
    return float(peak.max()) if len(peak) else None


def paired(df: pd.DataFrame, methods: list[str], reference: str = REFERENCE) -> dict[str, dict]:
    """Each method against ``reference`` on the same (task, seed) pairs: wins, losses, a
    two-sided sign test on them, and the median over tasks of the reference's censored calls
    over the method's, and the median over pairs of the method's calls per second over the
    reference's (the cost of its learned parts, measured run beside run)."""
    ok = df[~df["failed"]]
    wide = ok.pivot_table(index=["task", "seed"], columns="method", values="recovered", aggfunc="first")
    ok = ok.assign(rate=(ok["simulator_calls"] / ok["seconds"]).where(ok["seconds"] > 0))
    speed = ok.pivot_table(index=["task", "seed"], columns="method", values="rate", aggfunc="first")
    calls = ok["calls_to_recovery"].where(ok["recovered"], np.inf)
    med = calls.groupby([ok["task"], ok["method"]]).quantile(0.5, interpolation="lower").unstack("method")
    out = {}
    for m in methods:
        if m == reference or m not in wide or reference not in wide:
            continue
        both = wide[[m, reference]].dropna().astype(bool)
        wins, losses, p = sign_test(both[m], both[reference])
        finite = np.isfinite(med[m]) & np.isfinite(med[reference]) if m in med else []
        ratios = (med[reference][finite].clip(lower=1) / med[m][finite].clip(lower=1)) if len(finite) else []
        speeds = (speed[m] / speed[reference]).dropna() if m in speed and reference in speed else []
        out[m] = {
            "pairs": len(both),
            "wins": wins,
            "losses": losses,
            "p": p,
            "censored_ratio": float(np.median(ratios)) if len(ratios) else None,
            "ratio_tasks": int(len(ratios)),
            "speed_ratio": float(np.median(speeds)) if len(speeds) else None,
        }
    return out


def call_ratios(
    df: pd.DataFrame, tasks: list[str], methods: list[str], censored: bool = False
) -> dict[str, dict[str, float]]:
    """Per method, per task that both recover: median calls to recovery of ``uniform`` over the method's.

    By default the medians are over recovered runs only, which flatters a method that
    recovers a task in 1 seed of 10 (only its lucky run counts). ``censored`` counts a
    failed run as never recovering (infinitely many calls) and takes the lower median, so a
    task enters only when both methods recover it in at least half the seeds.
    """
    if censored:
        calls = df["calls_to_recovery"].where(df["recovered"], np.inf)
        medians = calls.groupby([df["task"], df["method"]]).quantile(0.5, interpolation="lower")
    else:
        medians = df[df["recovered"]].groupby(["task", "method"])["calls_to_recovery"].median()
    table = medians.unstack("method").reindex(index=tasks, columns=methods).astype(float)
    base = table[BASELINE]
    out = {}
    for m in methods:
        both = np.isfinite(base) & np.isfinite(table[m])
        ratio = base[both].clip(lower=1) / table[m][both].clip(lower=1)
        out[m] = {t: float(v) for t, v in ratio.items()}
    return out


def recovery_curve(records: Sequence[dict], method: str, budgets: np.ndarray) -> np.ndarray:
    """Share of the method's runs recovered within each budget of simulator calls (NaN: no runs)."""
    df = frame(records)
    runs = df[df["method"] == method]
    if runs.empty:
        return np.full(len(budgets), np.nan)
    hits = runs.loc[runs["recovered"], "calls_to_recovery"].dropna().to_numpy()
    return (hits[None, :] <= np.asarray(budgets)[:, None]).sum(axis=1) / len(runs)
