"""The ``induce`` command line: solve, fit/validate/test, export, evaluate, bench, bench-simulator.

Every user error ends in one line on stderr and a non-zero exit code, never a traceback.
Places in a user's files are counted as an editor shows them: ``line N`` is the file's line N
(from 1, the header included); arrays given to the Python API are indexed from 0, ``X[3, 1]``.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

DEMO_TASK = "Nguyen-5"
DATA_FUNCTION_SET = "ckoza"  # the default for a CSV, the same as ProgramRegressor's
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


class UsageError(ValueError):
    """A bad command line or input file."""


def _names(text: str | None, option: str) -> list[str] | None:
    """A comma list of column names (``--features t,x``), or None when not given."""
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"{option} is empty; give column names such as {option} t,x")
    return names


def _column(path: str, name: str, header: list[str], option: str) -> int:
    """The index of a named column, or a one-line error with the near names."""
    if name in header:
        return header.index(name)
    close = difflib.get_close_matches(name, [h for h in header if h], n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    columns = ", ".join(repr(h) for h in header)
    raise UsageError(f"{path}: {option}: no column named {name!r}{hint} (columns: {columns})")


def _looks_like_index(values: np.ndarray) -> bool:
    """0, 1, 2, ... or 1, 2, 3, ...: the row numbers a spreadsheet or pandas writes."""
    return len(values) > 2 and values[0] in (0, 1) and bool(np.all(np.diff(values) == 1))


def read_csv(
    path: str, target: str, features: list[str] | None = None, drop: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """X, y and the feature names from a CSV with a header row.

    The inputs are ``features`` (in that order), else every column but the target and
    ``drop``; columns not used may hold anything. Blank lines are skipped; every error names
    the file's own line number.
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: file not found")
    with p.open(newline="") as f:
        reader = csv.reader(f)
        rows = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise UsageError(f"{path}: needs a header row and at least one data row")
    header = [h.strip() for h in rows[0][1]]
    j = _column(path, target, header, "--target")
    if features is not None and drop is not None:
        raise UsageError("give --features or --drop, not both")
    if features is not None:
        used = [_column(path, name, header, "--features") for name in dict.fromkeys(features)]
        if j in used:
            raise UsageError(f"--features: {target!r} is the target; it cannot be an input too")
    else:
        dropped = {_column(path, name, header, "--drop") for name in drop or []}
        used = [i for i in range(len(header)) if i != j and i not in dropped]
        unnamed = [i + 1 for i in used if not header[i]]
        if unnamed:
            raise UsageError(
                f"{path}: column {unnamed[0]} has no name, as the index pandas writes unless "
                "to_csv(..., index=False); save it that way, or choose the inputs with --features"
            )
    if not used:
        raise UsageError(f"{path}: needs at least one feature column besides {target!r}")
    data = []
    for line, r in rows[1:]:
        if len(r) != len(header):
            raise UsageError(f"{path}: line {line} has {len(r)} fields, the header has {len(header)}")
        vals = []
        for i in [*used, j]:
            name, cell = header[i], r[i]
            try:
                value = float(cell)
            except ValueError:
                hint = "" if i == j else f" (leave the column out with --drop {name})"
                raise UsageError(
                    f"{path}: line {line}, column {name!r} is not numeric: {cell!r}{hint}"
                ) from None
            if not math.isfinite(value):
                kind = "NaN" if math.isnan(value) else "infinite"
                raise UsageError(f"{path}: line {line}, column {name!r} is {kind} ({cell.strip()!r})")
            vals.append(value)
        data.append(vals)
    arr = np.array(data)
    names = [header[i] for i in used]
    for k, name in enumerate(names):
        if _looks_like_index(arr[:, k]):
            print(
                f"warning: column {name!r} counts 0, 1, 2, ... like a row index; "
                f"if it is not a measurement, leave it out with --drop {name}",
                file=sys.stderr,
            )
    return arr[:, :-1], arr[:, -1], names


