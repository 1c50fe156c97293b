"""``induce bench-loop``: the scientist's loop, measured. Suggested points against random ones.

Each law starts from a few measured points. A round solves on the points so far; when the
law is not yet recovered, it measures ``add`` more points, either where the front's leading
programs disagree most (:func:`pipelines.interface.suggest.suggest`) or drawn at random in the same
box, and solves again. The count that matters is the rounds each arm needs to recover the
law, paired on the same (task, seed).

Both arms share what chance should not decide: the same starting points, the same first
solve (round 0 is run once), the same noise draw for the k-th point measured, and the same
search seed. Noise is additive of sd ``noise x RMS(truth)`` over the task's own training
sample (or multiplicative, y (1 + noise eps)), so a point's noise does not depend on where it
was measured. One (task, seed) is one job and one line of runs.jsonl, so a rerun resumes.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipelines.parallel import EXECUTORS, make_executor, single_thread

if TYPE_CHECKING:
    from simulator.suites import Task

ARMS = ("suggested", "random")
# what a record's figures depend on besides its task and seed, by their runs.jsonl names
SETTING = ("start", "add", "gaps", "max_rounds", "budget_calls", "budget_seconds")
METHOD = "loop"  # the method field of every runs.jsonl line (the store keys on task, seed, method)


def measure(task: Task, X: np.ndarray, first: int, seed: int) -> np.ndarray:
    """The noisy targets at X, whose rows are the points measured ``first``, ``first`` + 1, ...

    The k-th point measured gets the k-th noise draw of the seed whichever arm measured it,
    so the arms differ only by where they measure.
    """
    y = task.truth(X)
    if task.noise == 0:
        return y
    eps = np.array([np.random.default_rng([seed, 7, first + i]).standard_normal() for i in range(len(X))])
    if task.noise_kind == "multiplicative":
        return y * (1.0 + task.noise * eps)
    X_all, _ = task.sample("train", seed)
    return y + task.noise * float(np.sqrt(np.mean(task.truth(X_all) ** 2))) * eps


def box(task: Task) -> np.ndarray:
    """The (d, 2) box points are measured in: the task's training range."""
    return np.array(task.domain(), dtype=np.float64)


def random_points(task: Task, n: int, seed: int, round_: int) -> np.ndarray:
    """``n`` points drawn uniformly in the box (the random arm's round ``round_``)."""
    b = box(task)
    rng = np.random.default_rng([seed, 8, round_])
    return b[:, 0] + rng.random((n, len(b))) * (b[:, 1] - b[:, 0])


def run_law(
    task: Task, seed: int, method: str, start: int, add: int, rounds: int, calls: int, seconds: float,
    gaps: int = 0,
) -> dict:  # fmt: skip
    """Both arms on one (task, seed): round 0 on the ``start`` points, then up to ``rounds``
    rounds of ``add`` points each, until the law is recovered (``gaps``: of the suggested
    points, how many fill gaps in the data; :func:`pipelines.interface.suggest.suggest`).
    The runs.jsonl record."""
    from pipelines.bench.methods import pipeline
    from pipelines.bench.record import recovers
    from pipelines.interface.suggest import SuggestError, suggest

    truth = task.truth_sympy()
    names = task.column_names()
    bounds = {name: (lo, hi) for name, (lo, hi) in zip(names, box(task), strict=True)}
    solver = pipeline(method)

    def solve(X: np.ndarray, y: np.ndarray):
        result = solver.solve(
            X, y, function_set=task.function_set, calls=calls, seconds=seconds, seed=seed,
            units=task.dimensions(),
        )  # fmt: skip
        found = result.sympy()
        ok = recovers(task, found, truth)
        return result, {"points": len(X), "recovered": ok, "found": str(found), "seconds": result.seconds}

    X0, _ = task.sample("train", seed)
    X0 = X0[:start]
    y0 = measure(task, X0, 0, seed)
    result0, first = solve(X0, y0)
    arms: dict[str, dict] = {}
    for arm in ARMS:
        X, y, result, history, fallbacks = X0, y0, result0, [first], 0
        for r in range(1, rounds + 1):
            if history[-1]["recovered"]:
                break
            new = None
            if arm == "suggested":
                try:
                    new = suggest(X, y, result, bounds, add, seed + r, names, gaps).points
                except SuggestError:  # a front of one cannot disagree: this round measures at random
                    fallbacks += 1
            if new is None:
                new = random_points(task, add, seed, r)
            X = np.vstack([X, new])
            y = np.concatenate([y, measure(task, new, len(y), seed)])
            result, step = solve(X, y)
            history.append(step)
        done = [h["recovered"] for h in history]
        arms[arm] = {
            "rounds": done.index(True) if True in done else None,
            "history": history,
            "fallbacks": fallbacks,
        }
    return {
        "task": task.name,
        "seed": seed,
        "method": METHOD,
        "truth": str(truth),
        "noise": task.noise,
        "noise_kind": task.noise_kind,
        "start": start,
        "add": add,
        "gaps": gaps,
        "max_rounds": rounds,
        "budget_calls": calls,
        "budget_seconds": seconds,
        "error": None,
        **arms,
    }


