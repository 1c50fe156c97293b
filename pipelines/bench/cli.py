"""``induce bench``: the command line, and the order of things (plan, run, store, report)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.bench.plan import HEADLINE_CALLS, HEADLINE_SEEDS
from pipelines.bench.runner import EXECUTORS
from pipelines.bench.stats import REFERENCE

if TYPE_CHECKING:
    from simulator.suites import Task


class BenchError(ValueError):
    """A bad bench command line."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``bench`` on the ``induce`` subcommands."""
    b = subparsers.add_parser(
        "bench",
        help="run suites against ablations and peers (runs.jsonl, summary.md, plot)",
        description="Run every (task, seed, method) on the same data, interleaved, and summarize "
        "exact recovery. Rerunning with the same --out resumes. See docs/benchmarks.md.",
    )
    b.add_argument("--suite", help="built-in suite: nguyen, nguyen-c or all (default: nguyen)")
    b.add_argument("--tasks", help="a task file (YAML, see docs/task-files.md) instead of a suite")
    b.add_argument("--only", help="comma list of task names to keep from the suite or task file")
    b.add_argument(
        "--methods",
        help="comma list of pipeline presets (full, plain, uniform, no-<stage>) and peers (operon, gplearn); "
        "default: every preset and each peer that is installed",
    )
    b.add_argument(
        "--reference",
        default=REFERENCE,
        help="the method every other is paired against (wins, losses, sign test); one of --methods "
        "(default plain)",
    )
    b.add_argument(
        "--noise",
        help="comma list of noise levels (x RMS of y, on the training targets) to run every task at, "
        "e.g. 0,0.001,0.01,0.1; each level is a task named '<task> noise=<level>' (default: the tasks' own)",
    )
    b.add_argument("--seeds", type=int, default=HEADLINE_SEEDS, help="seeds per task (default 10)")
    b.add_argument(
        "--calls", type=int, default=HEADLINE_CALLS, help="simulator calls per run (default 200000)"
    )
    b.add_argument("--seconds", type=float, default=60.0, help="wall seconds per run (default 60)")
    b.add_argument("--workers", type=int, default=1, help="runs in parallel (default 1)")
    b.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="process",
        help="process: a local process pool with a hard time limit per run (default); "
        'ray: a Ray cluster (pip install -e ".[ray]"); inline: this process, no time limit (debugging)',
    )
    b.add_argument("--ray-address", help="with --executor ray: join this cluster instead of starting one")
    b.add_argument("--out", default="runs/bench", help="output folder (default runs/bench)")
    b.add_argument(
        "--retry-errors",
        action="store_true",
        help="rerun recorded runs that failed (e.g. a peer now installed)",
    )
    b.set_defaults(func=main)
    return b


