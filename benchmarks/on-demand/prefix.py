"""How large a library prefix the root solve needs: for each task (seed 0's training data), the
smallest of 128, 256, ..., 20,000 programs, enumerated in a pipeline's order, whose exact root
solve (lookups, splits, decomposition) meets the data. Run from the repository root:

    python benchmarks/on-demand/prefix.py [--tasks FILE] [--preset full|plain] [--only A,B]

`full` enumerates in the recognition model's order, `plain` smallest first. It costs no
simulator calls; it only says when a library built on demand would meet each task.
"""

from __future__ import annotations

import argparse

import numpy as np

from pipelines.interface.pipeline import instantiate, preset_spec
from pipelines.search.problem import Problem
from pipelines.search.library import Library
from simulator.enumerate import enumerate_exhaustive
from simulator.execute import evaluate
from simulator.suites import get_suite, load_tasks

CAPS = (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 20000)


def smallest_prefix(stage, task) -> tuple[int, str] | None:
    X, y = task.sample("train", 0)
    session = stage.start(Problem(X, y, task.function_set))
    p = session.problem
    for cap in CAPS:
        programs, outputs = enumerate_exhaustive(p.function_set, p.X, stage.max_size, cap, session._costs)
        for q in session.solve_target(Library(programs, outputs, p.X), p.y, stage.depth, exact_only=True):
            with np.errstate(all="ignore"):
                out = evaluate(q, p.X)
            if np.isfinite(out).all() and np.mean((out - p.y) ** 2) <= 1e-12 * (np.var(p.y) + 1e-300):
                return len(programs), str(q)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", help="a task file; default: the built-in Nguyen and Nguyen-c")
    ap.add_argument("--preset", default="full", choices=("full", "plain"))
    ap.add_argument("--only", default="", help="comma list of task names")
    args = ap.parse_args()
    tasks = load_tasks(args.tasks) if args.tasks else get_suite("all")
    only = set(filter(None, args.only.split(",")))
    stage = instantiate(preset_spec(args.preset)["subgoal"], "subgoal")
    print(f"| task | programs needed ({args.preset}) | met by |\n|---|---|---|")
    for task in tasks:
        if not only or task.name in only:
            found = smallest_prefix(stage, task)
            print(f"| {task.name} | {found[0] if found else 'over 20,000'} | {found[1] if found else ''} |", flush=True)


if __name__ == "__main__":
    main()
