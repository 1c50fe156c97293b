"""M's on-policy figure for several similarity checkpoints on traced runs, paired per run.

    python benchmarks/learning/similarity-pair-head/score.py --out scores.json \
        --traces runs/eval_traces runs/improve/heldout_traces -- pipelines/checkpoints/similarity.pt A.pt B.pt

Per trace folder: NMSE's figure, and for each checkpoint its figure (``metric_spearman``: the
mean over runs of Spearman(M(ŷ_state, ŷ_found), edits left)) with its paired difference from
the first checkpoint and the standard error of that difference.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from pipelines.learning.on_policy import metric_run_figures
from similarity.metric import SimilarityModule
from simulator.trace_store import load_traces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("checkpoints", nargs="+")
    args = parser.parse_args()
    record: dict = {}
    for folder in args.traces:
        runs = load_traces(folder)
        rows, first = {}, None
        for path in args.checkpoints:
            fig = metric_run_figures(runs, SimilarityModule.from_pretrained(path))
            first = fig["metric"] if first is None else first
            diff = fig["metric"] - first
            ok = np.isfinite(diff)
            rows[path] = {
                "metric_spearman": float(np.nanmean(fig["metric"])),
                "paired_difference": float(diff[ok].mean()),
                "standard_error": float(diff[ok].std() / np.sqrt(ok.sum())),
            }
        record[folder] = {
            "runs": int(np.isfinite(fig["nmse"]).sum()),
            "nmse_spearman": float(np.nanmean(fig["nmse"])),
            "checkpoints": rows,
        }
        print(f"{folder}: {record[folder]['runs']} runs, NMSE {record[folder]['nmse_spearman']:.3f}")
        for path, row in rows.items():
            print(
                f"  {path}: {row['metric_spearman']:.3f} "
                f"({row['paired_difference']:+.3f} ± {row['standard_error']:.3f} against the first)"
            )
    args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