def _job(
    task: Task, seed: int, method: str, start: int, add: int, rounds: int, calls: int, seconds: float,
    gaps: int = 0,
) -> dict:  # fmt: skip
    """One job in a worker, with its failure as a record (the loop goes on)."""
    from pipelines.bench.record import clean, one_line

    try:
        return clean(run_law(task, seed, method, start, add, rounds, calls, seconds, gaps))
    except Exception as err:  # noqa: BLE001 - one law's failure must not stop the others
        return {"task": task.name, "seed": seed, "method": METHOD, "error": one_line(err)}


# --- the summary ------------------------------------------------------------------------------


def rounds_needed(rec: dict, arm: str) -> float:
    """The rounds the arm needed, inf when it did not recover the law within the rounds."""
    r = (rec.get(arm) or {}).get("rounds")
    return math.inf if r is None else float(r)


def summarize(records: list[dict]) -> dict:
    """The paired figures: wins (suggested needed fewer rounds), losses, ties, the sign test,
    and per arm the share recovered within the rounds and at each number of points."""
    from pipelines.sign_test import sign_test

    ok = [r for r in records if not r.get("error")]
    s = [rounds_needed(r, "suggested") for r in ok]
    q = [rounds_needed(r, "random") for r in ok]
    test = sign_test([a < b for a, b in zip(s, q)], [b < a for a, b in zip(s, q)])
    out = {
        "runs": len(ok),
        "failed": len(records) - len(ok),
        "wins": test.wins,
        "losses": test.losses,
        "p": test.p,
    }
    out["ties"] = len(ok) - test.wins - test.losses
    out["round0"] = sum(a == 0 for a in s)
    if ok:
        rounds = int(ok[0]["max_rounds"])
        start, add = int(ok[0]["start"]), int(ok[0]["add"])
        out["points"] = [start + add * k for k in range(rounds + 1)]
        for arm, needed in (("suggested", s), ("random", q)):
            out[arm] = {
                "recovered": sum(math.isfinite(v) for v in needed) / len(ok),
                "curve": [sum(v <= k for v in needed) / len(ok) for k in range(rounds + 1)],
                "mean_rounds": float(np.mean([v for v in needed if math.isfinite(v)]))
                if any(map(math.isfinite, needed))
                else None,
            }
    return out


def markdown(records: list[dict], s: dict, meta: dict) -> str:
    """summary.md: the setting, the paired result, the curve and each law's rounds."""
    lines = [f"# The scientist's loop: suggested against random points ({meta['source']})", ""]
    lines.append(
        f"{meta['seeds']} seed(s); start from {meta['start']} points, add {meta['add']} per round "
        f"({meta['gaps']} of the suggested ones in the widest gaps of the data), at most "
        f"{meta['rounds']} rounds; method {meta['method']}, {meta['calls']:,} calls and "
        f"{meta['seconds']:g} s per solve."
    )
    lines.append("")
    if not s["runs"]:
        return "\n".join([*lines, "No run finished.", ""])
    lines += [
        f"- task-seeds: {s['runs']} ({s['failed']} failed); recovered at round 0 (the shared "
        f"first solve): {s['round0']}",
        f"- paired on rounds to recovery: suggested fewer in {s['wins']}, random fewer in {s['losses']}, "
        f"ties {s['ties']}; sign test p = {s['p']:.3g}",
    ]
    for arm in ARMS:
        a = s[arm]
        mean = "-" if a["mean_rounds"] is None else f"{a['mean_rounds']:.2f}"
        lines.append(
            f"- {arm}: recovered within the rounds {100 * a['recovered']:.1f}%, "
            f"mean rounds when recovered {mean}"
        )
    lines += ["", "| points | " + " | ".join(ARMS) + " |", "|---|" + "---|" * len(ARMS)]
    for k, n in enumerate(s["points"]):
        lines.append(f"| {n} | " + " | ".join(f"{100 * s[arm]['curve'][k]:.1f}%" for arm in ARMS) + " |")
    lines += [
        "",
        "| task | seed | suggested | random | found (suggested, last round) |",
        "|---|---|---|---|---|",
    ]
    for r in records:
        if r.get("error"):
            lines.append(f"| {r['task']} | {r['seed']} | error | error | {r['error']} |")
            continue
        cells = ["-" if math.isinf(v) else str(int(v)) for v in (rounds_needed(r, a) for a in ARMS)]
        found = r["suggested"]["history"][-1]["found"]
        lines.append(f"| {r['task']} | {r['seed']} | {cells[0]} | {cells[1]} | `{found}` |")
    return "\n".join(lines) + "\n"


