"""``induce bench-simulator``: candidate evaluations per second, incremental against full.

Parents of 10 to 30 nodes, 20 data points, every legal edit of each parent. The full
path evaluates each already-built child from scratch (building it is not timed, which
favours the full path); the incremental path evaluates the same children from the
parent's cache. Both are checked to agree before anything is timed.
"""

from __future__ import annotations

import json
import time

import numpy as np

from simulator.edits import apply, legal_edits
from simulator.enumerate import ProgramPrior, output_ok, sample_inputs
from simulator.execute import evaluate_many, node_values
from simulator.incremental import IncrementalEvaluator
from simulator.language import FunctionSet


def bench_simulator(parents: int = 30, points: int = 20, seed: int = 0, repeats: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    fs = FunctionSet.from_names("CKoza", 2)
    prior = ProgramPrior(min_size=10, max_size=30, max_depth=10)
    X = sample_inputs(2, points, rng, low=0.1, high=3.0)
    cases = []
    while len(cases) < parents:
        p = prior.sample(fs, rng)
        if 10 <= len(p) <= 30 and output_ok(node_values(p, X)[0]):
            edits = legal_edits(p, fs)
            cases.append((p, edits, [apply(p, e) for e in edits]))
    n_cand = sum(len(e) for _, e, _ in cases)
    for p, edits, children in cases:  # the two paths must agree before they are timed
        Yi, vi = IncrementalEvaluator(p, X).evaluate(edits)
        Yf, vf = evaluate_many(children, X)
        if not (np.array_equal(vi, vf) and np.allclose(Yi[vi], Yf[vf], rtol=1e-9, atol=1e-12)):
            raise AssertionError(f"incremental and full evaluation disagree on {p}")

    def timed(fn) -> float:
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return best

    t_inc = timed(lambda: [IncrementalEvaluator(p, X).evaluate(e) for p, e, _ in cases])
    t_full = timed(lambda: [evaluate_many(c, X) for _, _, c in cases])
    inc, full = n_cand / t_inc, n_cand / t_full
    return {
        "parents": parents,
        "candidates": n_cand,
        "points": points,
        "parent_sizes": [min(len(p) for p, _, _ in cases), max(len(p) for p, _, _ in cases)],
        "function_set": "CKoza, 2 variables",
        "incremental_evals_per_second": round(inc),
        "full_evals_per_second": round(full),
        "speedup": round(inc / full, 2),
        "candidate_evaluations_per_second": round(inc),
    }


def main(args) -> int:
    res = bench_simulator(parents=args.parents, seed=args.seed)
    last = res.pop("candidate_evaluations_per_second")
    print(json.dumps(res, indent=2))
    print(f"candidate_evaluations_per_second: {last}")
    return 0
