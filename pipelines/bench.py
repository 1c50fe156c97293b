"""``induce bench``: suites against ablations and peers, as BENCHMARKS.md prescribes.

Every (task, seed, method) run gets the same train and test data per (task, seed), and runs
are interleaved (seed, then task, then method) across one process pool, so that slow and busy
stretches of a noisy machine fall on every method alike and ratios between methods hold.

Outputs in ``--out``: ``runs.jsonl`` (one line per run, appended as runs finish, which is what
makes a rerun resume), ``summary.md``, ``recovery_vs_calls.png``, and the summary as a W&B
table (offline unless ``WANDB_MODE`` says otherwise). A run that fails for any reason, a
missing checkpoint or peer included, is recorded with its error and the benchmark goes on.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import sys
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the suites pull in torch; ``induce --help`` should not wait for it
    from simulator.suites import Task

DEFAULT_METHODS = "full,uniform,no-locate,no-propose,no-subgoal,no-screen,no-similarity,operon,gplearn"
HEADLINE_SEEDS = 10
HEADLINE_CALLS = 200_000
RUN_FIELDS = (
    "task",
    "seed",
    "method",
    "recovered",
    "found",
    "truth",
    "nmse_train",
    "r2_test",
    "simulator_calls",
    "seconds",
    "complexity",
    "fit_forward_passes",
    "error",
    "history",
    "calls_to_recovery",
    "budget_calls",
    "budget_seconds",
    "wall_seconds",
)
MAX_ATTEMPTS = 2  # a run whose worker dies is retried once in a fresh pool, then recorded as failed


class BenchError(ValueError):
    """A bad bench command line."""


@dataclass(frozen=True)
class Job:
    """One run: a task, a seed, a method, and the budget it gets."""

    task: Task
    seed: int
    method: str
    calls: int
    seconds: float

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.task.name, self.seed, self.method)


# --- command line ---------------------------------------------------------------------------------


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``bench`` on the ``induce`` subcommands."""
    b = subparsers.add_parser(
        "bench",
        help="run suites against ablations and peers (runs.jsonl, summary.md, plot)",
        description="Run every (task, seed, method) on the same data, interleaved, and summarize "
        "exact recovery. Rerunning with the same --out resumes.",
    )
    b.add_argument("--suite", help="built-in suite: nguyen, nguyen-c or all (default: nguyen)")
    b.add_argument("--tasks", help="a task file (YAML, see BENCHMARKS.md) instead of a suite")
    b.add_argument("--only", help="comma list of task names to keep from the suite or task file")
    b.add_argument("--methods", default=DEFAULT_METHODS, help=f"comma list (default: {DEFAULT_METHODS})")
    b.add_argument("--seeds", type=int, default=HEADLINE_SEEDS, help="seeds per task (default 10)")
    b.add_argument(
        "--calls", type=int, default=HEADLINE_CALLS, help="simulator calls per run (default 200000)"
    )
    b.add_argument("--seconds", type=float, default=60.0, help="wall seconds per run (default 60)")
    b.add_argument("--workers", type=int, default=1, help="processes running in parallel (default 1)")
    b.add_argument("--out", default="runs/bench", help="output folder (default runs/bench)")
    b.add_argument(
        "--retry-errors",
        action="store_true",
        help="rerun recorded runs that failed (e.g. a peer now installed)",
    )
    b.set_defaults(func=main)
    return b


def _methods(text: str) -> list[str]:
    methods = list(dict.fromkeys(m.strip().lower() for m in text.split(",") if m.strip()))
    if not methods:
        raise BenchError("--methods needs at least one method")
    return methods


def _tasks(args) -> tuple[list[Task], str]:
    from simulator.suites import get_suite, load_tasks

    if args.tasks and args.suite:
        raise BenchError("give --suite or --tasks, not both")
    if args.tasks:
        tasks, source = load_tasks(args.tasks), f"task file {args.tasks}"
    else:
        suite = args.suite or "nguyen"
        tasks, source = get_suite(suite), f"suite {suite}"
    only = getattr(args, "only", None)
    if only:
        names = [n.strip() for n in only.split(",") if n.strip()]
        by_name = {t.name.lower(): t for t in tasks}
        unknown = [n for n in names if n.lower() not in by_name]
        if unknown:
            known = ", ".join(t.name for t in tasks)
            raise BenchError(f"--only: no task {unknown[0]!r} in {source}; it has {known}")
        tasks = [by_name[n.lower()] for n in dict.fromkeys(names)]
        source += f" (only {', '.join(t.name for t in tasks)})"
    return tasks, source


