"""``induce bench``: the command line, and the order of things (plan, run, store, report)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.bench.plan import HEADLINE_CALLS, HEADLINE_SEEDS
from pipelines.bench.stats import REFERENCE
from pipelines.parallel import EXECUTORS

if TYPE_CHECKING:
    from simulator.suites import Task


class BenchError(ValueError):
    """A bad bench command line."""


# ``induce bench`` with none of the flags that say what to run: a first look that ends in
# minutes, full against plain. Any of these flags gives the protocol's defaults instead
# (docs/benchmarks.md), so a written bench command means what it always meant.
QUICK_TASKS = ("Nguyen-1", "Nguyen-4", "Nguyen-5", "Nguyen-7", "Nguyen-1c")
QUICK = {
    "suite": "all",
    "methods": "full,plain",
    "seeds": 2,
    "calls": 50_000,
    "seconds": 10.0,
    "out": "runs/bench-quick",
}
PROTOCOL = {"seeds": HEADLINE_SEEDS, "calls": HEADLINE_CALLS, "seconds": 60.0, "out": "runs/bench"}
WHAT_TO_RUN = ("suite", "tasks", "only", "methods", "noise", "seeds", "calls", "seconds")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``bench`` on the ``induce`` subcommands."""
    b = subparsers.add_parser(
        "bench",
        help="run suites against ablations and peers (runs.jsonl, summary.md, plot)",
        description="Run every (task, seed, method) on the same data, interleaved, and summarize "
        "exact recovery. Rerunning with the same --out resumes. With none of --suite, --tasks, --only, "
        "--methods, --noise, --seeds, --calls, --seconds: a quick bench (full against plain "
        f"on {len(QUICK_TASKS)} Nguyen tasks, {QUICK['seeds']} seeds, {QUICK['seconds']:g} s per run, "
        f"into {QUICK['out']}); given any, the defaults below. See docs/benchmarks.md.",
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
    b.add_argument(
        "--noise-kind",
        choices=("additive", "multiplicative"),
        help="with --noise: additive, Gaussian of sd level x RMS(y) (default, unless the task file sets "
        "noise_kind), or multiplicative, y (1 + level eps), the noise in proportion to |y|; a multiplicative "
        "level is a task named '<task> noise=<level>x'",
    )
    b.add_argument("--seeds", type=int, help=f"seeds per task (default {PROTOCOL['seeds']})")
    b.add_argument("--calls", type=int, help=f"simulator calls per run (default {PROTOCOL['calls']})")
    b.add_argument("--seconds", type=float, help=f"wall seconds per run (default {PROTOCOL['seconds']:g})")
    b.add_argument("--workers", type=int, default=1, help="runs in parallel (default 1)")
    b.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="process",
        help="process: a local process pool with a hard time limit per run (default); "
        'ray: a Ray cluster (pip install -e ".[ray]"); inline: this process, no time limit (debugging)',
    )
    b.add_argument("--ray-address", help="with --executor ray: join this cluster instead of starting one")
    b.add_argument(
        "--out", help=f"output folder (default {PROTOCOL['out']}; the quick bench: {QUICK['out']})"
    )
    b.add_argument(
        "--retry-errors",
        action="store_true",
        help="rerun recorded runs that failed (e.g. a peer now installed)",
    )
    b.set_defaults(func=main)
    return b


def fill_defaults(args: argparse.Namespace) -> bool:
    """Fill in the flags not given: the quick bench's when none says what to run, else the
    protocol's. True for the quick bench."""
    quick = all(getattr(args, name, None) is None for name in WHAT_TO_RUN)
    if quick:
        args.only = ",".join(QUICK_TASKS)
    for name, value in (QUICK if quick else PROTOCOL).items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    return quick


