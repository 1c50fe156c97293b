"""How far the "edits left" label itself agrees with an equally valid goal.

    python benchmarks/learning/similarity-pair-head/label_consistency.py --out labels.json \
        runs/eval_traces runs/improve/heldout_traces runs/improve/gate_traces

M sees (x, y, ŷ) and nothing else. Its on-policy figure ranks each state by the edits left to
the program the planner found. When a run solved its task with a program other than the one
drawn, both programs compute y on x, so both are right answers to M's question; this script
counts the edits left to each and reports, within each such run, Spearman between the two:
what a judge that knew the edits to the drawn program exactly would score against the
found one. It also counts the states that already compute the goal (NMSE < 1e-10) yet are
labelled one edit or more from it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from simulator.edits import edit_distance
from simulator.execute import evaluate
from simulator.scoring import nmse, spearman
from simulator.trace_store import load_traces, program_from

SAME_OUTPUT = 1e-10


def folder_figures(folder: str) -> dict:
    """The label's self-agreement and NMSE's figures on one trace folder."""
    states = same_output = 0
    rho = {"drawn_vs_found": [], "nmse_vs_found": [], "nmse_vs_drawn": []}
    for run in load_traces(folder):
        task, rows = run["task"], run["states"]
        if len(rows) < 3:
            continue
        X = task["X"].numpy()
        programs = [program_from(s["program"]) for s in rows]
        with np.errstate(all="ignore"):
            goal = evaluate(program_from(task["found"]), X)
            error = nmse(np.stack([evaluate(p, X) for p in programs]), goal)
        if not np.isfinite(goal).all():
            continue
        to_found = np.array([s["distance"] for s in rows], dtype=np.float64)
        states += len(rows)
        same_output += int(((error < SAME_OUTPUT) & (to_found > 0)).sum())
        drawn, found = program_from(task["target"]), program_from(task["found"])
        if not task["solved"] or drawn.tokens == found.tokens:
            continue
        to_drawn = np.array([edit_distance(p, drawn) for p in programs], dtype=np.float64)
        ok = np.isfinite(error)
        rho["drawn_vs_found"].append(spearman(to_drawn, to_found, undefined=np.nan))
        rho["nmse_vs_found"].append(spearman(error[ok], to_found[ok], undefined=np.nan))
        rho["nmse_vs_drawn"].append(spearman(error[ok], to_drawn[ok], undefined=np.nan))
    out: dict = {"states": states, "states_computing_the_goal_with_edits_left": same_output}
    for name, values in rho.items():
        v = np.array(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        out[name] = float(v.mean()) if len(v) else float("nan")
        out[f"{name}_se"] = float(v.std() / np.sqrt(len(v))) if len(v) else float("nan")
    out["runs"] = int(np.isfinite(rho["drawn_vs_found"]).sum())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("traces", nargs="+")
    args = parser.parse_args()
    record = {folder: folder_figures(folder) for folder in args.traces}
    for folder, f in record.items():
        print(
            f"{folder}: {f['states_computing_the_goal_with_edits_left']} of {f['states']} states "
            f"compute the goal yet have edits left; on {f['runs']} runs solved by another program, "
            f"Spearman(edits to drawn, edits to found) {f['drawn_vs_found']:.3f} ± {f['drawn_vs_found_se']:.3f}, "
            f"NMSE against found {f['nmse_vs_found']:.3f}, against drawn {f['nmse_vs_drawn']:.3f}"
        )
    args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
