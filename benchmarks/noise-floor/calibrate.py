"""The noise floor's estimate on random targets from the prior, at several noise levels and
caps: how often exact data are taken as noisy, and how often a noisy floor is found within
3x of the truth. Random programs only (never benchmark formulas). Run from the repo root:

    .venv/bin/python benchmarks/noise-floor/calibrate.py --targets 300 > benchmarks/noise-floor/caps.md
"""

from __future__ import annotations

import argparse

import numpy as np

from pipelines.search.noise import neighbour_floor, surrogate_floor
from simulator.enumerate import ProgramPrior, output_ok, random_setting
from simulator.execute import evaluate

LEVELS = (0.0, 0.01, 0.1, 0.3)
CAPS = (0.05, 0.1, 0.2, 0.3, 0.5)


def targets(n: int, seed: int, points: tuple[int, int] = (20, 60)):
    """(X, y) of ``n`` random programs on random inputs of ``points`` points."""
    rng = np.random.default_rng(seed)
    prior = ProgramPrior()
    out = []
    while len(out) < n:
        fs, X = random_setting(rng, points=points)
        program = prior.sample(fs, rng)
        with np.errstate(all="ignore"):
            y = evaluate(program, X)
        if np.all(np.isfinite(y)) and output_ok(y) and program.complexity >= 3:
            out.append((X, y))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--targets", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--points", type=int, nargs=2, default=(20, 60), help="the fewest and most points")
    args = p.parse_args()
    rows = []  # (level, truth, raw surrogate, neighbours)
    for i, (X, y) in enumerate(targets(args.targets, args.seed, tuple(args.points))):
        for level in LEVELS:
            rng = np.random.default_rng([args.seed, i, int(level * 1000)])
            noisy = y + level * np.sqrt(np.mean(y**2)) * rng.standard_normal(len(y))
            truth = level**2 * np.mean(y**2) / np.var(noisy)
            rows.append((level, truth, surrogate_floor(X, noisy, 0, cap=1.0), neighbour_floor(X, noisy)))
    rows = np.array(rows)
    low, high = args.points
    print(
        f"# The noise floor's cap on {args.targets} random targets, {low} to {high} points "
        f"(seed {args.seed})\n"
    )
    print("Cells: at noise 0, the share taken as noisy (floor > 0); at noise > 0, the share whose")
    print("floor is within 3x of the truth, and in brackets the share taken as exact (floor 0).\n")
    print("| cap | " + " | ".join(f"noise {v:g}" for v in LEVELS) + " |")
    print("|---|" + "---|" * len(LEVELS))
    for cap in CAPS:
        cells = []
        for level in LEVELS:
            r = rows[rows[:, 0] == level]
            gp = np.where((r[:, 2] >= 1e-7) & (r[:, 2] <= cap), r[:, 2], 0.0)
            floor = np.where((gp > 0) & (r[:, 3] > 0), np.minimum(np.sqrt(gp * r[:, 3]), cap), 0.0)
            if level == 0:
                cells.append(f"{np.mean(floor > 0):.1%} noisy")
            else:
                near = (floor > r[:, 1] / 3) & (floor < 3 * r[:, 1])
                cells.append(f"{np.mean(near):.1%} ({np.mean(floor == 0):.1%})")
        print(f"| {cap:g} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