def plan(tasks: list[Task], seeds: int, methods: list[str], calls: int, seconds: float) -> list[Job]:
    """All runs, interleaved: for each seed, each task, each method."""
    return [Job(t, s, m, calls, seconds) for s in range(seeds) for t in tasks for m in methods]


def main(args: argparse.Namespace) -> int:
    """Run the planned runs not yet in ``runs.jsonl``, then write the summary, plot and W&B table."""
    for name, low in (("seeds", 1), ("calls", 1), ("workers", 1)):
        value = getattr(args, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise BenchError(f"--{name} must be an integer of at least {low}, got {value!r}")
    if not (isinstance(args.seconds, (int, float)) and math.isfinite(args.seconds) and args.seconds > 0):
        raise BenchError(f"--seconds must be a positive number, got {args.seconds!r}")
    tasks, source = _tasks(args)
    methods = _methods(args.methods)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs_path = out / "runs.jsonl"
    jobs = plan(tasks, args.seeds, methods, args.calls, float(args.seconds))

    done = latest(read_runs(runs_path))
    retry = getattr(args, "retry_errors", False)
    todo = [j for j in jobs if j.key not in done or (retry and done[j.key].get("error"))]
    skipped = len(jobs) - len(todo)
    _warn_budget(done.values(), args.calls, float(args.seconds))
    print(
        f"bench: {source}, {len(tasks)} tasks x {args.seeds} seeds x {len(methods)} methods"
        f" = {len(jobs)} runs ({skipped} already in {runs_path}, {len(todo)} to run,"
        f" {args.workers} worker(s))",
        file=sys.stderr,
    )
    execute(todo, runs_path, args.workers)

    wanted = {j.key for j in jobs}
    records = [r for k, r in latest(read_runs(runs_path)).items() if k in wanted]
    meta = {
        "source": source,
        "tasks": [t.name for t in tasks],
        "methods": methods,
        "seeds": args.seeds,
        "calls": args.calls,
        "seconds": float(args.seconds),
        "workers": args.workers,
    }
    text, table = summarize(records, meta)
    (out / "summary.md").write_text(text)
    plot_recovery(records, methods, args.calls, out / "recovery_vs_calls.png", title=source)
    print(table)
    print(f"wrote {out / 'summary.md'}, {out / 'recovery_vs_calls.png'}, {runs_path}", file=sys.stderr)
    log_wandb(records, meta, out)
    return 0


def _warn_budget(records: Iterable[dict], calls: int, seconds: float) -> None:
    other = {(r.get("budget_calls"), r.get("budget_seconds")) for r in records} - {
        (calls, seconds),
        (None, None),
    }
    if other:
        print(
            f"warning: runs.jsonl holds runs with other budgets {sorted(other)}; they are kept, not rerun",
            file=sys.stderr,
        )


# --- running --------------------------------------------------------------------------------------


def _worker_init(methods: tuple[str, ...] = ()) -> None:
    """One thread per run (parallelism comes from the pool), and warm imports before any clock runs.

    Without the warm-up the first run in each process would pay for lazy imports and first calls
    inside its timed search, and a method's seconds would depend on where it fell in the plan.
    """
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        from pipelines.pipeline import InductionPipeline

        X = np.linspace(0.1, 1.0, 20)[:, None]
        InductionPipeline.preset("uniform").solve(X, 2.5 * X[:, 0] + 1, "CKoza", calls=50, seconds=5.0)
    except Exception:  # noqa: BLE001 - a warm-up only; a broken pipeline shows in the runs themselves
        pass
    from pipelines.peers import PEERS, preload

    for name in set(methods) & set(PEERS):
        try:
            preload(name)
        except ImportError:
            pass


def execute(jobs: list[Job], runs_path: Path, workers: int) -> None:
    """Run ``jobs`` (in-process for one worker, else in a process pool), appending each record."""
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), unit="run", file=sys.stderr, dynamic_ncols=True, disable=None)

    def record(rec: dict) -> None:
        append_run(runs_path, rec)
        bar.update(1)
        mark = "error" if rec["error"] else ("recovered" if rec["recovered"] else "not recovered")
        bar.set_postfix_str(f"{rec['task']} seed {rec['seed']} {rec['method']}: {mark}", refresh=True)

    try:
        methods = tuple(dict.fromkeys(j.method for j in jobs))
        if workers == 1 or len(jobs) <= 1:
            if jobs:
                _worker_init(methods)
            for job in jobs:
                record(run_job(job))
        else:
            _pool_execute(jobs, workers, record, methods)
    finally:
        bar.close()