def plot_result(result, X: np.ndarray, y: np.ndarray, path: str, title: str = "", target: str = "y") -> None:
    """Data against the found program, and the best loss against simulator calls; the axes
    carry the data's names (``target`` for y)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    if X.shape[1] == 1:
        grid = np.linspace(X[:, 0].min(), X[:, 0].max(), 400)[:, None]
        with np.errstate(all="ignore"):
            a.plot(grid[:, 0], result.predict(grid), color="C1", label=f"found: {result.sympy()}")
        a.scatter(X[:, 0], y, color="C0", zorder=3, label="data")
        a.set_xlabel((result.variable_names or ("x1",))[0])
        a.set_ylabel(target)
        a.legend(fontsize=8)
    else:
        a.scatter(y, result.predict(X), color="C0")
        lim = [float(np.min(y)), float(np.max(y))]
        a.plot(lim, lim, color="gray", lw=1)
        a.set_xlabel(f"{target} (data)")
        a.set_ylabel(f"{target} (found program)")
        a.set_title(f"found: {result.sympy()}", fontsize=9)
    if result.history:
        calls, losses = zip(*result.history)
        b.step(np.maximum(calls, 1), np.maximum(losses, 1e-17), where="post")
        b.set_xscale("log")
        b.set_yscale("log")
    b.set_xlabel("simulator calls")
    b.set_ylabel("best NMSE so far")
    b.set_title("search progress")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _task_from_file(tasks: list, name: str | None, path: str = "the task file"):
    """The named task of a task file (the first one when no name is given), matched as a
    built-in task's name is: case and punctuation aside, with a did-you-mean."""
    from simulator.suites import find_task

    return tasks[0] if name is None else find_task(tasks, name, f"task file {path}")


def load_csv(args) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """X, y and the feature names as ``--csv``, ``--target``, ``--features`` and ``--drop`` say
    (solve and suggest read their data alike)."""
    if not args.target:
        raise UsageError("--csv needs --target COLUMN")
    features, drop = _names(args.features, "--features"), _names(args.drop, "--drop")
    return read_csv(args.csv, args.target, features, drop)


def _check_function_set(args) -> None:
    if args.function_set is not None and not args.function_set.strip(" ,"):
        raise UsageError(
            "--function-set is empty; give a set name (Koza, CKoza, arith, full) "
            "or operators such as add,mul,sin"
        )


def run_search(
    args, X: np.ndarray, y: np.ndarray, names: list[str], title: str, function_set=None, units=None
):
    """Solve with the search options that solve and suggest share (:func:`add_search_arguments`),
    a progress bar on stderr; the result prints with ``names``. ``--units`` (units for the
    CSV's columns and its target) replace ``units``, a task's own."""
    from pipelines.interface.pipeline import InductionPipeline
    from pipelines.search.progress import progress_bar
    from pipelines.search.selection import check_criterion

    _check_function_set(args)
    validation = getattr(args, "validation", 0.0)  # suggest has no held-out split
    pipe = (
        InductionPipeline.from_config(args.config) if args.config else InductionPipeline.preset(args.pipeline)
    )
    if args.select is not None:
        if args.select.strip().lower() == "validation" and not validation:
            fix = "add --validation 0.2, say" if hasattr(args, "validation") else "solve has --validation"
            raise UsageError(f"--select validation needs a held-out split: {fix}")
        pipe = pipe.replace(select=check_criterion(args.select, has_validation=bool(validation)))
    if args.noise_floor is not None:
        pipe = pipe.replace(noise_floor=_noise_floor(args.noise_floor))
    if getattr(args, "no_snap", False):
        pipe = pipe.replace(snap=False)
    if getattr(args, "outliers", None) is not None:
        pipe = pipe.replace(outliers=args.outliers)
    bar, update = progress_bar(args.calls, names=names)
    print(f"solving {title} ({len(y)} points, pipeline {pipe.name})", file=sys.stderr)
    try:
        result = pipe.solve(
            X,
            y,
            function_set=function_set or args.function_set or DATA_FUNCTION_SET,
            calls=args.calls,
            seconds=args.seconds,
            seed=args.seed,
            progress=update,
            validation=validation,
            names=names,
            units=args.units or units,
            target=getattr(args, "target", None) or "target",  # a task's target is "target"
        )
    finally:
        bar.close()
    # the CSV's column names (or the task file's) everywhere: text, sympy, LaTeX, JSON, front, plot
    result.variable_names = tuple(names)
    return result


