"""Time the hindsight label ``next_edits`` on traced states, against one alignment per child.

    python benchmarks/speed/next_edits.py runs/traces --states 300

For each traced state (up to ``--states``), the edits of its program that move toward the
program its run found, computed two ways in the same process: ``next_edits`` (one alignment
memo shared by all children) and the definition it replaced (a fresh ``edit_distance`` per
child). Prints both times, their ratio, and whether every answer is the same.
"""

from __future__ import annotations

import argparse
import time

from simulator.edits import apply, edit_distance, legal_edits, next_edits
from simulator.trace_store import load_traces, program_from, task_function_set


def one_alignment_per_child(a, b, fs, max_size):
    d = edit_distance(a, b)
    return [] if d == 0 else [e for e in legal_edits(a, fs, max_size) if edit_distance(apply(a, e), b) < d]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("traces")
    parser.add_argument("--states", type=int, default=300)
    parser.add_argument("--max-size", type=int, default=40)
    args = parser.parse_args()
    pairs = []
    for run in load_traces(args.traces):
        found, fs = program_from(run["task"]["found"]), task_function_set(run["task"])
        pairs += [(program_from(s["program"]), found, fs) for s in run["states"]]
    pairs = pairs[: args.states]
    t0 = time.perf_counter()
    shared = [next_edits(a, b, fs, args.max_size) for a, b, fs in pairs]
    t1 = time.perf_counter()
    fresh = [one_alignment_per_child(a, b, fs, args.max_size) for a, b, fs in pairs]
    t2 = time.perf_counter()
    print(
        f"{len(pairs)} traced states: shared memo {t1 - t0:.2f} s, one alignment per child "
        f"{t2 - t1:.2f} s, ratio {(t2 - t1) / (t1 - t0):.1f}x, same answers: {shared == fresh}"
    )


if __name__ == "__main__":
    main()
