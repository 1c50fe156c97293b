"""Recovery and calls on `induce improve`'s held-out random targets, paired against `plain`.

The 64 targets are the loop's held-out set (Koza/CKoza, 1 to 3 variables, seed 1,000,003,
never a benchmark formula). Runs are bound by calls alone, so the figures do not depend on
the machine's load. Usage (from the repository root):

    python benchmarks/learning/listwise/heldout.py --calls 20000 --out heldout.json PIPELINE...
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from pipelines.learning.improve import heldout_recovery  # noqa: E402
from pipelines.learning.traces import TraceConfig  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("pipelines", nargs="+", help="presets or pipeline YAMLs; plain is the reference")
    p.add_argument("--tasks", type=int, default=64)
    p.add_argument("--calls", type=int, default=20_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    cfg = TraceConfig(calls=args.calls)
    reference = heldout_recovery("plain", cfg, args.tasks, workers=args.workers, per_task=True)
    solved, base_calls = reference["per_task_solved"], reference["per_task_calls"]
    rows = {"plain": reference}
    for name in args.pipelines:
        rows[name] = heldout_recovery(name, cfg, args.tasks, solved, args.workers, per_task=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    print(
        "| pipeline | solved | median calls to recovery | plain's calls / its, paired median "
        "(targets both solve) | wins / losses vs plain | sign test p |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        median = r["heldout_median_calls"]
        both = [b / c for b, c in zip(base_calls, r["per_task_calls"]) if b and c]
        ratio = f"{np.median(both):.2f}x ({len(both)})" if both and name != "plain" else ""
        wins = f"{r['wins_vs_plain']} / {r['losses_vs_plain']}" if "wins_vs_plain" in r else ""
        p_value = f"{r['sign_test_p']:.3g}" if "sign_test_p" in r else ""
        median_text = "failed in most" if median is None else f"{int(median):,}"
        print(f"| {name} | {r['heldout_solved']:.1%} | {median_text} | {ratio} | {wins} | {p_value} |")


if __name__ == "__main__":
    main()
