"""Edit examples for the edit flow, made on the fly by the simulator.

An example is a random target φ_b over a random function set, corrupted by k random edits
into φ_a; the label is the next edit on a path back to φ_b. The context is what a search
would see: the inputs x, the wanted output ŷ = g(φ_b, x), and φ_a with every node's
output z. Benchmark formulas never appear as targets, so the suites stay out of
distribution. Held-out examples also list every correct next edit, for top-k metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch

from flows.datasets import VALIDATION_SEED_OFFSET, SimulatorStream, StreamDataModule
from flows.encoders import VOCAB, EncodedState, collate_states, encode_state
from simulator.edits import Edit, EditError, corrupt, edit_path, next_edits
from simulator.enumerate import FunctionSetPrior, ProgramPrior, output_ok, sample_inputs
from simulator.execute import is_finite, node_values
from simulator.language import FunctionSet, arity, is_variable, variables
from simulator.program import Program
from simulator.suites import benchmark_keys


@dataclass
class EditExample:
    """One (x, ŷ, φ_a) state, the label edit, and (held-out only) every correct next edit."""

    X: np.ndarray
    y: np.ndarray
    program: Program  # φ_a, the state the edit applies to
    target: Program  # φ_b
    function_set: FunctionSet
    label: Edit
    state: EncodedState
    k: int  # corruption depth
    correct: tuple[Edit, ...] | None = None
    # listwise targets (traced states only): candidate edits and the share q of the label each
    # gets; the flow's scores, normalised over the candidates, are fitted to q
    candidates: tuple[Edit, ...] | None = None
    weights: np.ndarray | None = None


def function_set_mask(function_set: FunctionSet) -> np.ndarray:
    """Multi-hot over the vocabulary: the model must know which tokens a task allows."""
    m = np.zeros(len(VOCAB), dtype=np.float32)
    for t in function_set.tokens:
        m[VOCAB.index(t)] = 1.0
    return m


# Koza 25%, CKoza 15%, otherwise a random operator subset; literals 1..6 on 30% of all sets.
EDIT_FUNCTION_SETS = FunctionSetPrior(
    named=("koza", "ckoza"),
    named_weights=(0.625, 0.375),
    p_named=0.4,
    p_binary=0.55,
    p_unary=0.35,
    p_const=0.4,
    literals=("1", "2", "3", "4", "5", "6"),
    p_literals=0.3,
    max_literals=3,
    literals_on_named=True,
    var_weights=(0.5, 0.3, 0.2, 0.1, 0.1),
)


def make_edit_example(
    function_set: FunctionSet,
    target: Program,
    X: np.ndarray,
    y: np.ndarray,
    k: int,
    rng: np.random.Generator,
    with_correct: bool = False,
    max_size: int = 40,
) -> EditExample | None:
    """Corrupt ``target`` by ``k`` random edits and label the way back; ``None`` if rejected."""
    try:
        program, _ = corrupt(target, function_set, k, rng, max_size=max_size)
    except (EditError, ValueError):
        return None
    z = node_values(program, X)
    if not is_finite(z):
        return None
    path = edit_path(program, target)
    if not path:  # the random edits undid themselves
        return None
    correct = tuple(next_edits(program, target, function_set)) if with_correct else None
    if correct is not None and not correct:
        return None
    with np.errstate(all="ignore"):  # huge but finite node outputs overflow in the z-scoring
        state = encode_state(program, X, y, z)
    return EditExample(X, y, program, target, function_set, path[0], state, k, correct)


class EditDataModule(StreamDataModule):
    """Edit examples from random programs (the edit flow's training and validation data)."""

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        val_size: int = 256,
        max_corruptions: int = 3,
        min_size: int = 1,
        max_size: int = 20,
        max_depth: int = 7,
        max_vars: int = 3,
        n_points: int = 20,
    ):
        super().__init__(batch_size=batch_size, num_workers=num_workers, seed=seed, val_size=val_size)
        self.max_corruptions = max_corruptions
        self.prior = ProgramPrior(min_size=min_size, max_size=max_size, max_depth=max_depth)
        self.max_vars = max_vars
        self.n_points = n_points

    def make_example(self, rng: np.random.Generator, with_correct: bool = False) -> EditExample | None:
        fs = EDIT_FUNCTION_SETS.sample(rng, self.max_vars)
        target = self.prior.sample(fs, rng)
        if target.key in benchmark_keys():
            return None
        X = sample_inputs(fs.n_vars, self.n_points, rng)
        zb = node_values(target, X)
        with np.errstate(all="ignore"):  # output_ok squares huge finite outputs
            if not is_finite(zb) or not output_ok(zb[0]):
                return None
        k = int(rng.integers(1, self.max_corruptions + 1))
        return make_edit_example(fs, target, X, zb[0], k, rng, with_correct=with_correct)

    def validation_examples(self) -> list[EditExample]:
        """Held-out examples, each with every correct next edit (for top-k accuracy)."""
        if self._val is None:
            make = partial(self.make_example, with_correct=True)
            stream = SimulatorStream(make, self.seed + VALIDATION_SEED_OFFSET, 0, self.val_size)
            self._val = list(stream)
        return self._val

    def collate(self, examples: list[EditExample]) -> dict[str, Any]:
        return collate_edit_examples(examples)


