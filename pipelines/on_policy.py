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


def edit_flow_metrics(runs: list[dict], model, top_k: int = TOP_K) -> dict[str, float]:
    """The edit flow's ranking of each recorded state's legal edits against their true child loss."""
    rho, hit, base_hit, n = [], [], [], 0
    for run in runs:
        task = run["task"]
        X, y = task["X"].numpy(), task["y"].numpy()
        for row in run["states"]:
            loss = row["child_loss"].numpy()
            finite = np.isfinite(loss)
            if finite.sum() < 3 or np.ptp(loss[finite]) == 0:
                continue
            edits = state_edits(row)
            try:
                scores = np.asarray(model.score_edits(program_from(row["program"]), X, y, edits), np.float64)
            except ValueError:  # a token outside the model's vocabulary
                continue
            n += 1
            rho.append(spearman(scores[finite], -loss[finite], undefined=0.0))
            best = np.flatnonzero(loss == loss[finite].min())
            top = np.argsort(-scores, kind="stable")[:top_k]
            hit.append(bool(np.isin(best, top).any()))
            base_hit.append(random_topk_hit(len(loss), len(best), top_k))
    return {
        "edit_flow_spearman": float(np.mean(rho)) if rho else float("nan"),
        "uniform_spearman": 0.0,
        "edit_flow_top24_best": float(np.mean(hit)) if hit else float("nan"),
        "random_top24_best": float(np.mean(base_hit)) if base_hit else float("nan"),
        "states": n,
    }


def metric_metrics(runs: list[dict], model) -> dict[str, float]:
    """The similarity metric M as a distance to the goal: does it fall as the edits left do?"""
    rho: dict[str, list[float]] = {"metric": [], "nmse": [], "metric_solved": [], "nmse_solved": []}
    for run in runs:
        task = run["task"]
        X = task["X"].numpy()
        states = run["states"]
        if len(states) < 3:
            continue
        with np.errstate(all="ignore"):
            Y = np.stack([evaluate(program_from(s["program"]), X) for s in states])
            goal = evaluate(program_from(task["found"]), X)
        if not np.isfinite(goal).all():
            continue
        dist = np.array([s["distance"] for s in states], dtype=np.float64)
        scores = {"nmse": nmse(Y, goal)}
        if model is not None:
            scores["metric"] = np.asarray(model.distance(X, goal, Y), dtype=np.float64)
        for name, s in scores.items():
            ok = np.isfinite(s)
            r = spearman(s[ok], dist[ok])
            rho[name].append(r)
            if task["solved"]:
                rho[f"{name}_solved"].append(r)
    mean = lambda v: float(np.nanmean(v)) if v and np.isfinite(v).any() else float("nan")  # noqa: E731
    return {
        "metric_spearman": mean(rho["metric"]),
        "nmse_spearman": mean(rho["nmse"]),
        "metric_spearman_solved": mean(rho["metric_solved"]),
        "nmse_spearman_solved": mean(rho["nmse_solved"]),
        "metric_runs": len(rho["nmse"]),
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