def _check_numbers(args: argparse.Namespace) -> None:
    for name, low in (("seeds", 1), ("calls", 1), ("workers", 1)):
        value = getattr(args, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise BenchError(f"--{name} must be an integer of at least {low}, got {value!r}")
    if args.ray_address and args.executor != "ray":
        raise BenchError("--ray-address goes with --executor ray")
    seconds = args.seconds
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise BenchError(f"--seconds must be a positive number, got {seconds!r}")


def noise_levels(text: str | None) -> list[float] | None:
    """``--noise``'s levels, or a one-line error."""
    if text is None:
        return None
    levels = []
    for item in (t.strip() for t in text.split(",")):
        try:
            level = float(item)
        except ValueError:
            raise BenchError(f"--noise takes numbers such as 0,0.01,0.1, got {item!r}") from None
        if not (math.isfinite(level) and 0 <= level <= 10):
            raise BenchError(f"--noise levels must be between 0 and 10, got {item!r}")
        levels.append(level)
    return list(dict.fromkeys(levels))


def select_tasks(
    suite: str | None, task_file: str | None, only: str | None, noise: str | None = None
) -> tuple[list[Task], str]:
    """The tasks to run and a description of where they come from."""
    from simulator.suites import get_suite, load_tasks

    if task_file and suite:
        raise BenchError("give --suite or --tasks, not both")
    if task_file:
        tasks, source = load_tasks(task_file), f"task file {task_file}"
    else:
        suite = suite or "nguyen"
        tasks, source = get_suite(suite), f"suite {suite}"
    if only:
        names = [n.strip() for n in only.split(",") if n.strip()]
        by_name = {t.name.lower(): t for t in tasks}
        unknown = [n for n in names if n.lower() not in by_name]
        if unknown:
            known = ", ".join(t.name for t in tasks)
            raise BenchError(f"--only: no task {unknown[0]!r} in {source}; it has {known}")
        tasks = [by_name[n.lower()] for n in dict.fromkeys(names)]
        source += f" (only {', '.join(t.name for t in tasks)})"
    levels = noise_levels(noise)
    if levels is not None:
        tasks = [t.with_noise(level) for t in tasks for level in levels]
        source += f" at noise {', '.join(f'{v:g}' for v in levels)}"
    return tasks, source


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    """Run the planned runs not yet in runs.jsonl, then write the summary, plot and W&B run."""
    from pipelines.bench import methods, report, tracking
    from pipelines.bench.plan import plan
    from pipelines.bench.progress import Progress
    from pipelines.bench.record import failure
    from pipelines.bench.runner import make_executor
    from pipelines.bench.stats import summarize
    from pipelines.bench.store import RunStore

    _check_numbers(args)
    tasks, source = select_tasks(args.suite, args.tasks, args.only, args.noise)
    chosen = methods.parse(args.methods)
    if args.reference != REFERENCE and args.reference not in chosen:
        raise BenchError(f"--reference {args.reference!r} is not one of --methods ({', '.join(chosen)})")
    executor = make_executor(args.executor, args.workers, args.ray_address)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = RunStore(out)
    jobs = plan(tasks, args.seeds, chosen, args.calls, float(args.seconds))
    todo = store.todo(jobs, retry_errors=args.retry_errors)
    _warn_other_budgets(store.read(), args.calls, float(args.seconds))
    _say(
        f"bench: {source}, {len(tasks)} tasks x {args.seeds} seeds x {len(chosen)} methods"
        f" = {len(jobs)} runs ({len(jobs) - len(todo)} already in {store.path}, {len(todo)} to run,"
        f" {args.workers} worker(s), executor {executor.name})"
    )

    # A method that cannot run here is recorded as failed at once, with why, and said once.
    why = {m: methods.get(m).why_not() for m in chosen}
    for m, reason in why.items():
        if reason and any(j.method == m for j in todo):
            _say(f"{m}: not available ({reason}); its runs are recorded as failed")
    with Progress(len(todo)) as progress:

        def on_record(rec: dict, quiet: bool = False) -> None:
            store.append(rec)
            progress.record(rec, quiet=quiet)

        for job in todo:
            if why[job.method]:
                on_record(failure(job, why[job.method]), quiet=True)  # said once above
        executor.run([j for j in todo if not why[j.method]], on_record)

    records = store.records(jobs)
    summary = summarize(records, [t.name for t in tasks], chosen, args.reference)
    meta = {
        "source": source,
        "tasks": [t.name for t in tasks],
        "methods": chosen,
        "seeds": args.seeds,
        "calls": args.calls,
        "seconds": float(args.seconds),
        "workers": args.workers,
        "executor": executor.name,
    }
    (out / "summary.md").write_text(report.markdown(summary, meta))
    png = out / "recovery_vs_calls.png"
    report.plot(records, summary, args.calls, png, title=source)
    print(report.table(summary), flush=True)
    warning = tracking.log_summary(summary, meta, out, png)
    if warning:
        _say(warning)
    _say(f"wrote {out / 'summary.md'}, {png}, {store.path}")
    return 0


def _warn_other_budgets(records: list[dict], calls: int, seconds: float) -> None:
    other = {(r.get("budget_calls"), r.get("budget_seconds")) for r in records}
    other -= {(calls, seconds), (None, None)}
    if other:
        _say(f"warning: runs.jsonl holds runs with other budgets {sorted(other)}; they are kept, not rerun")
