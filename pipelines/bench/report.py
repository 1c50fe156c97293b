"""The bench's reports from a :class:`~pipelines.bench.stats.Summary`: summary.md, the table, the plot."""

from __future__ import annotations

import math
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.bench.plan import HEADLINE_CALLS, HEADLINE_SEEDS
from pipelines.bench.stats import BASELINE, Summary, recovery_curve

PROTOCOL = "docs/benchmarks.md"


def _calls(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}"


def _ratio(ratios: dict[str, float]) -> str:
    return "–" if not ratios else f"{np.median(list(ratios.values())):.2f}x ({len(ratios)})"


def fewer(ratio: float, what: str = "calls") -> str:
    """A ratio of the reference's calls over a method's in words: "3.20× fewer calls" above 1,
    "4.76× more calls" below (never "0.21× fewer"), "as many calls" at 1."""
    if f"{ratio:.2f}" == "1.00":
        return f"as many {what}"
    if ratio > 1:
        return f"{ratio:.2f}× fewer {what}"
    return f"{1 / ratio:.2f}× more {what}"


def table_frame(s: Summary) -> pd.DataFrame:
    """The summary table as strings: a row per task, then the rows that sum up each method."""
    cells = (100 * s.rate).fillna(0).map(lambda v: f"{v:.0f}%")  # no runs: replaced by "–" below
    cells = cells + " (" + s.recovered.astype(str) + "/" + s.runs.astype(str) + ")"
    cells = cells.mask(s.failed == s.runs, "error").mask(s.runs == 0, "–")
    rows = {
        "**mean over tasks**": {
            m: "n/a" if s.mean_rate[m] is None else f"**{100 * s.mean_rate[m]:.1f}%**" for m in s.methods
        },
        "median calls to recovery": {m: _calls(s.median_calls[m]) for m in s.methods},
        "median seconds per run": {
            m: "–" if s.median_seconds[m] is None else f"{s.median_seconds[m]:.2f}" for m in s.methods
        },
    }
    rows["simulator calls per second"] = {m: _calls(s.calls_per_second.get(m)) for m in s.methods}
    rows["candidates scored per second"] = {m: _calls(s.scored_per_second.get(m)) for m in s.methods}
    rows["calls per second, median run not recovered"] = {
        m: _calls(s.unrecovered_calls_per_second.get(m)) for m in s.methods
    }
    rows["peak memory of a worker (MiB)"] = {m: _calls(s.peak_mib.get(m)) for m in s.methods}
    if BASELINE in s.methods:  # its own column stays empty: a method is not paired against itself
        rows[f"calls {BASELINE}/method (tasks both recover)"] = {
            m: "–" if m == BASELINE else _ratio(s.ratios[m]) for m in s.methods
        }
        rows["same, failed runs as never (tasks both recover in ≥ half)"] = {
            m: "–" if m == BASELINE else _ratio(s.censored[m]) for m in s.methods
        }
    out = pd.concat([cells, pd.DataFrame.from_dict(rows, orient="index")[s.methods]])
    out.index.name = "task"
    return out


def table(s: Summary) -> str:
    """The summary table as Markdown (also printed to stdout)."""
    return table_frame(s).reset_index().to_markdown(index=False, tablefmt="github", disable_numparse=True)


def _ratio_line(s: Summary, ratios: dict[str, dict[str, float]]) -> str:
    if "full" not in s.methods or BASELINE not in s.methods:
        return f"Not available: this bench did not run both `{BASELINE}` and `full`."
    failed = [m for m in (BASELINE, "full") if m in s.unavailable]
    if failed:
        names = " and ".join(f"`{m}`" for m in failed)
        return f"Not available: {names} failed on every run (see the errors below)."
    per_task = ratios["full"]
    if not per_task:
        return f"Not available: no task was recovered by both `{BASELINE}` and `full`."
    per = ", ".join(f"{t} {fewer(v, '')}".rstrip() for t, v in per_task.items())
    median = float(np.median(list(per_task.values())))
    return (
        f"Median over the {len(per_task)} tasks both recover: **{fewer(median)}** for full "
        f"than `{BASELINE}` ({per})."
    )


