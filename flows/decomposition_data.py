"""Training data for the decomposition policy: which split of a target leaves an easy rest.

A decomposition step writes a target z as ``op(a, z')`` (or ``op(z', a)``) with a a small
sibling program, one of the first library entries, and z' the remaining target, solved
exactly by the operator's inverse (:mod:`simulator.decomposition_steps`). From a target
there are about 70 such steps, and a search three steps deep meets 70³ remainders, so the
order they are tried in decides whether the search finishes.

The labels are free from enumeration: a random program ψ from the prior wrapped in 1 to
3 random steps, ``z = op1(a1, op2(a2, ψ))``, gives at each level the step that peels the
last wrap off. Every step whose remainder equals one of the chain's inner values counts as
right (peeling two equal wraps in either order is as good). Targets never come from
benchmark formulas: :class:`~simulator.enumerate.ProgramPrior` refuses them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from flows.datasets import StreamDataModule
from flows.encoders import BINARY_OPS, POINT_CHANNELS, _zscore, point_features, slog
from simulator.decomposition_steps import (
    MAX_ABS,
    SAME,
    DecompositionSteps,
    decomposition_steps,
    sibling_library,
)
from simulator.enumerate import FunctionSetPrior, ProgramPrior, output_ok, random_setting
from simulator.execute import evaluate, node_values
from simulator.language import arity
from simulator.operators import OPERATORS
from simulator.program import Program

STEP_CHANNELS = 7  # per point: the remainder (3 views), the sibling (2), their ratio to z (2)
FEATURE_CHANNELS = POINT_CHANNELS + STEP_CHANNELS  # the target's points, then the step's


def step_features(
    X: np.ndarray, z: np.ndarray, siblings: np.ndarray, steps: DecompositionSteps
) -> np.ndarray:
    """(C, n, POINT_CHANNELS + STEP_CHANNELS) per-point features of every step: the target's
    points, then the remainder, the sibling, and how each compares with the target."""
    base = point_features(X, z)  # slog x, slog z, z-scored z
    R = steps.remainders
    A = siblings[steps.siblings]
    with np.errstate(all="ignore"):
        scale = np.std(z) + 1e-8
        extra = np.stack(
            [
                slog(R),
                _zscore(R),
                np.clip((R - z.mean()) / scale, -10, 10),
                slog(A),
                _zscore(A),
                slog(R / (np.abs(z) + 1e-8)),
                np.broadcast_to(np.log10(np.std(R, axis=1, keepdims=True) / scale + 1e-12), R.shape),
            ],
            axis=-1,
        )
    extra = np.nan_to_num(np.clip(extra, -30, 30), nan=0.0)
    out = np.concatenate([np.broadcast_to(base, (len(R), *base.shape)), extra], axis=-1)
    return out.astype(np.float32)


def step_ops(steps: DecompositionSteps) -> np.ndarray:
    """(C,) ids of (operator, side) for the policy's embedding."""
    ids = np.array([BINARY_OPS.index(op) for op in steps.ops], np.int64)
    return 2 * ids + steps.sibling_left.astype(np.int64)


@dataclass
class DecompositionExample:
    features: np.ndarray  # (C, n, channels)
    ops: np.ndarray  # (C,)
    positive: np.ndarray  # (C,) bool: the steps that peel off a wrap of the chain


@dataclass
class DecompositionBatch:
    features: torch.Tensor  # (B, C, n, channels)
    point_mask: torch.Tensor  # (B, C, n)
    ops: torch.Tensor  # (B, C)
    step_mask: torch.Tensor  # (B, C)
    positive: torch.Tensor  # (B, C)