def _pool_execute(jobs: list[Job], workers: int, record, methods: tuple[str, ...]) -> None:
    """Submit in plan order, a few ahead of the workers, so the interleaving holds in time too."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited torch/OpenMP state

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(methods,)
        )

    pending: deque[Job] = deque(jobs)
    attempts: dict[tuple, int] = {}
    inflight: dict[Any, Job] = {}
    pool = new_pool()
    try:
        while pending or inflight:
            while pending and len(inflight) < 2 * workers:
                job = pending.popleft()
                inflight[pool.submit(run_job, job)] = job
            finished, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            broken = False
            for fut in finished:
                job = inflight.pop(fut)
                try:
                    record(fut.result())
                except BrokenProcessPool:
                    broken = True
                    attempts[job.key] = attempts.get(job.key, 0) + 1
                    if attempts[job.key] < MAX_ATTEMPTS:
                        pending.appendleft(job)
                    else:
                        record(failure(job, "worker process died (killed or crashed) twice on this run"))
                except Exception as err:  # noqa: BLE001 - e.g. a result that cannot be pickled
                    record(failure(job, _one_line(err)))
            if broken:  # every other run in flight died with the pool: requeue them as well
                for fut, job in list(inflight.items()):
                    fut.cancel()
                    pending.appendleft(job)
                inflight.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                pool = new_pool()
    except BaseException:  # Ctrl-C included: finished runs are on disk; do not wait for the rest
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


_PIPELINES: dict[str, Any] = {}


def _pipeline(method: str):
    """A fresh copy of a preset per run; built (checkpoints loaded) once per process."""
    from pipelines.pipeline import InductionPipeline

    if method not in _PIPELINES:
        _PIPELINES[method] = InductionPipeline.preset(method)
    return copy.deepcopy(_PIPELINES[method])


def run_job(job: Job) -> dict:
    """One run as its runs.jsonl record; never raises (a failure is a record with ``error``)."""
    start = time.perf_counter()
    try:
        rec = _run(job)
    except BaseException as err:  # noqa: BLE001 - a failed run must never stop the benchmark
        if isinstance(err, KeyboardInterrupt):
            raise
        rec = failure(job, _one_line(err))
    rec["wall_seconds"] = round(time.perf_counter() - start, 3)
    return _clean(rec)


def _run(job: Job) -> dict:
    import sympy as sp

    from pipelines.peers import PEERS, run_peer
    from simulator.recovery import is_recovered

    task = job.task
    X, y = task.sample("train", job.seed)
    X_test, y_test = task.sample("test", job.seed)
    truth = task.truth_sympy()
    if job.method in PEERS:
        res = run_peer(job.method, X, y, task.function_set, job.calls, job.seconds, job.seed, X_test=X_test)
        found = res.get("found_sympy")
        found = found if isinstance(found, sp.Expr) else res["found_sympy_str"]
        pred = res.get("y_test_pred")
        pred = None if pred is None else np.array([np.nan if v is None else v for v in pred], dtype=float)
        rec = {
            "found": res["found_sympy_str"],
            "nmse_train": res["nmse_train"],
            "simulator_calls": res["simulator_calls"],
            "seconds": res["seconds"],
            "complexity": res["complexity"],
            "fit_forward_passes": res.get("fit_forward_passes", 0),
            "history": res.get("history") or [],
        }
    else:
        result = _pipeline(job.method).solve(
            X, y, function_set=task.function_set, calls=job.calls, seconds=job.seconds, seed=job.seed
        )
        found = result.sympy()
        with np.errstate(all="ignore"):
            pred = result.predict(X_test)
        rec = {
            "found": str(found),
            "nmse_train": result.loss,
            "simulator_calls": result.calls,
            "seconds": result.seconds,
            "complexity": result.program.complexity,
            "fit_forward_passes": result.fit_passes,
            "history": [list(h) for h in result.history],
            "found_at": result.found_at,
        }
    recovered = bool(is_recovered(found, truth, domain=task.domain()))
    rec.update(
        task=task.name,
        seed=job.seed,
        method=job.method,
        recovered=recovered,
        truth=str(truth),
        r2_test=r2_score(y_test, pred),
        error=None,
        calls_to_recovery=_calls_to_recovery(rec, recovered),
        budget_calls=job.calls,
        budget_seconds=job.seconds,
    )
    return {k: rec.get(k) for k in RUN_FIELDS}


def failure(job: Job, error: str) -> dict:
    """The record of a run that produced nothing: not recovered, with its one-line error."""
    try:
        truth = str(job.task.truth_sympy())
    except Exception:  # noqa: BLE001
        truth = job.task.expression
    rec = dict.fromkeys(RUN_FIELDS)
    rec.update(
        task=job.task.name,
        seed=job.seed,
        method=job.method,
        recovered=False,
        truth=truth,
        simulator_calls=0,
        fit_forward_passes=0,
        error=error,
        history=[],
        budget_calls=job.calls,
        budget_seconds=job.seconds,
    )
    return rec


def _calls_to_recovery(rec: dict, recovered: bool) -> int | None:
    """Calls spent when the found program's loss was first reached (the search may go on a little)."""
    if not recovered:
        return None
    if rec.get("found_at"):
        return int(rec["found_at"])
    loss = rec.get("nmse_train")
    for calls, best in rec.get("history") or []:
        if loss is not None and best is not None and best <= loss * (1 + 1e-6) + 1e-300:
            return int(calls)
    return int(rec["simulator_calls"] or 0)


