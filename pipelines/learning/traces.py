"""Traces: the planner's own experience on random targets, labelled in hindsight.

Search creates its own supervised data: the states the planner meets are the ones its models
must judge well, and how a run ended labels them for free. ``run_task`` draws a
random target program from the prior (never a benchmark formula), runs a pipeline on it, and
records the states the planner expanded: the program, what every legal edit scored, which
edits the proposal picked and which were run, and what each child cost. When the run ends, the
program actually found labels every recorded state: its edit distance to the found program,
which of its edits move toward it, and every edit's true child loss. The found program is a
valid target for its ancestors even when it is not the one that was drawn.

Shards are written and read by ``simulator/trace_store.py``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from pipelines.search.planner import EXACT_FIT, Expansion
from simulator.edits import KINDS, Edit, apply, edit_distance, next_edits
from simulator.enumerate import FunctionSetPrior, ProgramPrior, output_ok, sample_inputs
from simulator.execute import evaluate
from simulator.incremental import IncrementalEvaluator
from simulator.language import FunctionSet
from simulator.program import Program
from simulator.scoring import nmse
from simulator.trace_store import TRACE_FORMAT, TraceError, program_record, shard_path, write_shard


@dataclass(frozen=True)
class TraceConfig:
    """How traces are made: the pipeline and its budget, and the random targets' prior."""

    pipeline: str = "full"
    calls: int = 20_000
    seconds: float = 20.0
    states_per_run: int = 32  # expansions kept per run (reservoir-sampled over the whole run)
    n_points: int = 20
    max_vars: int = 3
    function_sets: tuple[str, ...] = ("koza", "ckoza")
    min_size: int = 3
    max_size: int = 13
    max_edits: int = 30  # the planner's program-size cap, for the hindsight edit labels


def random_target(rng: np.random.Generator, cfg: TraceConfig) -> tuple[FunctionSet, np.ndarray, Program]:
    """A function set, inputs and a target program whose output is valid and not constant."""
    sets = FunctionSetPrior(named=cfg.function_sets)
    prior = ProgramPrior(min_size=cfg.min_size, max_size=cfg.max_size)
    while True:
        fs = sets.sample(rng, max_vars=cfg.max_vars)
        X = sample_inputs(fs.n_vars, cfg.n_points, rng)
        target = prior.sample(fs, rng)
        with np.errstate(all="ignore"):
            y = evaluate(target, X)
        if np.isfinite(y).all() and output_ok(y) and target.n_vars >= 1:
            return fs, X, target


@dataclass
class StateRecord:
    """One expanded state, as the planner saw it."""

    program: Program
    loss: float
    calls: int
    edits: list[Edit]
    log_scores: np.ndarray
    proposed: np.ndarray  # bool per edit: picked by the proposal
    verified: np.ndarray  # bool per edit: run (all of them with verify_all)
    labels: dict = field(default_factory=dict)


class Recorder:
    """Keeps a uniform sample of ``k`` expansions of one run (reservoir sampling)."""

    def __init__(self, k: int, rng: np.random.Generator):
        self.k, self.rng, self.seen = k, rng, 0
        self.states: list[StateRecord] = []

    def __call__(self, exp: Expansion) -> None:
        self.seen += 1
        slot = len(self.states) if len(self.states) < self.k else int(self.rng.integers(self.seen))
        if slot >= self.k:
            return
        n = len(exp.edits)
        proposed, verified = np.zeros(n, bool), np.zeros(n, bool)
        proposed[exp.proposed], verified[exp.verified] = True, True
        record = StateRecord(
            exp.parent.program,
            exp.parent.loss,
            exp.calls,
            list(exp.edits),
            exp.log_scores,
            proposed,
            verified,
        )
        if slot == len(self.states):
            self.states.append(record)
        else:
            self.states[slot] = record


def hindsight(
    state: StateRecord, found: Program, fs: FunctionSet, X: np.ndarray, y: np.ndarray, max_size: int
):
    """Label a state from the program found: distance to it, the edits that move toward it, and
    every edit's true child loss (constants at their current values, not refitted)."""
    toward = set(next_edits(state.program, found, fs, max_size))
    Y, valid = IncrementalEvaluator(state.program, X).evaluate(state.edits)
    child_loss = nmse(Y, y)
    child_loss[~valid] = np.inf
    state.labels = {
        "distance": edit_distance(state.program, found),
        "toward": np.array([e in toward for e in state.edits], dtype=bool),
        "child_loss": child_loss,
    }