def collate_steps(examples: list[DecompositionExample]) -> DecompositionBatch:
    """Pad steps and points to one batch, with masks."""
    B = len(examples)
    C = max(len(e.ops) for e in examples)
    n = max(e.features.shape[1] for e in examples)
    ch = examples[0].features.shape[2]
    feats = torch.zeros(B, C, n, ch)
    pmask = torch.zeros(B, C, n, dtype=torch.bool)
    ops = torch.zeros(B, C, dtype=torch.long)
    smask = torch.zeros(B, C, dtype=torch.bool)
    pos = torch.zeros(B, C, dtype=torch.bool)
    for b, e in enumerate(examples):
        c, m = e.features.shape[:2]
        feats[b, :c, :m] = torch.from_numpy(e.features)
        pmask[b, :c, :m] = True
        ops[b, :c] = torch.from_numpy(e.ops)
        smask[b, :c] = True
        pos[b, :c] = torch.from_numpy(e.positive)
    return DecompositionBatch(feats, pmask, ops, smask, pos)


@dataclass
class Chain:
    """A random target built by wrapping a random program in decomposition steps."""

    X: np.ndarray
    function_set: object
    siblings: np.ndarray  # (K, n)
    values: list[np.ndarray]  # the inner program's output, then after each wrap (values[-1] is z)


DECOMPOSITION_FUNCTION_SETS = FunctionSetPrior(named=("koza", "arith", "full"), var_weights=(0.6, 0.4))
CHAIN_PROGRAMS = ProgramPrior(1, 11, p_const=0.0)  # the program inside the wraps; no constants,
# since the library holds none


def random_chain(
    rng: np.random.Generator,
    max_depth: int = 3,
    prior: ProgramPrior = CHAIN_PROGRAMS,
    function_sets: FunctionSetPrior = DECOMPOSITION_FUNCTION_SETS,
) -> Chain | None:
    """A random program wrapped in 1 to ``max_depth`` random steps on random inputs; None
    when a draw is unusable (a non-finite, huge or constant value on the way)."""
    fs, X = random_setting(rng, function_sets, max_vars=2)
    binary = tuple(op for op in fs.binary if op in BINARY_OPS)
    if not binary:
        return None
    _, siblings = sibling_library(fs, X)
    if len(siblings) < 2:
        return None
    v = evaluate(prior.sample(fs, rng), X)
    values = [v]
    if not output_ok(v):
        return None
    with np.errstate(all="ignore"):
        for _ in range(int(rng.integers(1, max_depth + 1))):
            op = binary[int(rng.integers(len(binary)))]
            a = siblings[int(rng.integers(len(siblings)))]
            v = OPERATORS[op].numpy(a, v) if rng.random() < 0.5 else OPERATORS[op].numpy(v, a)
            if not output_ok(v, max_abs=MAX_ABS):
                return None
            values.append(v)
    return Chain(X, fs, siblings, values)


def chain_example(chain: Chain, level: int) -> DecompositionExample | None:
    """The decision at ``level`` (1 = the innermost wrap): the steps from that value, and
    which of them reach one of the chain's inner values."""
    z = chain.values[level]
    binary = tuple(op for op in chain.function_set.binary if op in BINARY_OPS)
    steps = decomposition_steps(z, chain.siblings, binary)
    if not len(steps):
        return None
    positive = np.zeros(len(steps), bool)
    with np.errstate(all="ignore"):
        for inner in chain.values[:level]:
            scale = np.mean(inner**2) + 1e-12
            positive |= np.mean((steps.remainders - inner) ** 2, axis=1) / scale < SAME
    if not positive.any():
        return None
    return DecompositionExample(step_features(chain.X, z, chain.siblings, steps), step_ops(steps), positive)