def duration(seconds: float) -> str:
    """Seconds as a reader takes them in: 45 s, 3 min 20 s, 2 h 5 min."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min" + (f" {seconds % 60} s" if seconds % 60 else "")
    return f"{seconds // 3600} h" + (f" {seconds // 60 % 60} min" if seconds // 60 % 60 else "")


def planned(runs: int, seconds: float, workers: int) -> str:
    """The planned time of ``runs`` runs: an upper bound, since every run stops at its budget."""
    waves = math.ceil(runs / workers) if runs else 0
    return (
        f"planned time: at most {duration(waves * seconds)} ({runs} runs x {seconds:g} s / "
        f"{workers} worker(s); each run stops at its budget, most sooner; loading the methods comes first)"
    )


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
    suite: str | None,
    task_file: str | None,
    only: str | None,
    noise: str | None = None,
    noise_kind: str | None = None,
) -> tuple[list[Task], str]:
    """The tasks to run and a description of where they come from. ``noise_kind`` (with
    ``noise`` only) is the kind of every level; None keeps each task's own (additive unless
    its task file says otherwise)."""
    from simulator.suites import NOISE_KINDS, TaskError, find_task, get_suite, load_tasks

    if noise_kind is not None and noise_kind not in NOISE_KINDS:
        raise BenchError(f"--noise-kind must be {' or '.join(NOISE_KINDS)}, got {noise_kind!r}")
    if noise_kind is not None and noise is None:
        raise BenchError("--noise-kind goes with --noise (the levels to run at)")

    if task_file and suite:
        raise BenchError("give --suite or --tasks, not both")
    if task_file:
        tasks, source = load_tasks(task_file), f"task file {task_file}"
    else:
        suite = suite or "nguyen"
        tasks, source = get_suite(suite), f"suite {suite}"
    if only:
        names = [n.strip() for n in only.split(",") if n.strip()]
        try:
            picked = [find_task(tasks, n, source) for n in names]
        except TaskError as err:
            raise BenchError(f"--only: {err}") from None
        tasks = list({t.name: t for t in picked}.values())
        source += f" (only {', '.join(t.name for t in tasks)})"
    levels = noise_levels(noise)
    if levels is not None:
        tasks = [t.with_noise(level, noise_kind) for t in tasks for level in levels]
        source += f" at noise {', '.join(f'{v:g}' for v in levels)}"
        kinds = sorted({t.noise_kind for t in tasks if t.noise > 0})
        if kinds != ["additive"] and kinds:
            source += f" ({', '.join(kinds)})"
    return tasks, source


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(args: argparse.Namespace) -> int:
    """Run the planned runs not yet in runs.jsonl, then write the summary, plot and W&B run."""
    from pipelines.bench import methods, report, tracking
    from pipelines.bench.plan import plan
    from pipelines.bench.progress import Progress
    from pipelines.bench.record import failure
    from pipelines.bench.runner import make_runner
    from pipelines.bench.stats import summarize
    from pipelines.bench.store import RunStore

    quick = fill_defaults(args)
    _check_numbers(args)
    tasks, source = select_tasks(args.suite, args.tasks, args.only, args.noise, args.noise_kind)
    if quick:
        source = f"quick bench, {source}"
    chosen = methods.parse(args.methods)
    same = [m for m in chosen if methods.same_method(m) == methods.same_method(args.reference)]
    args.reference = same[0] if same else args.reference  # the spelling --methods used
    if args.reference != REFERENCE and args.reference not in chosen:
        raise BenchError(f"--reference {args.reference!r} is not one of --methods ({', '.join(chosen)})")
    executor = make_runner(args.executor, args.workers, args.ray_address)
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
    if quick:
        _say(
            f"bench: no flag said what to run, so this is the quick bench ({args.seeds} seeds, "
            f"{args.calls:,} calls and {args.seconds:g} s per run); the headline protocol is "
            "--suite all --seeds 10 --calls 200000 --seconds 60 (docs/benchmarks.md)"
        )
    _say(planned(len(todo), float(args.seconds), args.workers))

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
    for line in report.paired_sentences(summary):
        print(line, flush=True)
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
