"""Fit one decomposition-policy variant on a round's traces and check it where fits differed.

Prints the gate figure (top 5 on the found programs' decisions) on the held-out traces, and
whether held-out target 24 is still solved at 5,000 calls. Usage (from the repository root):

    python benchmarks/learning/improve-margin/policy_fits.py --traces runs/improve_margin/round-1/traces \
        --heldout runs/improve_margin/heldout_traces --out runs/policy_fits/s100 --steps 100
    python benchmarks/learning/improve-margin/policy_fits.py ... --steps 600 --data '{"trace_share": 0.0}'

Koza-2 is then `induce bench --only Koza-2` with the printed pipeline YAML.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import yaml  # noqa: E402

from pipelines.learning.improve import HELDOUT_SECONDS, HELDOUT_SEED, MODELS, fit_model, gate_units, pipeline_spec  # noqa: E402
from pipelines.learning.traces import TraceConfig, run_task  # noqa: E402
from simulator.trace_store import load_traces  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--traces", required=True, help="the round's trace folder")
    p.add_argument("--heldout", required=True, help="the loop's held-out trace folder")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data", default="{}", help="data overrides, JSON (e.g. trace_share)")
    p.add_argument("--model", default="{}", help="model overrides, JSON (e.g. lr)")
    p.add_argument("--task", type=int, default=24, help="held-out target to run")
    args = p.parse_args()
    dest = Path(args.out).resolve() / "decomposition_policy.pt"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        start = MODELS["decomposition_policy"][1]
        fit_model(
            "decomposition_policy",
            [args.traces],
            start,
            dest,
            args.steps,
            args.seed,
            json.loads(args.data),
            json.loads(args.model),
        )
    top5 = np.nanmean(gate_units("decomposition_policy", str(dest), load_traces(args.heldout)))
    pipeline = dest.parent / "pipeline.yaml"
    models = {module: shipped for module, (_, shipped) in MODELS.items()}
    pipeline.write_text(
        yaml.safe_dump(pipeline_spec({**models, "decomposition_policy": str(dest)}), sort_keys=False)
    )
    cfg = replace(TraceConfig(calls=5000), pipeline=str(pipeline), states_per_run=1, seconds=HELDOUT_SECONDS)
    task = run_task(args.task, HELDOUT_SEED, cfg)["task"]
    print(f"held-out top 5 {top5:.3f}")
    print(
        f"held-out target {args.task}: "
        + (f"solved at {task['found_at']} calls" if task["solved"] else "not solved")
    )
    print(f"pipeline: {pipeline}")


if __name__ == "__main__":
    main()