def plot(s: dict, path: Path, title: str) -> None:
    """Recovery against the number of points measured, one line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for i, arm in enumerate(ARMS):
        ax.plot(
            s["points"], [100 * v for v in s[arm]["curve"]], marker="o", color=f"C{i}", label=f"{arm} points"
        )
    ax.set_xlabel("points measured")
    ax.set_ylabel("laws recovered (%)")
    ax.set_ylim(-2, 102)
    ax.set_xticks(s["points"])
    ax.set_title(f"Recovery against points measured\n{title}", fontsize=8)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- the command line ---------------------------------------------------------------------------


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``bench-loop`` on the ``induce`` subcommands."""
    p = subparsers.add_parser(
        "bench-loop",
        help="the measure-and-refit loop: rounds to recovery with suggested against random points",
        description="Start each law from a few points; each round adds points where the front disagrees "
        "(induce suggest) or at random, and solves again, until the law is recovered. Paired on the same "
        "(task, seed); rerunning with the same --out resumes. See docs/suggest.md.",
    )
    p.add_argument("--suite", help="built-in suite (default: the task file)")
    p.add_argument("--tasks", help="a task file (default benchmarks/physics/laws.yaml)")
    p.add_argument("--only", help="comma list of task names to keep")
    p.add_argument("--first", type=int, help="keep only the first N tasks of the file")
    p.add_argument("--noise", type=float, default=0.01, help="noise level, x RMS of y (default 0.01)")
    p.add_argument("--noise-kind", choices=("additive", "multiplicative"), help="default: the task's own")
    p.add_argument("--seeds", type=int, default=3, help="seeds per task (default 3)")
    p.add_argument("--start", type=int, default=8, help="points measured before the first solve (default 8)")
    p.add_argument("--add", type=int, default=3, help="points measured per round (default 3)")
    p.add_argument(
        "--gaps",
        type=int,
        default=0,
        help="of the suggested points each round, how many fill the widest gaps in the data "
        "(default 0, as induce suggest: all where the committee disagrees)",
    )
    p.add_argument("--rounds", type=int, default=5, help="rounds after the first solve (default 5)")
    p.add_argument("--method", default="full", help="the pipeline preset or YAML that solves (default full)")
    p.add_argument("--calls", type=int, default=50_000, help="simulator calls per solve (default 50000)")
    p.add_argument("--seconds", type=float, default=10.0, help="wall seconds per solve (default 10)")
    p.add_argument("--workers", type=int, default=1, help="laws in parallel (default 1)")
    p.add_argument(
        "--executor", choices=EXECUTORS, default="process", help="as induce bench's (default process)"
    )
    p.add_argument("--out", default="runs/bench-loop", help="output folder (default runs/bench-loop)")
    p.set_defaults(func=main)
    return p


def _check(args: argparse.Namespace) -> None:
    from pipelines.bench.cli import BenchError

    for name, low in (("seeds", 1), ("start", 2), ("add", 1), ("rounds", 1), ("calls", 1), ("workers", 1)):
        value = getattr(args, name)
        if value < low:
            raise BenchError(f"--{name} must be at least {low}, got {value}")
    if args.first is not None and args.first < 1:
        raise BenchError(f"--first must be at least 1, got {args.first}")
    if not (math.isfinite(args.seconds) and args.seconds > 0):
        raise BenchError(f"--seconds must be a positive number, got {args.seconds:g}")
    if not (math.isfinite(args.noise) and 0 <= args.noise <= 10):
        raise BenchError(f"--noise must be between 0 and 10, got {args.noise:g}")
    if not 0 <= args.gaps < args.add:
        raise BenchError(f"--gaps must be from 0 to --add - 1 = {args.add - 1}, got {args.gaps}")