def cmd_solve(args) -> int:
    from simulator.suites import get_task, load_tasks

    if args.csv and args.task:
        raise UsageError("give a task name or --csv, not both")
    if not args.csv and (args.features or args.drop):
        raise UsageError("--features and --drop choose CSV columns; they go with --csv")
    _check_function_set(args)
    if args.csv:
        X, y, names = load_csv(args)
        # data without a named set gets fitted constants, as ProgramRegressor does
        title, fs, truth = f"{args.csv}: {args.target}", args.function_set or DATA_FUNCTION_SET, None
    else:
        task = (
            _task_from_file(load_tasks(args.tasks), args.task, args.tasks)
            if args.tasks
            else get_task(args.task or DEMO_TASK)
        )
        X, y = task.sample("train", seed=args.seed)
        names = task.column_names()
        title, fs, truth = task.name, args.function_set or task.function_set, task
    result = run_search(args, X, y, names, title, fs, None if truth is None else truth.dimensions())
    print(result)
    out = result.to_dict()
    out["variables"] = names
    if truth is not None:
        from simulator.program import symbols
        from simulator.recovery import NOISY_RTOL, is_recovered

        out["task"] = truth.name
        law = truth.truth_sympy()  # over x1, x2, ...: the recovery check compares it with the program's
        out["truth"] = str(law.subs(dict(zip(symbols(len(names)), symbols(len(names), names)))))
        rtol = NOISY_RTOL if truth.noise > 0 else 0.0
        found = result.program.to_sympy()
        out["recovered"] = bool(is_recovered(found, law, domain=truth.domain(), rtol=rtol))
        print(f"\ntruth:    {out['truth']}\nrecovered: {out['recovered']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=float))
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        plot_result(result, X, y, args.plot, title, args.target if args.csv else "y")
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def _noise_floor(text: str) -> float | str:
    """``--noise-floor``: 'auto' or an NMSE in [0, 1)."""
    from pipelines.search.noise import check_noise_floor

    try:
        return check_noise_floor(text if text.strip().lower() == "auto" else float(text))
    except ValueError:
        raise UsageError(f"--noise-floor must be auto or an NMSE from 0 to 1, got {text!r}") from None


def cmd_export(args) -> int:
    from pipelines.learning.train import export_run

    src = export_run(args.source, args.dest, force=args.force)
    print(f"copied {src} to {args.dest}")
    return 0


def package_version() -> str:
    """The installed distribution's version (``unknown`` when run from a checkout never installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("active-induction")
    except PackageNotFoundError:
        return "unknown"


def add_data_arguments(s: argparse.ArgumentParser) -> None:
    """The CSV options that solve and suggest share."""
    s.add_argument("--csv", help="CSV file with a header row")
    s.add_argument("--target", help="the CSV column to explain")
    s.add_argument(
        "--features", help="comma list of the CSV columns to use as inputs (default: all but --target)"
    )
    s.add_argument("--drop", help="comma list of CSV columns to leave out (an index, a text column)")


def add_search_arguments(s: argparse.ArgumentParser, seed_help: str = "seeds the search (default 0)") -> None:
    """The search options that solve and suggest share (read by :func:`run_search`)."""
    from pipelines.interface.pipeline import PRESETS

    s.add_argument(
        "--function-set",
        help=f"e.g. Koza, CKoza, or add,mul,sin,const (default: the task's; with --csv {DATA_FUNCTION_SET})",
    )
    s.add_argument("--calls", type=int, default=200_000, help="simulator-call budget (default 200000)")
    s.add_argument("--seconds", type=float, default=60.0, help="wall-time budget (default 60)")
    s.add_argument("--seed", type=int, default=0, help=seed_help)
    s.add_argument("--pipeline", default="full", help=f"preset: {', '.join(PRESETS)} (default full)")
    s.add_argument(
        "--config",
        help="a pipeline YAML, or a shipped one by name, e.g. full (docs/pipelines.md; overrides --pipeline)",
    )
    s.add_argument(
        "--select",
        help="how the law is chosen from the Pareto front: auto (the smallest exact program, else mdl), "
        "mdl, score (PySR's), accuracy, validation (needs --validation); default auto",
    )
    s.add_argument(
        "--noise-floor",
        help="the NMSE the law itself scores on noisy data: auto (estimated, the default), "
        "or a number (0: the data are exact)",
    )
    s.add_argument(
        "--units",
        help="physical units of every column and the target, e.g. 'n=mol,T=K,V=m^3,P=Pa' (read by "
        "pint; 1 for a pure number): only dimensionally consistent laws are chosen (docs/units.md)",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="induce", description="Find the exact program behind (x, y) examples.")
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("solve", help="find a program for a built-in task or a CSV file")
    s.add_argument("task", nargs="?", help=f"built-in task name (default: {DEMO_TASK})")
    s.add_argument("--tasks", help="a task file (YAML, see docs/task-files.md) to take the task from")
    add_data_arguments(s)
    add_search_arguments(s, "seeds the search and a built-in task's sampled points (default 0)")
    s.add_argument(
        "--validation",
        type=float,
        default=0.0,
        help="hold this fraction of the points out of the search; the front shows the loss on them",
    )
    s.add_argument(
        "--no-snap",
        action="store_true",
        help="keep fitted constants as fitted (by default each snaps to a simple form, 3/2 or pi, "
        "where the loss stays within the noise floor, or exact on exact data)",
    )
    s.add_argument(
        "--outliers",
        choices=("keep", "drop"),
        help="points far from their neighbours (a warning names them): keep them in the fit "
        "(the default) or drop them before the search",
    )
    s.add_argument("--json", help="write the result as JSON here")
    s.add_argument("--plot", help="write a PNG: data against the program, and loss against calls")
    s.set_defaults(func=cmd_solve)

    b = sub.add_parser("bench-simulator", help="candidate evaluations per second, incremental vs full")
    b.add_argument("--parents", type=int, default=30)
    b.add_argument("--seed", type=int, default=0, help="seeds the random parents (default 0)")
    b.set_defaults(func=lambda a: __import__("pipelines.bench.simulator_speed", fromlist=["main"]).main(a))

    from pipelines import bench
    from pipelines.bench import loop
    from pipelines.interface import suggest
    from pipelines.learning import evaluate, improve, traces

    suggest.add_parser(sub)
    bench.add_parser(sub)
    loop.add_parser(sub)
    evaluate.add_parser(sub)
    traces.add_parser(sub)
    improve.add_parser(sub)
    for name, helptext in [
        ("fit", "train a module into a new run folder under runs/"),
        ("validate", "validate trained weights (--ckpt_path)"),
        ("test", "test trained weights (--ckpt_path)"),
    ]:
        sub.add_parser(name, help=f"{helptext} through LightningCLI: induce {name} --config NAME|FILE.yaml")

    e = sub.add_parser(
        "export", help="ship a trained model: copy a run's model.pt, e.g. into pipelines/checkpoints/"
    )
    e.add_argument("source", help="a run folder, its model.pt, or a folder of runs (the newest is taken)")
    e.add_argument("dest", help="the file to write, e.g. pipelines/checkpoints/similarity.pt")
    e.add_argument("--force", action="store_true", help="replace dest when it exists")
    e.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("WANDB_MODE", "offline")
    try:
        if argv and argv[0] in LIGHTNING_COMMANDS:
            from pipelines.learning.train import lightning_main

            lightning_main(argv)
            return 0
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (induce solve ... | head): stop quietly
        _drop_stdout()
        return 141  # as a process killed by SIGPIPE
    except ValueError as err:  # every project error type derives from ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - a user never sees a traceback
        if os.environ.get("INDUCE_DEBUG"):
            raise
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (tests)
        pass


if __name__ == "__main__":
    sys.exit(main())
