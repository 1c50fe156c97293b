"""Training data for the recognition model: which operators and variables a law uses.

The labels are free from the prior: a random program evaluated on random inputs, sometimes
with noise, and the tokens it contains. The library of the sub-goal stage keeps the
programs that use the likely tokens first (:func:`simulator.enumerate.enumerate_exhaustive`
with token costs), so what matters is that the law's own tokens rank high. Targets never
come from benchmark formulas: :class:`~simulator.enumerate.ProgramPrior` refuses them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from flows.datasets import StreamDataModule
from flows.edit_data import function_set_mask
from flows.encoders import MAX_VARS, POINT_CHANNELS, VOCAB, _zscore, point_features, slog
from simulator.enumerate import FunctionSetPrior, ProgramPrior, output_ok, sample_inputs
from simulator.execute import evaluate
from simulator.language import CONST, FunctionSet, is_variable
from simulator.program import Program

VARIABLE_CHANNELS = 4  # per point: slog x_i, z-scored x_i, slog y, z-scored y
NOISE_LEVELS = (0.0, 0.0, 0.01, 0.1)  # x RMS of y, drawn uniformly: real data is noisy
RECOGNITION_FUNCTION_SETS = FunctionSetPrior(
    named=("koza", "ckoza", "arith", "full"), p_named=0.5, var_weights=(0.3, 0.25, 0.2, 0.15, 0.1)
)
RECOGNITION_PROGRAMS = ProgramPrior(min_size=3, max_size=13)


@dataclass
class RecognitionExample:
    points: np.ndarray  # (n, POINT_CHANNELS)
    variables: np.ndarray  # (V, n, VARIABLE_CHANNELS)
    fs: np.ndarray  # (len(VOCAB),) the function set
    labels: np.ndarray  # (len(VOCAB),) 1 where the law uses the token


@dataclass
class RecognitionBatch:
    points: torch.Tensor  # (B, n, POINT_CHANNELS)
    point_mask: torch.Tensor  # (B, n)
    variables: torch.Tensor  # (B, MAX_VARS, n, VARIABLE_CHANNELS)
    variable_mask: torch.Tensor  # (B, MAX_VARS)
    fs: torch.Tensor  # (B, len(VOCAB))
    labels: torch.Tensor  # (B, len(VOCAB))


def candidate_tokens(function_set: FunctionSet) -> list[str]:
    """The tokens a library entry may use: the set's operators and variables, not constants."""
    return [t for t in function_set.tokens if t != CONST]


def variable_features(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(V, n, VARIABLE_CHANNELS): each variable beside the target, for one shared encoder."""
    with np.errstate(all="ignore"):
        ys = np.stack([slog(y), _zscore(y)], -1)
        xs = np.stack([slog(X.T), _zscore(X.T, axis=1)], -1)
    out = np.concatenate([xs, np.broadcast_to(ys, (X.shape[1], *ys.shape))], -1)
    return np.nan_to_num(out, nan=0.0).astype(np.float32)


def recognition_example(
    function_set: FunctionSet, X: np.ndarray, y: np.ndarray, program: Program | None = None
) -> RecognitionExample:
    """The model's view of a task; labelled with ``program``'s tokens when one is given."""
    labels = np.zeros(len(VOCAB), np.float32)
    if program is not None:
        for t in set(program.tokens) - {CONST}:
            labels[VOCAB.index(t)] = 1.0
    return RecognitionExample(
        point_features(X, y), variable_features(X, y), function_set_mask(function_set), labels
    )


def collate_recognition(examples: list[RecognitionExample]) -> RecognitionBatch:
    """Pad points and variables to one batch, with masks."""
    B = len(examples)
    n = max(e.points.shape[0] for e in examples)
    points = torch.zeros(B, n, POINT_CHANNELS)
    pmask = torch.zeros(B, n, dtype=torch.bool)
    variables = torch.zeros(B, MAX_VARS, n, VARIABLE_CHANNELS)
    vmask = torch.zeros(B, MAX_VARS, dtype=torch.bool)
    for b, e in enumerate(examples):
        k, v = e.points.shape[0], e.variables.shape[0]
        points[b, :k] = torch.from_numpy(e.points)
        pmask[b, :k] = True
        variables[b, :v, :k] = torch.from_numpy(e.variables)
        vmask[b, :v] = True
    fs = torch.from_numpy(np.stack([e.fs for e in examples]))
    labels = torch.from_numpy(np.stack([e.labels for e in examples]))
    return RecognitionBatch(points, pmask, variables, vmask, fs, labels)


def random_task(
    rng: np.random.Generator,
    prior: ProgramPrior = RECOGNITION_PROGRAMS,
    function_sets: FunctionSetPrior = RECOGNITION_FUNCTION_SETS,
    max_vars: int = 5,
    points: tuple[int, int] = (20, 100),
) -> tuple[FunctionSet, np.ndarray, np.ndarray, Program] | None:
    """A random law on random inputs, with noise at a random level; None if unusable."""
    fs = function_sets.sample(rng, max_vars)
    X = sample_inputs(fs.n_vars, int(rng.integers(points[0], points[1] + 1)), rng)
    if rng.random() < 0.5:  # measurements are often positive: a range that starts above 0
        X = np.abs(X) + 0.1
    program = prior.sample(fs, rng)
    with np.errstate(all="ignore"):
        y = evaluate(program, X)
    if not output_ok(y) or not any(is_variable(t) for t in program.tokens):
        return None
    level = NOISE_LEVELS[int(rng.integers(len(NOISE_LEVELS)))]
    y = y + rng.normal(0.0, level * float(np.sqrt(np.mean(y**2))), len(y))
    return fs, X, y, program


class RecognitionData(StreamDataModule):
    """Streams of random laws (:func:`random_task`) labelled with their tokens."""

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        val_size: int = 512,
        max_vars: int = 5,
        max_program_size: int = 13,
    ):
        super().__init__(batch_size, num_workers, seed, val_size)
        self.max_vars = max_vars
        self.prior = ProgramPrior(min_size=3, max_size=max_program_size)

    def make_example(self, rng: np.random.Generator) -> RecognitionExample | None:
        task = random_task(rng, self.prior, max_vars=self.max_vars)
        return None if task is None else recognition_example(task[0], task[1], task[2], task[3])

    def collate(self, examples: list[RecognitionExample]) -> RecognitionBatch:
        return collate_recognition(examples)