def path_keys(start: Program, edits: list[Edit]) -> set[str]:
    """Keys of every program on the found program's path from its start."""
    keys, p = {start.key}, start
    for e in edits:
        p = apply(p, e)
        keys.add(p.key)
    return keys


def run_task(task_id: int, seed: int, cfg: TraceConfig, pipeline=None) -> dict:
    """One random target, one run of the pipeline, its labelled states: a shard's rows."""
    from pipelines.interface.pipeline import InductionPipeline

    rng = np.random.default_rng([seed, task_id])
    fs, X, target = random_target(rng, cfg)
    y = evaluate(target, X)
    pipe = pipeline or InductionPipeline.load(cfg.pipeline)
    recorder = Recorder(cfg.states_per_run, np.random.default_rng([seed, task_id, 1]))
    res = pipe.solve(
        X, y, function_set=fs, calls=cfg.calls, seconds=cfg.seconds, seed=task_id, on_expand=recorder
    )
    on_path = path_keys(res.start, [s.edit for s in res.trace])
    for st in recorder.states:
        hindsight(st, res.program, fs, X, y, cfg.max_edits)
    last = res.trace[-1] if res.trace else None
    return {
        "task": {
            "task_id": task_id,
            "function_set": ",".join(fs.to_names()),
            "n_vars": fs.n_vars,
            "X": torch.as_tensor(X),
            "y": torch.as_tensor(y),
            "target": program_record(target),
            "found": program_record(res.program),
            "found_loss": float(res.loss),
            "solved": bool(res.stopped == EXACT_FIT),
            "calls": res.calls,
            "candidates_scored": res.candidates_scored,
            "found_at": res.found_at,
            "seconds": float(res.seconds),
            "expansions": recorder.seen,
            "hit_stage": last.stage if last else "start",
            "hit_reason": last.reason if last else "",
        },
        "states": [_state_row(st, on_path) for st in recorder.states],
    }


def _state_row(st: StateRecord, on_path: set[str]) -> dict:
    e = st.edits
    return {
        "program": program_record(st.program),
        "loss": float(st.loss),
        "calls": int(st.calls),
        "on_path": st.program.key in on_path,
        "distance": int(st.labels["distance"]),
        "edit_kind": torch.tensor([KINDS.index(x.kind) for x in e], dtype=torch.int8),
        "edit_loc": torch.tensor([x.loc for x in e], dtype=torch.int16),
        "edit_token": [x.token for x in e],
        "edit_leaf": [x.leaf for x in e],
        "edit_side": torch.tensor([x.side for x in e], dtype=torch.int8),
        "log_score": torch.as_tensor(np.asarray(st.log_scores, dtype=np.float32)),
        "proposed": torch.as_tensor(st.proposed),
        "verified": torch.as_tensor(st.verified),
        "toward": torch.as_tensor(st.labels["toward"]),
        "child_loss": torch.as_tensor(st.labels["child_loss"]),
    }


# ----- generation -----------------------------------------------------------------------------
def make_shard(out: str, index: int, task_ids: list[int], seed: int, cfg: TraceConfig) -> dict:
    """Run one shard's tasks with one pipeline and write the shard; a summary for progress."""
    from pipelines.interface.pipeline import InductionPipeline

    pipe = InductionPipeline.load(cfg.pipeline)
    rows = [run_task(t, seed, cfg, pipe) for t in task_ids]
    write_shard(shard_path(Path(out), index), rows, asdict(cfg), seed)
    return {
        "shard": index,
        "runs": len(rows),
        "solved": sum(r["task"]["solved"] for r in rows),
        "states": sum(len(r["states"]) for r in rows),
    }


def plan_shards(n_tasks: int, shard_size: int) -> list[list[int]]:
    """Task ids per shard; a task's randomness depends only on (seed, task id), not on sharding."""
    return [list(range(s, min(s + shard_size, n_tasks))) for s in range(0, n_tasks, shard_size)]


