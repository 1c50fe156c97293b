"""On-policy metrics: how well the learned models judge the states the planner really expands.

Off-policy figures (random programs a few random edits from a target) said little about the
search: on the planner's own states the edit flow's scores correlated +0.02 with the child's
true loss. These metrics are computed on traces (``induce traces``) of held-out random
targets, each beside the plain stand-in it must beat:

- ``edit_flow_spearman``: per state, Spearman between the flow's score of each legal edit and
  minus its true child loss, averaged (uniform proposals: 0);
- ``edit_flow_top24_best``: how often the flow's 24 best-scored edits hold the best child
  (random 24: ``random_top24_best``);
- ``metric_spearman``: Spearman between M(ŷ_state, ŷ_found) and the state's edit distance to
  the program found, within each run, averaged (NMSE in its place: ``nmse_spearman``). The
  goal is the found program's output, as in M's trace groups: the distance is counted to that
  program, which is y itself when the run solved its task and is hindsight's goal when not.
  ``metric_spearman_solved`` and ``nmse_spearman_solved`` keep to solved runs, where the
  goal is the task's y that the planner gives M.
"""

from __future__ import annotations

import numpy as np

from simulator.execute import evaluate
from simulator.scoring import nmse, spearman
from simulator.trace_store import program_from, state_edits

TOP_K = 24


def random_topk_hit(n: int, good: int, k: int) -> float:
    """Chance that k edits drawn at random from n hold at least one of ``good``: 1 − C(n−g, k)/C(n, k)."""
    miss = 1.0
    for i in range(min(k, n)):
        miss *= max(n - good - i, 0) / (n - i)
    return 1.0 - miss


def edit_flow_state_figures(runs: list[dict], model, top_k: int = TOP_K) -> dict[str, np.ndarray]:
    """Per recorded state, the flow's ranking of its legal edits against their true child loss:
    ``spearman``, ``top_hit`` (its top k hold the best child) and ``random_hit`` (chance for k
    at random). NaN where a state has too few finite children or a token the model lacks, so
    two models' arrays pair state by state."""
    rows: list[tuple[float, float, float]] = []
    for run in runs:
        task = run["task"]
        X, y = task["X"].numpy(), task["y"].numpy()
        for row in run["states"]:
            loss = row["child_loss"].numpy()
            finite = np.isfinite(loss)
            if finite.sum() < 3 or np.ptp(loss[finite]) == 0:
                rows.append((np.nan, np.nan, np.nan))
                continue
            edits = state_edits(row)
            try:
                scores = np.asarray(model.score_edits(program_from(row["program"]), X, y, edits), np.float64)
            except ValueError:  # a token outside the model's vocabulary
                rows.append((np.nan, np.nan, np.nan))
                continue
            best = np.flatnonzero(loss == loss[finite].min())
            top = np.argsort(-scores, kind="stable")[:top_k]
            rows.append(
                (
                    spearman(scores[finite], -loss[finite], undefined=0.0),
                    float(np.isin(best, top).any()),
                    random_topk_hit(len(loss), len(best), top_k),
                )
            )
    table = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return {"spearman": table[:, 0], "top_hit": table[:, 1], "random_hit": table[:, 2]}


def _mean(values: np.ndarray) -> float:
    """The mean of the finite entries; NaN when there are none."""
    values = np.asarray(values, dtype=np.float64)
    return float(np.mean(values[np.isfinite(values)])) if np.isfinite(values).any() else float("nan")


def edit_flow_metrics(runs: list[dict], model, top_k: int = TOP_K) -> dict[str, float]:
    """The edit flow's ranking of each recorded state's legal edits against their true child loss."""
    per_state = edit_flow_state_figures(runs, model, top_k)
    return {
        "edit_flow_spearman": _mean(per_state["spearman"]),
        "uniform_spearman": 0.0,
        "edit_flow_top24_best": _mean(per_state["top_hit"]),
        "random_top24_best": _mean(per_state["random_hit"]),
        "states": int(np.isfinite(per_state["spearman"]).sum()),
    }


def metric_run_figures(runs: list[dict], model) -> dict[str, np.ndarray]:
    """Per run, Spearman between each state's distance to the goal and its edits left: by M
    (``metric``, when a model is given) and by NMSE (``nmse``), with ``solved`` for the run.
    NaN for a run with under 3 states or a goal that does not evaluate, so arrays pair by run."""
    rho: dict[str, list[float]] = {"metric": [], "nmse": [], "solved": []}
    for run in runs:
        task = run["task"]
        X = task["X"].numpy()
        states = run["states"]
        rho["solved"].append(float(task["solved"]))
        goal = None
        if len(states) >= 3:
            with np.errstate(all="ignore"):
                Y = np.stack([evaluate(program_from(s["program"]), X) for s in states])
                goal = evaluate(program_from(task["found"]), X)
        if goal is None or not np.isfinite(goal).all():
            rho["metric"].append(np.nan)
            rho["nmse"].append(np.nan)
            continue
        dist = np.array([s["distance"] for s in states], dtype=np.float64)
        scores = {"nmse": nmse(Y, goal), "metric": None}
        if model is not None:
            scores["metric"] = np.asarray(model.distance(X, goal, Y), dtype=np.float64)
        for name, s in scores.items():
            if s is None:
                rho[name].append(np.nan)
                continue
            ok = np.isfinite(s)
            rho[name].append(spearman(s[ok], dist[ok]))
    return {name: np.array(v, dtype=np.float64) for name, v in rho.items()}


def metric_metrics(runs: list[dict], model) -> dict[str, float]:
    """The similarity metric M as a distance to the goal: does it fall as the edits left do?"""
    per_run = metric_run_figures(runs, model)
    solved = per_run["solved"] == 1.0
    return {
        "metric_spearman": _mean(per_run["metric"]),
        "nmse_spearman": _mean(per_run["nmse"]),
        "metric_spearman_solved": _mean(per_run["metric"][solved]),
        "nmse_spearman_solved": _mean(per_run["nmse"][solved]),
        "metric_runs": int(np.isfinite(per_run["nmse"]).sum()),
    }


def on_policy_metrics(runs: list[dict], edit_flow=None, similarity=None) -> dict[str, float]:
    """Both sets of figures, plus how the traced runs went (the planner's own success)."""
    tasks = [r["task"] for r in runs]
    out = {
        "runs": len(runs),
        "solved": float(np.mean([t["solved"] for t in tasks])) if tasks else float("nan"),
        "states": sum(len(r["states"]) for r in runs),
    }
    if edit_flow is not None:
        out.update(edit_flow_metrics(runs, edit_flow))
    out.update(metric_metrics(runs, similarity))
    return out
