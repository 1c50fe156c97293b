"""``induce improve``: expert iteration, the world model learning from the search's experience.

The models are trained on random programs, but the search meets states of its own; each
round teaches them those states, labelled in hindsight by how the runs ended:

1. **traces**: the current pipeline runs on fresh random targets (never benchmark formulas)
   and its expanded states are labelled in hindsight (``induce traces``);
2. **fit**: the edit flow, the similarity metric M and the decomposition policy are
   fine-tuned, from the previous round's weights, on every trace made so far
   (``pipelines/configs/*_traces.yaml`` through LightningCLI); the policy learns from the
   decompositions of the programs the runs found;
3. **evaluate**: on a fixed held-out set, made once by the ``plain`` pipeline on its own
   seed, the on-policy metrics of the new models beside their stand-ins, and the recovery
   of the new pipeline on the same held-out random targets, paired against ``plain``'s
   (wins, losses, sign test): the learning curve. Held-out runs are bound by their call
   budget, not by seconds, so the curve does not move with the machine's load.

A **gate** keeps a round from undoing an earlier one: a freshly fitted model replaces the
current one only if it raises its on-policy figure (``GATE_FIGURES``) by more than two
standard errors of the paired difference (``gate_rule``) on a gate set of
random targets traced once by ``plain`` on a seed of its own, apart from the held-out set,
so that selection never sees the targets the curve is measured on (AlphaZero's gating, with
on-policy figures in place of games). A fit that passes must then also solve the gate's
targets no worse through the planner (``planner_rule``), since a better figure on average
can still cost a target; ``--no-planner-gate`` skips that check, ``--gate 0`` keeps every fit.

Every round leaves its traces, checkpoints, gate decisions, pipeline YAML and ``metrics.json`` under
``OUT/round-K/``, logs to W&B offline, and redraws ``OUT/learning_curve.png``. A rerun
skips finished rounds. Round 0 measures the shipped models, the curve's start.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

from pipelines.learning.traces import TraceConfig, generate, run_task
from pipelines.shipped import config_path
from pipelines.sign_test import sign_test

HELDOUT_SEED = 1_000_003  # held-out targets: a seed no round's traces use
# Held-out runs are bound by calls, not seconds: a figure must not depend on the machine's load.
HELDOUT_SECONDS = 3_600.0
GATE_SEED = 1_000_033  # the gate's targets: model selection never sees the held-out set
# module -> (its trace config, its shipped checkpoint), both shipped in the package
MODELS = {m: (f"{m}_traces.yaml", m) for m in ("edit_flow", "similarity", "decomposition_policy")}
GATE_Z = 2.0  # a fit must gain this many standard errors of the paired difference on the gate set
GATE_FIGURES = {  # module -> the on-policy figure a new fit must raise to replace the current model
    "edit_flow": "edit_flow_spearman",
    "similarity": "metric_spearman",
    "decomposition_policy": "decomposition_top5",
}
CURVE_KEYS = (
    "heldout_solved",
    "edit_flow_spearman",
    "edit_flow_top24_best",
    "metric_spearman",
    "decomposition_top5",
)
BASELINES = {  # each curve's stand-in, drawn beside it
    "heldout_solved": "plain_solved",
    "edit_flow_spearman": "uniform_spearman",
    "edit_flow_top24_best": "random_top24_best",
    "metric_spearman": "nmse_spearman",
    "decomposition_top5": "plain_decomposition_top5",
}


class ImproveError(ValueError):
    """A bad argument to ``induce improve``."""


def pipeline_spec(models: dict[str, str]) -> dict:
    """The ``full`` preset with this round's edit flow, similarity metric and decomposition policy."""
    return {
        "preset": "full",
        "name": "improved",
        "propose": {"init_args": {"checkpoint": models["edit_flow"]}},
        "locate": {"init_args": {"similarity": models["similarity"]}},
        "verify": {"init_args": {"similarity": models["similarity"]}},
        "subgoal": {"init_args": {"decomposer": models["decomposition_policy"]}},
    }


