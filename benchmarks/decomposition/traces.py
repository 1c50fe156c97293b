"""The decomposition policy on the search's own decisions: how often a right step is among
the first k tried, on the decompositions that held-out traced runs found, and on random
chains, for library order and each policy checkpoint given. Prints a markdown table.

    python benchmarks/decomposition/traces.py --heldout runs/traces-heldout \
        pipelines/checkpoints/decomposition_policy.pt runs/decomposition_policy/<time>/model.pt
"""

from __future__ import annotations

import argparse

import numpy as np

from flows.checkpoint import load_pretrained
from flows.decomposition_data import chain_example, trace_chains
from flows.decomposition_policy import TOP_K, DecompositionPolicy, decomposition_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("policies", nargs="*", help="decomposition-policy checkpoints")
    parser.add_argument("--heldout", required=True, help="trace folder(s), comma-separated")
    parser.add_argument("--random", type=int, default=500, help="random chain decisions (seed 0)")
    args = parser.parse_args()
    chains = trace_chains(args.heldout.split(","))
    rng = np.random.default_rng(0)
    examples = [chain_example(c, level) for c in chains for level in range(1, len(c.values))]
    examples = [e for e in examples if e is not None]
    rng.shuffle(examples)
    print(f"{len(chains)} found programs that peel, {len(examples)} decisions\n")
    cols = [f"top{k}" for k in TOP_K]
    print("| order | data | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    rows = [("library order", None)] + [(p, load_pretrained(DecompositionPolicy, p)) for p in args.policies]
    for name, policy in rows:
        for data, kw in (("held-out traces", {"examples": examples}), ("random chains", {"n": args.random})):
            m = decomposition_metrics(policy, seed=0, **kw)
            key = "plain_" if policy is None else ""
            print(f"| {name} | {data} | " + " | ".join(f"{m[key + c]:.3f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