def generate(
    out: str | Path,
    n_tasks: int,
    seed: int = 0,
    cfg: TraceConfig | None = None,
    shard_size: int = 8,
    workers: int = 1,
    executor: str = "local",
    progress=None,
) -> list[dict]:
    """Make every missing shard of ``out`` (finished shards are kept: a stopped run resumes).

    ``executor`` is ``local`` (processes on this machine) or ``ray`` (a Ray cluster: each shard
    is one task, so generation spreads over as many machines as the cluster has).
    """
    cfg = cfg or TraceConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_config(out, cfg, seed)
    jobs = [
        (str(out), i, ids, seed, cfg)
        for i, ids in enumerate(plan_shards(n_tasks, shard_size))
        if not shard_path(out, i).exists()
    ]
    from pipelines.parallel import map_jobs

    return map_jobs(make_shard, jobs, workers=workers, executor=executor, progress=progress)


def _check_config(out: Path, cfg: TraceConfig, seed: int) -> None:
    """A folder holds traces of one configuration: resuming with another would mix them."""
    import json

    meta = out / "traces.json"
    want = {"format": TRACE_FORMAT, "seed": seed, "config": asdict(cfg)}
    if meta.exists():
        have = json.loads(meta.read_text())
        if have != json.loads(json.dumps(want)):
            raise TraceError(f"{out}: holds traces of another configuration or seed; use a new --out")
    else:
        meta.write_text(json.dumps(want, indent=2))


# ----- command line ---------------------------------------------------------------------------
def add_parser(sub) -> None:
    p = sub.add_parser(
        "traces", help="run the planner on random targets and record its states, labelled in hindsight"
    )
    p.add_argument("--out", required=True, help="folder for the shards (a rerun resumes it)")
    p.add_argument("--tasks", type=int, default=64, help="random target programs (default 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pipeline", default="full", help="preset or pipeline YAML that makes the traces")
    p.add_argument("--calls", type=int, default=20_000, help="simulator-call budget per run")
    p.add_argument("--seconds", type=float, default=20.0, help="wall-time budget per run")
    p.add_argument("--states", type=int, default=32, help="expanded states kept per run")
    p.add_argument("--function-sets", default="koza,ckoza", help="named sets the targets are drawn over")
    p.add_argument("--shard-size", type=int, default=8, help="runs per shard file")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--executor", default="local", choices=["local", "ray"])
    p.set_defaults(func=main)


def main(args) -> int:
    import sys

    from tqdm import tqdm

    from simulator.language import FUNCTION_SETS

    sets = tuple(s.strip().lower() for s in args.function_sets.split(",") if s.strip())
    unknown = [s for s in sets if s not in FUNCTION_SETS] or ([] if sets else ["(none)"])
    if unknown:
        raise TraceError(
            f"unknown function set(s) {', '.join(unknown)}; named sets: {', '.join(FUNCTION_SETS)}"
        )
    for name, value in (("--tasks", args.tasks), ("--calls", args.calls), ("--states", args.states)):
        if value < 1:
            raise TraceError(f"{name} must be at least 1, got {value}")
    cfg = TraceConfig(
        pipeline=args.pipeline,
        calls=args.calls,
        seconds=args.seconds,
        states_per_run=args.states,
        function_sets=sets,
    )
    from pipelines.interface.pipeline import InductionPipeline

    InductionPipeline.load(cfg.pipeline)  # a bad preset or config fails here, in one line
    shards = plan_shards(args.tasks, args.shard_size)
    bar = tqdm(total=len(shards), unit="shard", file=sys.stderr, disable=None)
    bar.update(sum(shard_path(Path(args.out), i).exists() for i in range(len(shards))))
    done = generate(
        args.out,
        args.tasks,
        args.seed,
        cfg,
        args.shard_size,
        args.workers,
        args.executor,
        lambda _: bar.update(),
    )
    bar.close()
    from simulator.trace_store import load_traces

    runs = load_traces(args.out)
    solved = sum(r["task"]["solved"] for r in runs)
    states = sum(len(r["states"]) for r in runs)
    print(f"{args.out}: {len(runs)} runs ({len(done)} shards new), {solved} solved, {states} labelled states")
    return 0
