"""Edit examples from the planner's own traces: on-policy data for the edit flow.

A traced state is a program the planner really expanded, with the data it was solving. Its
label is an edit that moves toward the program the search found (hindsight: the found
program is a valid target for its ancestors, drawn target or not), or, for a share
``best_child_share`` of examples, an edit drawn by its child's true loss: the best child
(``loss_temperature`` 0), or the k-th best of n with weight exp(−k / (temperature·n)), so that
the flow's density falls with the child's loss over the whole ranking, the distillation of a
one-step lookahead that the simulator pays for in calls. States come from
``induce traces`` folders; a share of random-program examples (``random_share``) keeps the
off-policy skill the shipped model learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from flows.datasets import StreamDataModule
from flows.edit_data import EditDataModule, EditExample, collate_edit_examples
from flows.encoders import encode_state
from simulator.edits import Edit
from simulator.language import FunctionSet
from simulator.program import Program
from simulator.trace_store import program_from, split_runs, state_edits, task_function_set


@dataclass
class TracedState:
    """What one labelled state needs: the data, the program, and the edits toward the found one."""

    X: np.ndarray
    y: np.ndarray
    function_set: FunctionSet
    program: Program
    found: Program
    toward: tuple[Edit, ...]
    distance: int
    by_loss: tuple[Edit, ...] = ()  # the edits with a finite child loss, best child first
    best: int = 0  # how many of them tie for the lowest loss


def traced_state(
    row: dict, X: np.ndarray, y: np.ndarray, fs: FunctionSet, found: Program
) -> TracedState | None:
    """One trace row as a labelled state: its steps toward the found program, and its edits with
    a finite child loss, best first (None when it has neither)."""
    toward, loss = row["toward"].numpy(), row["child_loss"].numpy()
    finite = np.flatnonzero(np.isfinite(loss))
    if not (toward.any() or len(finite)):
        return None
    edits = state_edits(row)
    ranked = finite[np.argsort(loss[finite], kind="stable")]
    best = int(np.sum(loss[ranked] == loss[ranked[0]])) if len(ranked) else 0
    return TracedState(
        X,
        y,
        fs,
        program_from(row["program"]),
        found,
        tuple(e for e, t in zip(edits, toward) if t),
        int(row["distance"]),
        tuple(edits[i] for i in ranked),
        best,
    )


def traced_states(folders: str | list[str], validation: bool, val_fraction: float) -> list[TracedState]:
    """Labelled states of the runs in ``folders``; runs are split by index, never states, so a
    validation run's states are all unseen."""
    out: list[TracedState] = []
    for run in split_runs(folders, validation, val_fraction):
        task = run["task"]
        X, y, fs = task["X"].numpy(), task["y"].numpy(), task_function_set(task)
        found = program_from(task["found"])
        out += [st for row in run["states"] if (st := traced_state(row, X, y, fs, found)) is not None]
    return out


def rank_weights(st: TracedState, temperature: float) -> np.ndarray:
    """exp(−k / (temperature·n)) for the k-th best of n children, ties for the best all at k = 0."""
    n = len(st.by_loss)
    rank = np.maximum(np.arange(n), st.best - 1) - (st.best - 1)
    return np.exp(-rank / (temperature * n))


def loss_label(st: TracedState, temperature: float, rng: np.random.Generator) -> Edit:
    """An edit drawn by its child's loss: one of the best (``temperature`` 0), else by rank weight."""
    if temperature <= 0:
        return st.by_loss[int(rng.integers(st.best))]
    w = rank_weights(st, temperature)
    return st.by_loss[int(rng.choice(len(w), p=w / w.sum()))]


def listwise_targets(
    st: TracedState, size: int, temperature: float, rng: np.random.Generator
) -> tuple[tuple[Edit, ...], np.ndarray]:
    """Up to ``size`` candidates (the best eighth always, the rest drawn at random) and their
    rank weights, normalised over them: the listwise loss's target."""
    n = len(st.by_loss)
    keep = np.arange(n)
    if n > size:
        top = min(max(st.best, size // 8), size)
        rest = rng.choice(np.arange(top, n), size=size - top, replace=False)
        keep = np.concatenate([np.arange(top), np.sort(rest)])
    w = rank_weights(st, temperature)[keep]
    return tuple(st.by_loss[i] for i in keep), (w / w.sum()).astype(np.float32)


class TraceEditDataModule(StreamDataModule):
    """Edit-flow batches from traced states, mixed with random-program examples."""

    def __init__(
        self,
        traces: str | list[str],
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        val_size: int = 256,
        val_fraction: float = 0.1,
        random_share: float = 0.25,
        best_child_share: float = 0.0,
        loss_temperature: float = 0.0,
        listwise: int = 0,
    ):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, val_size=val_size)
        self.traces = traces
        self.val_fraction = val_fraction
        self.random_share = random_share
        self.best_child_share = best_child_share
        self.loss_temperature = loss_temperature
        self.listwise = listwise
        if listwise and loss_temperature <= 0:
            raise ValueError("listwise targets need loss_temperature > 0 (the share of each rank)")
        self.train_states = traced_states(traces, False, val_fraction)
        self.val_states = traced_states(traces, True, val_fraction)
        if not self.train_states:
            raise ValueError(
                f"{traces}: no traced state has a label (a step toward the found program, or a child)"
            )
        if best_child_share == 0:  # states without a step toward the found program have no label
            self.train_states = [s for s in self.train_states if s.toward] or self.train_states
            self.val_states = [s for s in self.val_states if s.toward]
        self.random = EditDataModule(batch_size=batch_size, seed=seed) if random_share > 0 else None

    def _example(self, st: TracedState, rng: np.random.Generator) -> EditExample | None:
        """Label: an edit toward the found program, or (``best_child_share`` of the time) an edit
        drawn by its child's true loss, the planner's one-step view of the same goal."""
        candidates, weights = None, None
        if st.by_loss and (not st.toward or rng.random() < self.best_child_share):
            label, correct = loss_label(st, self.loss_temperature, rng), st.by_loss[: st.best]
            if self.listwise:
                candidates, weights = listwise_targets(st, self.listwise, self.loss_temperature, rng)
        else:
            label, correct = st.toward[int(rng.integers(len(st.toward)))], st.toward
        with np.errstate(all="ignore"):
            state = encode_state(st.program, st.X, st.y)
        return EditExample(
            st.X, st.y, st.program, st.found, st.function_set, label, state, st.distance, correct,
            candidates, weights,
        )  # fmt: skip

    def make_example(self, rng: np.random.Generator) -> EditExample | None:
        if self.random is not None and rng.random() < self.random_share:
            return self.random.make_example(rng, with_correct=True)
        return self._example(self.train_states[int(rng.integers(len(self.train_states)))], rng)

    def validation_examples(self) -> list[EditExample]:
        """Held-out traced states only: the on-policy figure."""
        if self._val is None:
            rng = np.random.default_rng(self.seed + 1)
            pool = self.val_states or self.train_states
            picks = rng.permutation(len(pool))[: self.val_size]
            self._val = [ex for i in picks if (ex := self._example(pool[int(i)], rng)) is not None]
        return self._val

    def collate(self, examples: list[EditExample]) -> dict[str, Any]:
        return collate_edit_examples(examples)