def fit_model(
    module: str,
    traces: list[str],
    start: str,
    dest: Path,
    steps: int,
    seed: int,
    data: dict | None = None,
    model: dict | None = None,
) -> Path:
    """Fine-tune one module from ``start`` on ``traces``; the export lands at ``dest``. ``data``
    and ``model`` override the data module's and the model's arguments (``best_child_share``,
    ``lr``)."""
    from pipelines.learning.train import lightning_main

    config_name, _ = MODELS[module]
    cfg = yaml.safe_load(config_path(config_name).read_text())
    cfg["seed_everything"] = seed
    cfg["data"]["init_args"].update({"traces": traces, **(data or {})})
    cfg["model"]["init_args"].update(model or {})
    cfg["trainer"]["max_steps"] = steps
    cfg["trainer"]["val_check_interval"] = max(1, steps // 2)
    cfg["trainer"]["enable_progress_bar"] = False
    cfg["trainer"]["callbacks"] = [
        {"class_path": "flows.checkpoint.InitFromPretrained", "init_args": {"path": start}},
        {"class_path": "pipelines.learning.train.ExportCheckpoint", "init_args": {"path": str(dest)}},
    ]
    cfg["trainer"]["logger"] = {
        "class_path": "pytorch_lightning.loggers.WandbLogger",
        "init_args": {
            "project": "active-induction",
            "name": module,
            "offline": True,
            "save_dir": str(dest.parent / "runs"),
            "log_model": False,
        },
    }
    path = dest.parent / f"{module}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    lightning_main(["fit", "--config", str(path)])
    return dest


def _heldout_task(task_id: int, cfg: TraceConfig, seed: int = HELDOUT_SEED) -> dict:
    """One held-out run's outcome (the task record alone: its states are not needed)."""
    return {"task": run_task(task_id, seed, cfg)["task"]}


def heldout_recovery(
    pipeline_yaml: str,
    cfg: TraceConfig,
    n: int,
    reference: list[bool] | None = None,
    workers: int = 1,
    executor: str = "local",
    per_task: bool = False,
    seed: int = HELDOUT_SEED,
) -> dict:
    """The pipeline on ``n`` fixed random targets drawn from ``seed`` (the held-out set, or the
    gate's on ``GATE_SEED``): solved share, calls to the hit, and, against ``reference`` (the
    plain pipeline's outcome on the same targets), wins, losses and a two-sided sign test. Runs
    are bound by calls alone, so ``workers`` change no figure. ``per_task`` adds each target's
    outcome and calls to the hit (None when unsolved)."""
    from pipelines.parallel import map_jobs

    cfg = replace(cfg, pipeline=pipeline_yaml, states_per_run=1, seconds=HELDOUT_SECONDS)
    jobs = [(t, cfg, seed) for t in range(n)]
    runs = map_jobs(_heldout_task, jobs, workers=workers, executor=executor)
    runs.sort(key=lambda r: r["task"]["task_id"])
    solved = [bool(r["task"]["solved"]) for r in runs]
    calls = [r["task"]["found_at"] if r["task"]["solved"] else np.inf for r in runs]
    median = float(np.median(calls))
    out = {
        "heldout_solved": float(np.mean(solved)),
        # failures count as never recovering (a censored median); None when most failed
        "heldout_median_calls": median if np.isfinite(median) else None,
        "heldout_seconds": float(np.mean([r["task"]["seconds"] for r in runs])),
    }
    if per_task:
        out["per_task_solved"] = solved
        out["per_task_calls"] = [int(c) if np.isfinite(c) else None for c in calls]
    if reference is not None:
        paired = sign_test(solved, reference)
        out.update(
            plain_solved=float(np.mean(reference)),
            wins_vs_plain=paired.wins,
            losses_vs_plain=paired.losses,
            sign_test_p=paired.p,
        )
    return out


def evaluate_round(
    models: dict[str, str],
    heldout: str,
    pipeline_yaml: str,
    cfg: TraceConfig,
    n: int,
    workers: int = 1,
    executor: str = "local",
) -> dict:
    from flows.checkpoint import load_pretrained
    from flows.edit_flow import EditFlow
    from pipelines.learning.on_policy import on_policy_metrics
    from similarity.metric import SimilarityModule
    from simulator.trace_store import load_traces

    runs = load_traces(heldout)
    figures = on_policy_metrics(
        runs,
        load_pretrained(EditFlow, models["edit_flow"]),
        load_pretrained(SimilarityModule, models["similarity"]),
    )
    figures.update(heldout_decomposition(runs, models["decomposition_policy"]))
    plain = [bool(r["task"]["solved"]) for r in sorted(runs, key=lambda r: r["task"]["task_id"])]
    reference = plain if len(plain) == n else None
    figures.update(heldout_recovery(pipeline_yaml, cfg, n, reference, workers, executor))
    return figures


def found_decisions(runs: list[dict]) -> list:
    """The decomposition decisions that led to the runs' found programs, one per level."""
    from flows.decomposition_data import chain_example, run_chains

    examples = [chain_example(c, level) for c in run_chains(runs) for level in range(1, len(c.values))]
    return [e for e in examples if e is not None]


def heldout_decomposition(runs: list[dict], checkpoint: str) -> dict:
    """The decomposition policy on the held-out runs' found programs: how often a right step
    is among its first k, beside library order (``plain_decomposition_top<k>``)."""
    from flows.checkpoint import load_pretrained
    from flows.decomposition_policy import DecompositionPolicy, decomposition_metrics

    examples = found_decisions(runs)
    if not examples:
        return {"decomposition_decisions": 0}
    policy = decomposition_metrics(load_pretrained(DecompositionPolicy, checkpoint), examples=examples)
    plain = decomposition_metrics(None, examples=examples)
    out = {"decomposition_decisions": len(examples)}
    for key in policy:
        if not key.startswith("plain_"):
            out[f"decomposition_{key}"] = policy[key]
            out[f"plain_decomposition_{key}"] = plain[f"plain_{key}"]
    return out


def gate_units(module: str, checkpoint: str, runs: list[dict]) -> np.ndarray:
    """The module's gate figure (``GATE_FIGURES``) unit by unit, its mean the figure: per state
    for the edit flow, per run for M, per decision for the policy (1 when a right step is in
    its first 5). NaN marks a unit the checkpoint cannot score; units pair across checkpoints."""
    from flows.checkpoint import load_pretrained
    from flows.decomposition_policy import DecompositionPolicy, first_right_step
    from flows.edit_flow import EditFlow
    from pipelines.learning.on_policy import edit_flow_state_figures, metric_run_figures
    from similarity.metric import SimilarityModule

    if module == "edit_flow":
        return edit_flow_state_figures(runs, load_pretrained(EditFlow, checkpoint))["spearman"]
    if module == "similarity":
        return metric_run_figures(runs, load_pretrained(SimilarityModule, checkpoint))["metric"]
    policy = load_pretrained(DecompositionPolicy, checkpoint).eval()
    return np.array([float(first_right_step(policy, e) < 5) for e in found_decisions(runs)])


def gate_rule(current: np.ndarray, fitted: np.ndarray) -> dict:
    """Does the fit raise the figure by more than ``GATE_Z`` standard errors of the paired,
    unit by unit difference? A gain inside the gate set's noise keeps the current model."""
    figure = lambda v: float(np.nanmean(v)) if np.isfinite(v).any() else None  # noqa: E731
    out = {"fitted": figure(fitted), "current": figure(current), "margin": None}
    if out["fitted"] is None:
        return {**out, "better": False}
    if out["current"] is None:
        return {**out, "better": True}
    both = np.isfinite(current) & np.isfinite(fitted)
    diff = fitted[both] - current[both]
    if len(diff) < 2:
        return {**out, "better": False}
    out["margin"] = float(GATE_Z * np.std(diff, ddof=1) / np.sqrt(len(diff)))
    return {**out, "better": bool(diff.mean() > out["margin"] and diff.mean() > 0)}


def planner_rule(current: dict, fitted: dict) -> dict:
    """Is the fit no worse through the planner on the gate targets? It must win at least as
    many targets as it loses, paired, and at equal recovery need no more median calls (failures
    count as never recovering). A better on-policy figure does not guarantee this: a policy
    that ranks better on average can still rank one needed split out of reach."""
    wins, losses, _ = sign_test(fitted["per_task_solved"], current["per_task_solved"])
    median = lambda r: np.inf if r["heldout_median_calls"] is None else r["heldout_median_calls"]  # noqa: E731
    return {
        "fitted_solved": fitted["heldout_solved"],
        "current_solved": current["heldout_solved"],
        "wins": wins,
        "losses": losses,
        "fitted_median_calls": fitted["heldout_median_calls"],
        "current_median_calls": current["heldout_median_calls"],
        "no_worse": bool(wins > losses or (wins == losses and median(fitted) <= median(current))),
    }


def gate(
    current: dict[str, str],
    fitted: dict[str, str],
    runs: list[dict] | None,
    known: dict | None = None,
    planner: Callable[[dict[str, str]], dict] | None = None,
) -> dict[str, dict]:
    """Per module, the model the next round builds on: the fit if it passes ``gate_rule`` (or
    when there is no gate) and, given ``planner`` (models -> per-target recovery on the gate
    targets), ``planner_rule`` with the fit swapped into the current models; else the current
    one. Every figure is kept for the record. ``known`` maps (module, checkpoint) to units
    already scored, and gains the new ones."""
    known = {} if known is None else known

    def units(module: str, checkpoint: str) -> np.ndarray:
        if (module, checkpoint) not in known:
            known[(module, checkpoint)] = np.asarray(gate_units(module, checkpoint, runs), dtype=np.float64)
        return known[(module, checkpoint)]

    decisions = {}
    for module, candidate in fitted.items():
        if runs is None:
            decisions[module] = {"kept": candidate}
            continue
        rule = gate_rule(units(module, current[module]), units(module, candidate))
        better = rule.pop("better")
        if better and planner is not None:
            rule["planner"] = planner_rule(planner(current), planner({**current, module: candidate}))
            better = rule["planner"]["no_worse"]
        decisions[module] = {
            "kept": candidate if better else current[module],
            "figure": GATE_FIGURES[module],
            **rule,
        }
    return decisions


def _verdict(decision: dict, fitted: str) -> str:
    """One gate decision in words, with both figures and the margin the gain had to pass."""
    fig = lambda v: "none" if v is None else f"{v:.3f}"  # noqa: E731
    what = "kept" if decision["kept"] == fitted else "dropped, the current model stays"
    margin = decision.get("margin")
    need = "" if margin is None else f", a gain must pass {margin:.3f}"
    text = f"{what} ({decision['figure']} {fig(decision['fitted'])} against {fig(decision['current'])}{need})"
    if "planner" in decision:
        p = decision["planner"]
        text += (
            f"; through the planner on the gate targets: {p['wins']} won, {p['losses']} lost, "
            f"median calls {fig(p['fitted_median_calls'])} against {fig(p['current_median_calls'])}"
        )
    return text


def plot_curve(rounds: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CURVE_KEYS), figsize=(4 * len(CURVE_KEYS), 3.4))
    x = [r["round"] for r in rounds]
    for ax, key in zip(axes, CURVE_KEYS):
        ax.plot(x, [r.get(key) or np.nan for r in rounds], marker="o", label="learned")
        if key in BASELINES:  # plain's held-out recovery, uniform, random and NMSE
            ax.plot(
                x, [r.get(BASELINES[key], np.nan) for r in rounds], ls="--", color="gray", label="stand-in"
            )
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("round")
        ax.set_xticks(x)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def improve(
    out: str | Path,
    rounds: int,
    tasks: int,
    heldout_tasks: int,
    cfg: TraceConfig,
    steps: int,
    workers: int = 1,
    executor: str = "local",
    seed: int = 0,
    edit_flow_data: dict | None = None,
    gate_tasks: int = 32,
    planner_gate: bool = True,
) -> list[dict]:
    """Run (or resume) ``rounds`` rounds of expert iteration under ``out``; every round's metrics.
    ``gate_tasks`` random targets make the gate (0: every fit is kept); with ``planner_gate`` a fit
    that passes on its figure must also be no worse through the planner on those targets."""
    from simulator.trace_store import load_traces

    out = Path(out).resolve()  # every path a round writes is absolute: workers may run elsewhere
    out.mkdir(parents=True, exist_ok=True)
    heldout = out / "heldout_traces"
    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    say(f"held-out traces: {heldout}")
    plain = replace(cfg, pipeline="plain", seconds=HELDOUT_SECONDS)
    generate(heldout, heldout_tasks, HELDOUT_SEED, plain, workers=workers, executor=executor)
    gate_runs = None
    if gate_tasks:
        say(f"gate traces: {out / 'gate_traces'}")
        generate(out / "gate_traces", gate_tasks, GATE_SEED, plain, workers=workers, executor=executor)
        gate_runs = load_traces(out / "gate_traces")
    models = {m: shipped for m, (_, shipped) in MODELS.items()}
    known_units: dict[tuple[str, str], np.ndarray] = {}  # the gate scores each checkpoint once
    known_outcomes: dict[tuple, dict] = {}  # and runs each set of models through the planner once

    def gate_outcome(gate_models: dict[str, str]) -> dict:
        """The pipeline with these models on the gate targets, calls-bound like the held-out set."""
        key = tuple(sorted(gate_models.items()))
        if key not in known_outcomes:
            path = out / "gate_pipelines" / f"{len(known_outcomes)}.yaml"
            path.parent.mkdir(exist_ok=True)
            path.write_text(yaml.safe_dump(pipeline_spec(gate_models), sort_keys=False))
            known_outcomes[key] = heldout_recovery(
                str(path), cfg, gate_tasks, workers=workers, executor=executor, per_task=True, seed=GATE_SEED
            )
        return known_outcomes[key]

    history: list[dict] = []
    trace_folders: list[str] = []
    for k in range(rounds + 1):
        folder = out / f"round-{k}"
        folder.mkdir(exist_ok=True)
        pipeline_yaml = folder / "pipeline.yaml"
        if k > 0:
            traces = folder / "traces"
            prev_yaml = out / f"round-{k - 1}" / "pipeline.yaml"
            say(f"round {k}: traces with {prev_yaml}")
            generate(
                traces,
                tasks,
                seed + k,
                replace(cfg, pipeline=str(prev_yaml)),
                workers=workers,
                executor=executor,
            )
            trace_folders.append(str(traces))
            fitted = {}
            for module in MODELS:
                dest = folder / f"{module}.pt"
                if not dest.exists():
                    say(f"round {k}: fitting {module} on {len(trace_folders)} trace folder(s)")
                    data = edit_flow_data if module == "edit_flow" else None
                    fit_model(module, list(trace_folders), models[module], dest, steps, seed + k, data)
                fitted[module] = str(dest)
            gate_path = folder / "gate.json"
            if not gate_path.exists():
                planner = gate_outcome if gate_runs is not None and planner_gate else None
                decisions = gate(models, fitted, gate_runs, known_units, planner)
                gate_path.write_text(json.dumps(decisions, indent=2))
            decisions = json.loads(gate_path.read_text())
            for module, d in decisions.items():
                if gate_runs is not None:
                    say(f"round {k}: {module} {_verdict(d, fitted[module])}")
                models[module] = d["kept"]
        pipeline_yaml.write_text(yaml.safe_dump(pipeline_spec(models), sort_keys=False))
        metrics_path = folder / "metrics.json"
        if metrics_path.exists():
            figures = json.loads(metrics_path.read_text())
        else:
            say(f"round {k}: evaluating")
            figures = {
                "round": k,
                "models": dict(models),
                **evaluate_round(
                    models, str(heldout), str(pipeline_yaml), cfg, heldout_tasks, workers, executor
                ),
            }
            metrics_path.write_text(json.dumps(figures, indent=2))
        history.append(figures)
        say(f"round {k}: " + ", ".join(f"{key} {figures.get(key) or float('nan'):.3f}" for key in CURVE_KEYS))
        plot_curve(history, out / "learning_curve.png")
    _log_wandb(out, history)
    return history


