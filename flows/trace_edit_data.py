"""Edit examples from the planner's own traces: on-policy data for the edit flow.

A traced state is a program the planner really expanded, with the data it was solving. Its
label is an edit that moves toward the program the search found (hindsight: the found
program is a valid target for its ancestors, drawn target or not), or, for a share
``best_child_share`` of examples, an edit whose child has the lowest true loss. States come from
``induce traces`` folders; a share of random-program examples (``random_share``) keeps the
off-policy skill the shipped model learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from flows.edit_data import EditDataModule, EditExample, collate_edit_examples
from flows.encoders import encode_state
from simulator.datasets import StreamDataModule
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
    best: tuple[Edit, ...] = ()  # the edits whose child has the lowest true loss


def traced_states(folders: str | list[str], validation: bool, val_fraction: float) -> list[TracedState]:
    """Labelled states of the runs in ``folders``; runs are split by index, never states, so a
    validation run's states are all unseen."""
    out: list[TracedState] = []
    for run in split_runs(folders, validation, val_fraction):
        task = run["task"]
        X, y, fs = task["X"].numpy(), task["y"].numpy(), task_function_set(task)
        found = program_from(task["found"])
        for row in run["states"]:
            toward, loss = row["toward"].numpy(), row["child_loss"].numpy()
            if toward.any():
                edits = state_edits(row)
                best = [e for e, v in zip(edits, loss) if np.isfinite(v) and v == loss.min()]
                program = program_from(row["program"])
                out.append(
                    TracedState(
                        X,
                        y,
                        fs,
                        program,
                        found,
                        tuple(e for e, t in zip(edits, toward) if t),
                        int(row["distance"]),
                        tuple(best),
                    )  # fmt: skip
                )
    return out


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
    ):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, val_size=val_size)
        self.traces = traces
        self.val_fraction = val_fraction
        self.random_share = random_share
        self.best_child_share = best_child_share
        self.train_states = traced_states(traces, False, val_fraction)
        self.val_states = traced_states(traces, True, val_fraction)
        if not self.train_states:
            raise ValueError(f"{traces}: no traced state has an edit toward its found program")
        self.random = EditDataModule(batch_size=batch_size, seed=seed) if random_share > 0 else None

    def _example(self, st: TracedState, rng: np.random.Generator) -> EditExample | None:
        """Label: an edit toward the found program, or (``best_child_share`` of the time) an edit
        whose child has the lowest true loss, the planner's one-step view of the same goal."""
        pool = st.best if st.best and rng.random() < self.best_child_share else st.toward
        label = pool[int(rng.integers(len(pool)))]
        with np.errstate(all="ignore"):
            state = encode_state(st.program, st.X, st.y)
        return EditExample(
            st.X, st.y, st.program, st.found, st.function_set, label, state, st.distance, st.toward
        )

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