def r2_score(y: np.ndarray, pred: np.ndarray | None) -> float | None:
    """Coefficient of determination on the test split; None when the prediction is not finite."""
    if pred is None:
        return None
    pred = np.broadcast_to(np.asarray(pred, dtype=np.float64), y.shape)
    if not np.all(np.isfinite(pred)):
        return None
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    ss_res = float(np.sum((y - pred) ** 2))
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else None
    value = 1.0 - ss_res / ss_tot
    return value if math.isfinite(value) else None


def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _clean(obj: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to null, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


# --- runs.jsonl -----------------------------------------------------------------------------------


def append_run(path: Path, rec: dict) -> None:
    """Append one record and flush it, so an interrupted bench keeps every finished run."""
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(_clean(rec), allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_runs(path: Path) -> list[dict]:
    """Every well-formed record; a line cut short by a crash is ignored (that run is redone)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and {"task", "seed", "method"} <= rec.keys():
            out.append(rec)
    return out


def latest(records: list[dict]) -> dict[tuple[str, int, str], dict]:
    """The last record per (task, seed, method)."""
    return {(r["task"], int(r["seed"]), r["method"]): r for r in records}


# --- summary --------------------------------------------------------------------------------------


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt_calls(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}"


def summarize(records: list[dict], meta: dict) -> tuple[str, str]:
    """summary.md's text, and the table alone (printed to stdout)."""
    methods, tasks = meta["methods"], meta["tasks"]
    by = {(t, m): [r for r in records if r["task"] == t and r["method"] == m] for t in tasks for m in methods}
    rate = {k: (sum(bool(r["recovered"]) for r in v) / len(v) if v else None) for k, v in by.items()}

    rows = []
    for t in tasks:
        cells = []
        for m in methods:
            runs = by[(t, m)]
            if not runs:
                cells.append("–")
            elif all(r.get("error") for r in runs):
                cells.append("error")
            else:
                n = sum(bool(r["recovered"]) for r in runs)
                cells.append(f"{100 * n / len(runs):.0f}% ({n}/{len(runs)})")
        rows.append([t, *cells])
    unavailable = {m for m in methods if all(r.get("error") for t in tasks for r in by[(t, m)])}
    mean = {m: _mean_over_tasks(rate, tasks, m) for m in methods}
    rows.append(
        [
            "**mean over tasks**",
            *("n/a" if m in unavailable or mean[m] is None else f"**{100 * mean[m]:.1f}%**" for m in methods),
        ]
    )
    calls_med = {
        m: _median([r["calls_to_recovery"] for r in records if r["method"] == m and r["recovered"]])
        for m in methods
    }
    rows.append(["median calls to recovery", *(_fmt_calls(calls_med[m]) for m in methods)])
    secs = {
        m: _median([r["seconds"] for r in records if r["method"] == m and r.get("seconds") is not None])
        for m in methods
    }
    rows.append(["median seconds per run", *("–" if secs[m] is None else f"{secs[m]:.2f}" for m in methods)])
    ratios = {m: task_call_ratios(records, tasks, "uniform", m) for m in methods}
    censored = {m: task_call_ratios(records, tasks, "uniform", m, censored=True) for m in methods}
    if "uniform" in methods:
        rows.append(["calls uniform/method (tasks both recover)", *(_fmt_ratio(ratios[m]) for m in methods)])
        rows.append(
            [
                "same, failed runs as never (tasks both recover in ≥ half)",
                *(_fmt_ratio(censored[m]) for m in methods),
            ]
        )
    table = _markdown([["task", *methods], *rows])

    lines = [
        "# Benchmark summary",
        "",
        f"- tasks: {meta['source']} ({len(tasks)} tasks)",
        f"- seeds: {meta['seeds']} per task; budget: {meta['calls']:,} simulator calls and "
        f"{meta['seconds']:g} s per run; workers: {meta['workers']}",
    ]
    if meta["seeds"] < HEADLINE_SEEDS or meta["calls"] < HEADLINE_CALLS:
        lines.append(
            f"- **quick mode**: headline numbers use {HEADLINE_SEEDS} seeds and {HEADLINE_CALLS:,} calls "
            "(BENCHMARKS.md)"
        )
    lines += [
        f"- machine: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; written {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- runs: {len(records)} ({sum(1 for r in records if r.get('error'))} failed with an error)",
        "",
        "Recovery is exact symbolic equivalence after rounding floats to 3 decimals (BENCHMARKS.md). "
        "Calls to recovery are counted over recovered runs only.",
        "",
        "## Exact recovery per task and method",
        "",
        table,
        "",
        "## Calls to recovery, uniform / full",
        "",
        "Over recovered runs only: " + _ratio_line(ratios.get("full"), methods, unavailable),
        "",
        "Failed runs counted as never recovering (a task counts when both recover it in at least half "
        "the seeds): " + _ratio_line(censored.get("full"), methods, unavailable),
        "",
        "## Methods with errors",
        "",
        *_error_lines(records, methods),
        "",
    ]
    return "\n".join(lines), table


def _mean_over_tasks(rate: dict, tasks: list[str], method: str) -> float | None:
    values = [rate[(t, method)] for t in tasks if rate[(t, method)] is not None]
    return sum(values) / len(values) if values else None


def task_call_ratios(
    records: list[dict], tasks: list[str], base: str, method: str, censored: bool = False
) -> dict[str, float]:
    """Per task that both recover: median calls to recovery of ``base`` over that of ``method``.

    By default the medians are over recovered runs only, which flatters a method that
    recovers a task in 1 seed of 10 (only its lucky run counts). ``censored`` counts a
    failed run as never recovering (infinitely many calls), so a task enters only when both
    methods recover it in at least half the seeds.
    """
    out = {}
    for t in tasks:
        meds = []
        for m in (base, method):
            runs = [r for r in records if r["task"] == t and r["method"] == m]
            if censored:
                calls = [r["calls_to_recovery"] if r["recovered"] else math.inf for r in runs]
                meds.append(statistics.median_low(calls) if calls else None)
            else:
                meds.append(_median([r["calls_to_recovery"] for r in runs if r["recovered"]]))
        a, b = meds
        if a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
            out[t] = max(a, 1) / max(b, 1)
    return out


def _fmt_ratio(ratios: dict[str, float]) -> str:
    return "–" if not ratios else f"{statistics.median(ratios.values()):.2f}x ({len(ratios)})"


def _ratio_line(ratios: dict[str, float] | None, methods: list[str], unavailable: set[str]) -> str:
    if "full" not in methods or "uniform" not in methods:
        return "Not available: this bench did not run both `uniform` and `full`."
    if unavailable & {"full", "uniform"}:
        failed = " and ".join(f"`{m}`" for m in ("uniform", "full") if m in unavailable)
        return f"Not available: {failed} failed on every run (see the errors below)."
    if not ratios:
        return "Not available: no task was recovered by both `uniform` and `full`."
    per = ", ".join(f"{t} {v:.2f}x" for t, v in ratios.items())
    return (
        f"Median over the {len(ratios)} tasks both recover: **{statistics.median(ratios.values()):.2f}x** "
        f"fewer calls for full ({per})."
    )


def _error_lines(records: list[dict], methods: list[str]) -> list[str]:
    lines = []
    for m in methods:
        bad = [r for r in records if r["method"] == m and r.get("error")]
        if bad:
            total = sum(1 for r in records if r["method"] == m)
            state = "not available" if len(bad) == total else "some runs failed"
            lines.append(f"- `{m}` ({state}: {len(bad)} of {total} runs): {bad[0]['error']}")
    return lines or ["None: every run of every method completed."]


def _markdown(rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    fmt = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([fmt(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, rows[1:])])


# --- plot and W&B ---------------------------------------------------------------------------------


def recovery_curve(records: list[dict], method: str, budgets: np.ndarray) -> np.ndarray:
    """Share of the method's runs recovered within each budget of simulator calls."""
    runs = [r for r in records if r["method"] == method]
    if not runs:
        return np.full(len(budgets), np.nan)
    hits = np.array(
        [r["calls_to_recovery"] for r in runs if r["recovered"] and r["calls_to_recovery"] is not None]
    )
    return np.array([(hits <= b).sum() / len(runs) for b in budgets])


def plot_recovery(records: list[dict], methods: list[str], calls: int, path: Path, title: str = "") -> None:
    """Recovery rate against the simulator-call budget, one curve per method (log x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = np.unique(np.logspace(0, math.log10(max(calls, 10)), 200).round())
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for i, m in enumerate(methods):
        curve = recovery_curve(records, m, budgets)
        if np.all(np.isnan(curve)):
            continue
        errored = all(r.get("error") for r in records if r["method"] == m)
        label = f"{m} (error)" if errored else m
        ax.step(
            budgets, 100 * curve, where="post", label=label, color=f"C{i % 10}", ls="--" if errored else "-"
        )
    ax.set_xscale("log")
    ax.set_ylim(-2, 102)
    ax.set_xlabel("simulator-call budget")
    ax.set_ylabel("runs recovered (%)")
    ax.set_title(f"Exact recovery against budget: {title}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary_rows(records: list[dict], meta: dict) -> tuple[list[str], list[list[Any]]]:
    """The summary as numbers (recovery rates in [0, 1]) for a W&B table."""
    methods, tasks = meta["methods"], meta["tasks"]
    rows = []
    for t in tasks:
        row: list[Any] = [t]
        for m in methods:
            runs = [r for r in records if r["task"] == t and r["method"] == m]
            row.append(sum(bool(r["recovered"]) for r in runs) / len(runs) if runs else None)
        rows.append(row)
    means = [[r[1 + j] for r in rows if r[1 + j] is not None] for j in range(len(methods))]
    rows.append(["mean", *(sum(v) / len(v) if v else None for v in means)])
    return ["task", *methods], rows


def log_wandb(records: list[dict], meta: dict, out: Path) -> None:
    """Log the summary table to W&B, offline unless WANDB_MODE says otherwise; never fails the bench."""
    try:
        import wandb

        mode = os.environ.get("WANDB_MODE", "offline")
        if mode == "disabled":
            return
        columns, rows = summary_rows(records, meta)
        run = wandb.init(project="active-induction", dir=str(out), mode=mode, job_type="bench", config=meta)
        try:
            run.log({"summary": wandb.Table(columns=columns, data=rows)})
            run.summary.update(
                {f"recovery/{m}": v for m, v in zip(columns[1:], rows[-1][1:]) if v is not None}
            )
            png = out / "recovery_vs_calls.png"
            if png.exists():
                run.log({"recovery_vs_calls": wandb.Image(str(png))})
        finally:
            run.finish()
    except Exception as err:  # noqa: BLE001 - W&B is a report, never a reason to fail
        print(f"warning: W&B logging skipped ({_one_line(err)})", file=sys.stderr)