def _log_wandb(out: Path, history: list[dict]) -> None:
    """The curve, one W&B step per round, offline."""
    import os

    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    run = wandb.init(
        project="active-induction", name="improve", dir=str(out), mode="offline", reinit="finish_previous"
    )
    for figures in history:
        run.log({k: v for k, v in figures.items() if isinstance(v, (int, float))}, step=int(figures["round"]))
    run.finish()


# ----- command line ---------------------------------------------------------------------------
def add_parser(sub) -> None:
    p = sub.add_parser("improve", help="expert iteration: traces, fit, evaluate, round after round")
    p.add_argument("--out", required=True, help="folder for every round (a rerun resumes it)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tasks", type=int, default=64, help="random targets traced per round")
    p.add_argument("--heldout", type=int, default=32, help="fixed held-out random targets")
    p.add_argument("--calls", type=int, default=5_000, help="simulator-call budget per traced run")
    p.add_argument("--seconds", type=float, default=10.0, help="wall-time budget per traced run")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps per model per round")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--gate",
        type=int,
        default=32,
        help="random targets (plain's traces, a seed of their own) on which a new fit must beat the "
        "current model to replace it; 0 keeps every fit",
    )
    p.add_argument(
        "--planner-gate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a fit that gates higher must also solve the gate targets no worse through the planner, "
        "at --calls each (default: on)",
    )
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--executor", default="local", choices=["local", "ray"])
    p.add_argument(
        "--best-child-share",
        type=float,
        help="share of edit-flow labels drawn by their child's true loss instead of a step toward the "
        "found program (default: the edit_flow_traces config's, 1)",
    )
    p.add_argument(
        "--loss-temperature",
        type=float,
        help="loss-drawn labels: 0 takes the best child; t > 0 the k-th best of n with weight "
        "exp(-k / (t n)) (default: the config's, 0.1)",
    )
    p.add_argument(
        "--listwise",
        type=int,
        help="candidates per traced state in the flow's listwise loss, 0 for labels alone "
        "(default: the config's, 256)",
    )
    p.set_defaults(func=main)