def _paired_lines(s: Summary) -> list[str]:
    """Each method against plain on the same task-seeds: the test a learned part must pass."""
    if not s.paired:
        if s.methods == [s.reference]:
            return [
                f"Not available: `{s.reference}` is the only method; a method is not paired against itself."
            ]
        if s.reference in s.methods:
            return [f"Not available: no other method has a completed run beside `{s.reference}`'s."]
        return [f"Not available: this bench did not run `{s.reference}`."]
    lines = [
        f"Same tasks and seeds. Wins: recovered by the method and not by `{s.reference}`; losses: the "
        "reverse; p: two-sided sign test on them. Calls: median over tasks of "
        f"`{s.reference}`'s censored median calls to recovery over the method's (tasks both recover in "
        f"at least half the seeds), said as the method's fewer or more calls than `{s.reference}`'s. "
        "Speed: median over task-seeds of the method's simulator calls per "
        f"second over `{s.reference}`'s in the same task-seed.",
        "",
        f"| method | task-seeds | wins | losses | sign test p | calls against {s.reference} (tasks) "
        f"| speed against {s.reference} |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, d in s.paired.items():
        ratio = "–" if d["censored_ratio"] is None else f"{fewer(d['censored_ratio'])} ({d['ratio_tasks']})"
        speed = "–" if d.get("speed_ratio") is None else f"{d['speed_ratio']:.2f}"
        lines.append(
            f"| {m} | {d['pairs']} | {d['wins']} | {d['losses']} | {d['p']:.3g} | {ratio} | {speed} |"
        )
    return lines


def paired_sentences(s: Summary) -> list[str]:
    """Each method against the reference in a sentence, for the console under the table."""
    lines = []
    for m, d in s.paired.items():
        wins = f"{d['wins']} win{'s' * (d['wins'] != 1)}, {d['losses']} loss{'es' * (d['losses'] != 1)}"
        line = f"{m} against {s.reference}: {wins} over {d['pairs']} task-seeds (sign test p {d['p']:.3g})"
        if d["censored_ratio"] is not None:
            line += f"; {fewer(d['censored_ratio'])} to recovery (median over {d['ratio_tasks']} tasks)"
        if d.get("speed_ratio") is not None:
            line += f"; {d['speed_ratio']:.2f}× {s.reference}'s calls per second"
        lines.append(line)
    return lines


def _noise_lines(s: Summary) -> list[str]:
    """The by-noise section: how often the selected program is the law, and how often the
    front holds it (constants within the noisy tolerance where noise > 0)."""
    if s.by_noise is None:
        return []
    t = (
        s.by_noise.assign(
            noise=s.by_noise["noise"].map("{:g}".format),  # 0.001, not 0.0
            selected=s.by_noise["selected"].map("{:.1f}".format),
            on_front=s.by_noise["on_front"].map("{:.1f}".format),
        )
        .rename(
            columns={
                "noise_kind": "kind",
                "selected": "law selected (%)",
                "on_front": "law on the front (%)",
            }
        )
        .to_markdown(index=False, disable_numparse=True)
    )
    return [
        "## By noise level",
        "",
        "Noise is Gaussian on the training targets: additive, of standard deviation noise x RMS(y), "
        "or multiplicative, y (1 + noise eps) with eps standard normal (`--noise-kind`); the test "
        "split and the check are noiseless. Where noise > 0, a constant may differ from the truth's "
        "by 5% of its value (`simulator/recovery.py`, `NOISY_RTOL`).",
        "",
        t,
        "",
    ]


def _error_lines(s: Summary) -> list[str]:
    lines = []
    for m, (bad, total, first) in s.errors.items():
        state = "not available" if bad == total else "some runs failed"
        lines.append(f"- `{m}` ({state}: {bad} of {total} runs): {first}")
    return lines or ["None: every run of every method completed."]


def markdown(s: Summary, meta: dict) -> str:
    """summary.md: the setup, the table, the call ratio of full against uniform, and the errors."""
    lines = [
        "# Benchmark summary",
        "",
        f"- tasks: {meta['source']} ({len(s.tasks)} tasks)",
        f"- seeds: {meta['seeds']} per task; budget: {meta['calls']:,} simulator calls and "
        f"{meta['seconds']:g} s per run; {meta['workers']} worker(s), executor {meta['executor']}",
    ]
    if meta["seeds"] < HEADLINE_SEEDS or meta["calls"] < HEADLINE_CALLS:
        lines.append(
            f"- **quick mode**: headline numbers use {HEADLINE_SEEDS} seeds and {HEADLINE_CALLS:,} calls "
            f"({PROTOCOL})"
        )
    lines += [
        f"- machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; written {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- runs: {s.n_runs} ({s.n_failed} failed with an error)",
        "",
        f"Recovery is exact symbolic equivalence after rounding floats to 3 decimals ({PROTOCOL}). "
        "Calls to recovery are counted over recovered runs only.",
        "",
        "## Exact recovery per task and method",
        "",
        table(s),
        "",
        f"## Calls to recovery, {BASELINE} / full",
        "",
        "Over recovered runs only: " + _ratio_line(s, s.ratios),
        "",
        "Failed runs counted as never recovering (a task counts when both recover it in at least half "
        "the seeds): " + _ratio_line(s, s.censored),
        "",
        *_noise_lines(s),
        f"## Paired against {s.reference}",
        "",
        *_paired_lines(s),
        "",
        "## Methods with errors",
        "",
        *_error_lines(s),
        "",
    ]
    return "\n".join(lines)


def plot(records: list[dict], s: Summary, calls: int, path: Path, title: str = "") -> None:
    """Recovery rate against the simulator-call budget, one curve per method (log x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = np.unique(np.logspace(0, math.log10(max(calls, 10)), 200).round())
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for i, m in enumerate(s.methods):
        curve = recovery_curve(records, m, budgets)
        if np.all(np.isnan(curve)):
            continue
        failed = m in s.unavailable
        ax.step(
            budgets,
            100 * curve,
            where="post",
            label=f"{m} (error)" if failed else m,
            color=f"C{i % 10}",
            ls="--" if failed else "-",
        )
    ax.set_xscale("log")
    ax.set_ylim(-2, 102)
    ax.set_xlabel("simulator-call budget")
    ax.set_ylabel("runs recovered (%)")
    ax.set_title(f"Exact recovery against budget: {title}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # no curve at all when no run was recorded
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