def found_chain(program: Program, fs, X: np.ndarray, siblings: np.ndarray | None = None) -> Chain | None:
    """The decomposition a found program spells out: from the root down, while one input of a
    binary node equals a sibling (one of the first library entries), peel it and go on into
    the other. None when not even the root peels. The search found this program, so each of
    its levels is a decision that led to a hit (the traces' hindsight label)."""
    if siblings is None:
        _, siblings = sibling_library(fs, X)
    with np.errstate(all="ignore"):
        values = node_values(program, X)
    scale = lambda v: np.mean(v**2) + 1e-12  # noqa: E731
    chain = [values[0]]
    node = 0
    while arity(program.tokens[node]) == 2 and program.tokens[node] in BINARY_OPS:
        a, b = program.children(node)
        rest = None
        for sib, other in ((a, b), (b, a)):
            err = np.mean((siblings - values[sib]) ** 2, axis=1) / scale(values[sib])
            if np.any(err < SAME) and output_ok(values[other], max_abs=MAX_ABS):
                rest = other
                break
        if rest is None:
            break
        chain.append(values[rest])
        node = rest
    if len(chain) < 2 or not all(np.isfinite(v).all() for v in chain):
        return None
    return Chain(X, fs, siblings, chain[::-1])


def run_chains(runs: list[dict], missed: bool = False) -> list[Chain]:
    """The decompositions of the programs that traced runs found exactly (every run with
    ``solved`` whose program peels a sibling at the root). With ``missed``, a run that was not
    solved gives its drawn target's decomposition instead: a random program, known because it
    was drawn, that the search failed on, so the policy also learns the splits it missed."""
    from simulator.trace_store import program_from, task_function_set

    chains = []
    for run in runs:
        task = run["task"]
        if not (task["solved"] or missed):
            continue
        fs, X = task_function_set(task), task["X"].numpy()
        program = task["found"] if task["solved"] else task["target"]
        chain = found_chain(program_from(program), fs, X)
        if chain is not None and np.allclose(chain.values[-1], task["y"].numpy(), rtol=1e-6, atol=1e-9):
            chains.append(chain)
    return chains


def trace_chains(folders: str | list[str], missed: bool = False) -> list[Chain]:
    """:func:`run_chains` of every run in trace folders made by ``induce traces``."""
    from simulator.trace_store import load_traces

    folders = [folders] if isinstance(folders, str) else list(folders)
    return run_chains([run for folder in folders for run in load_traces(folder)], missed)


class DecompositionData(StreamDataModule):
    """Streams of chain decisions, one level of one chain per example: random chains
    (:func:`random_chain`) and, with ``traces`` (trace folders), a ``trace_share`` of the
    decompositions the search's own runs found (:func:`trace_chains`), and with ``missed`` the
    drawn targets of the runs it did not solve."""

    def __init__(
        self,
        batch_size: int = 32,
        num_workers: int = 0,
        seed: int = 0,
        val_size: int = 256,
        max_depth: int = 3,
        max_program_size: int = 11,
        traces: str | list[str] | None = None,
        trace_share: float = 0.5,
        missed: bool = False,
    ):
        super().__init__(batch_size, num_workers, seed, val_size)
        if not 0 <= trace_share <= 1:
            raise ValueError(f"trace_share must be in [0, 1]; got {trace_share}")
        self.max_depth = max_depth
        self.prior = ProgramPrior(1, max_program_size, p_const=0.0)
        self.traces = traces
        self.trace_share = trace_share
        self.missed = missed
        self._chains: list[Chain] | None = None

    @property
    def chains(self) -> list[Chain]:
        """The traced runs' decompositions, read once (a warning when there are none: then
        every example is a random chain)."""
        if self._chains is None:
            self._chains = trace_chains(self.traces, self.missed)
            if not self._chains:
                warnings.warn(
                    f"{self.traces}: no solved run whose program peels a sibling at the root; "
                    "training on random chains only",
                    stacklevel=2,
                )
        return self._chains

    def make_example(self, rng: np.random.Generator) -> DecompositionExample | None:
        if self.traces is not None and rng.random() < self.trace_share and self.chains:
            chain = self.chains[int(rng.integers(len(self.chains)))]
        else:
            chain = random_chain(rng, self.max_depth, self.prior)
        if chain is None:
            return None
        return chain_example(chain, int(rng.integers(1, len(chain.values))))

    def collate(self, examples: list[DecompositionExample]) -> DecompositionBatch:
        return collate_steps(examples)