def main(args) -> int:
    for name in ("rounds", "tasks", "heldout", "calls", "steps", "gate"):
        if getattr(args, name) < (0 if name in ("rounds", "gate") else 1):
            raise ImproveError(f"--{name} must be positive, got {getattr(args, name)}")
    if args.best_child_share is not None and not 0.0 <= args.best_child_share <= 1.0:
        raise ImproveError(f"--best-child-share must be in [0, 1], got {args.best_child_share}")
    if args.loss_temperature is not None and args.loss_temperature < 0:
        raise ImproveError(f"--loss-temperature must be at least 0, got {args.loss_temperature}")
    if args.listwise is not None and args.listwise < 0:
        raise ImproveError(f"--listwise must be at least 0, got {args.listwise}")
    overrides = {
        "best_child_share": args.best_child_share,
        "loss_temperature": args.loss_temperature,
        "listwise": args.listwise,
    }
    cfg = TraceConfig(calls=args.calls, seconds=args.seconds)
    history = improve(
        args.out,
        args.rounds,
        args.tasks,
        args.heldout,
        cfg,
        args.steps,
        args.workers,
        args.executor,
        args.seed,
        {k: v for k, v in overrides.items() if v is not None},
        args.gate,
        args.planner_gate,
    )
    for figures in history:
        print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in figures.items()}))
    print(f"learning curve: {Path(args.out) / 'learning_curve.png'}")
    return 0
