"""Groups from the planner's own traces: M learns the distance to the goal on real states.

The planner orders its frontier by M(ŷ, y_state), so M should fall as the edits that remain
fall, on the states the planner actually expands, not only on random edits of random
programs. A group is one traced run: the anchor is the found program's output (hindsight:
it is a valid goal for every state of the run), the members are states of that run, each
labelled with its edit distance to the found program. A share of random groups
(``random_share``) keeps the off-policy skill the shipped model learned.
"""

from __future__ import annotations

import numpy as np

from flows.datasets import StreamDataModule
from similarity.pair_data import PairDataModule, PairGroup, collate_groups
from simulator.execute import evaluate
from simulator.trace_store import program_from, split_runs


def traced_groups(folders: str | list[str], validation: bool, val_fraction: float) -> list[dict]:
    """Per run: X, the anchor output, every state's output and distance (runs split by index)."""
    out = []
    for run in split_runs(folders, validation, val_fraction):
        states, X = run["states"], run["task"]["X"].numpy()
        if len(states) < 2:
            continue
        with np.errstate(all="ignore"):
            anchor = evaluate(program_from(run["task"]["found"]), X)
            Y = np.stack([evaluate(program_from(s["program"]), X) for s in states])
        dist = np.array([s["distance"] for s in states], dtype=np.int64)
        ok = np.isfinite(Y).all(axis=1)
        if np.isfinite(anchor).all() and ok.sum() >= 2 and np.ptp(dist[ok]) > 0:
            progs = [" ".join(s["program"]["tokens"]) for s, good in zip(states, ok) if good]
            out.append({"X": X, "anchor": anchor, "Y": Y[ok], "dist": dist[ok], "programs": progs})
    return out


class TracePairDataModule(StreamDataModule):
    """Similarity batches from traced runs, mixed with random groups of the same shape."""

    def __init__(
        self,
        traces: str | list[str],
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        val_size: int = 128,
        val_fraction: float = 0.1,
        members: int = 8,
        random_share: float = 0.25,
    ):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, val_size=val_size)
        self.traces = traces
        self.members = members
        self.random_share = random_share
        self.train_runs = traced_groups(traces, False, val_fraction)
        self.val_runs = traced_groups(traces, True, val_fraction) or self.train_runs
        if not self.train_runs:
            raise ValueError(f"{traces}: no traced run has two states at different distances")
        # random groups with the same number of rows: 1 anchor + members
        n_points = len(self.train_runs[0]["anchor"])
        self.random = (
            PairDataModule(seed=seed, n_points=n_points, max_k=members - 2, n_negatives=2)
            if random_share > 0
            else None
        )

    def _group(self, run: dict, rng: np.random.Generator) -> PairGroup:
        pick = rng.choice(len(run["Y"]), size=self.members, replace=len(run["Y"]) < self.members)
        dist = np.concatenate([[0], run["dist"][pick]])
        return PairGroup(
            run["X"],
            np.concatenate([run["anchor"][None], run["Y"][pick]]),
            dist.copy(),  # k: the edits remaining (no negatives here)
            dist,
            ["found"] + [run["programs"][int(j)] for j in pick],
            "traced",
        )

    def make_example(self, rng: np.random.Generator) -> PairGroup | None:
        if self.random is not None and rng.random() < self.random_share:
            group = self.random.make_example(rng)
            return group if group is not None and len(group.Y) == self.members + 1 else None
        return self._group(self.train_runs[int(rng.integers(len(self.train_runs)))], rng)

    def validation_examples(self) -> list[PairGroup]:
        """Held-out traced runs only: the on-policy figure."""
        if self._val is None:
            rng = np.random.default_rng(self.seed + 1)
            self._val = [
                self._group(self.val_runs[i % len(self.val_runs)], rng) for i in range(self.val_size)
            ]
        return self._val

    def collate(self, examples: list[PairGroup]) -> dict:
        return collate_groups(examples)