class Examples:
    """The raw examples of a batch, in an opaque holder that Lightning's device transfer
    leaves alone (it refuses to walk into frozen dataclasses such as Program)."""

    def __init__(self, items: list[EditExample]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)


def collate_edit_examples(examples: list[EditExample]) -> dict[str, Any]:
    """Batch: encoded states, function-set masks, label locations, and the raw examples."""
    return {
        "state": collate_states([e.state for e in examples]),
        "fs": torch.from_numpy(np.stack([function_set_mask(e.function_set) for e in examples])),
        "loc": torch.tensor([e.label.loc for e in examples], dtype=torch.long),
        "examples": Examples(list(examples)),
    }


# ----- the Nguyen-derived set (evaluation only) ----------------------------------------------
NGUYEN_EVAL = tuple(f"Nguyen-{i}" for i in range(1, 13))


def expressive_set(function_set: FunctionSet, program: Program) -> FunctionSet:
    """The task's set plus every token its formula uses (pow, sqrt, literals), so the way back exists."""
    unary = list(function_set.unary)
    binary = list(function_set.binary)
    leaves = [t for t in function_set.leaves]
    for t in program.tokens:
        a = arity(t)
        bucket = leaves if a == 0 else unary if a == 1 else binary
        if t not in bucket:
            bucket.append(t)
    others = [t for t in leaves if not is_variable(t)]
    n_vars = max(function_set.n_vars, program.n_vars, 1)
    return FunctionSet(tuple(unary), tuple(binary), variables(n_vars) + tuple(others), function_set.name)


def nguyen_edit_examples(n: int, seed: int = 0, max_corruptions: int = 3) -> list[EditExample]:
    """``n`` corrupted Nguyen-1..12 formulas with every way back; evaluation only, never training."""
    from simulator.suites import get_task

    rng = np.random.default_rng([seed, 424242])
    out: list[EditExample] = []
    i = 0
    while len(out) < n:
        task = get_task(NGUYEN_EVAL[i % len(NGUYEN_EVAL)])
        i += 1
        target = task.program()
        fs = expressive_set(task.function_set, target)
        X, y = task.sample("train", seed=int(rng.integers(1 << 30)))
        for _ in range(50):  # retry the corruption until it is valid on X
            k = int(rng.integers(1, max_corruptions + 1))
            ex = make_edit_example(fs, target, X, y, k, rng, with_correct=True)
            if ex is not None:
                out.append(ex)
                break
    return out