def main(args: argparse.Namespace) -> int:
    """Run the (task, seed) jobs not yet in runs.jsonl, then write summary.md and the plot."""
    from pipelines.bench.cli import duration, select_tasks
    from pipelines.bench.methods import get
    from pipelines.bench.plan import plan
    from pipelines.bench.store import RunStore

    _check(args)
    task_file = args.tasks if args.tasks or args.suite else "benchmarks/physics/laws.yaml"
    tasks, source = select_tasks(args.suite, task_file, args.only)
    if args.first is not None:
        tasks = tasks[: args.first]
        source += f" (the first {len(tasks)})"
    tasks = [t.with_noise(args.noise, args.noise_kind) for t in tasks]
    source += f" at noise {args.noise:g}" + (
        " (multiplicative)" if args.noise_kind == "multiplicative" else ""
    )
    get(args.method)  # an unknown method is a one-line error before anything runs
    out = Path(args.out)
    store = RunStore(out)
    jobs = plan(tasks, args.seeds, [METHOD], args.calls, float(args.seconds))
    todo = store.todo(jobs, retry_errors=True)
    solves = 1 + 2 * args.rounds
    setting = {"start": args.start, "add": args.add, "gaps": args.gaps, "max_rounds": args.rounds,
               "budget_calls": args.calls, "budget_seconds": float(args.seconds)}  # fmt: skip
    other = {_setting(r) for r in store.records(jobs) if not r.get("error")} - {_setting(setting)}
    if other:
        say(f"warning: {store.path} holds runs of other settings {sorted(other)}; they are kept, not rerun")
    say(
        f"bench-loop: {source}, {len(tasks)} tasks x {args.seeds} seeds = {len(jobs)} laws-seeds "
        f"({len(jobs) - len(todo)} already in {store.path}); at most {solves} solves each, "
        f"at most {duration(len(todo) * solves * args.seconds / args.workers)} with {args.workers} worker(s)"
    )
    executor = make_executor(args.executor, args.workers)
    finished = [0]

    def on_done(i: int, rec: dict | None, error: BaseException | None) -> None:
        job = todo[i]
        rec = (
            rec
            if error is None
            else {"task": job.task.name, "seed": job.seed, "method": METHOD, "error": str(error)}
        )
        store.append(rec)
        finished[0] += 1
        say(f"[{finished[0]}/{len(todo)}] {job.task.name} seed {job.seed}: {_brief(rec)}")

    job_args = [
        (j.task, j.seed, args.method, args.start, args.add, args.rounds, args.calls, j.seconds, args.gaps)
        for j in todo
    ]
    limits = [solves * (args.seconds + 60.0)] * len(todo)
    executor.map(_job, job_args, on_done, setup=single_thread, limits=limits)

    records = store.records(jobs)
    s = summarize(records)
    meta = {
        "source": source, "seeds": args.seeds, "start": args.start, "add": args.add, "rounds": args.rounds,
        "gaps": args.gaps,
        "method": args.method, "calls": args.calls, "seconds": float(args.seconds),
    }  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(markdown(records, s, meta))
    wrote = [out / "summary.md"]
    if s["runs"]:
        plot(s, out / "recovery_vs_points.png", source)
        wrote.append(out / "recovery_vs_points.png")
        print(
            f"suggested fewer rounds in {s['wins']}, random in {s['losses']}, ties {s['ties']} "
            f"(sign test p = {s['p']:.3g}); recovered within {args.rounds} rounds: suggested "
            f"{100 * s['suggested']['recovered']:.1f}%, random {100 * s['random']['recovered']:.1f}%",
            flush=True,
        )
    say(f"wrote {', '.join(map(str, wrote))}, {store.path}")
    return 0


def _setting(rec: dict) -> tuple:
    """What a record's figures depend on besides its task and seed (a record without gaps is
    older than them: all its points by disagreement)."""
    return tuple(rec.get(key, 0 if key == "gaps" else None) for key in SETTING)


def _brief(rec: dict) -> str:
    if rec.get("error"):
        return f"error: {rec['error']}"
    cells = ["-" if math.isinf(v) else str(int(v)) for v in (rounds_needed(rec, a) for a in ARMS)]
    return f"rounds to recovery: suggested {cells[0]}, random {cells[1]}"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
