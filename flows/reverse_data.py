"""Training data for the reverse flow p(z | y, x, φ_context), made by the simulator.

A random program φ on random inputs gives y; a random non-root node becomes a hole (its
whole subtree is cut), and the value z that node had is the label. The hole's context is
encoded with the hole token in place of the subtree; the hole and its ancestors carry no
node values (they depend on z), every other node carries its output on the data.

The flow models z per point relative to the principal-branch inverse v* of the path
(:func:`simulator.inverse.invert_path`): ``t = slog(z) − slog(v*)`` where v* exists on that point
and ``t = slog(z)`` where it does not. Where the path is one-to-one t is 0 and the flow
learns a sharp peak there; where it is not (square, cos, ...) the other branches become
further modes of t, which is what the spline flow is for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from flows.datasets import StreamDataModule
from flows.encoders import HOLE, VOCAB, EncodedState, StateBatch, collate_states, encode_state, slog
from simulator.enumerate import ProgramPrior, output_ok, random_setting
from simulator.execute import is_finite, node_values
from simulator.inverse import invert_path
from simulator.program import Program

EXTRA_CHANNELS = 4  # slog v*, v* exists, path one-to-one, path length / 8


def hole_program(program: Program, hole_loc: int) -> tuple[Program, list[int]]:
    """The program with the subtree at ``hole_loc`` cut to one placeholder leaf, and the map
    from its nodes to the original's (the placeholder maps to ``hole_loc``)."""
    end = program.ends[hole_loc]
    cut = program.replace_subtree(hole_loc, Program(("x1",)))
    shift = end - hole_loc - 1
    mapping = [j if j <= hole_loc else j + shift for j in range(len(cut))]
    return cut, mapping


def encode_hole_state(
    program: Program, hole_loc: int, X: np.ndarray, y: np.ndarray, z: list | None = None
) -> EncodedState:
    """Encoder arrays for the context of a hole: the hole token, no values on the hole's path."""
    z = node_values(program, X) if z is None else z
    cut, mapping = hole_program(program, hole_loc)
    zc = [np.asarray(z[mapping[j]], dtype=np.float64) for j in range(len(cut))]
    state = encode_state(cut, X, y, zc)
    state.tokens[hole_loc] = VOCAB.index(HOLE)
    node = hole_loc
    while node >= 0:  # the hole and its ancestors depend on the unknown z
        state.nodes[node] = 0.0
        node = cut.parents[node]
    return state


def hole_features(
    program: Program, hole_loc: int, X: np.ndarray, y: np.ndarray, z: list | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-point extra features (n, EXTRA_CHANNELS) and the anchor ``slog(v*)`` (0 where v* is missing)."""
    v, ok, injective = invert_path(program, hole_loc, X, y, z)
    anchor = np.where(ok, slog(np.where(ok, v, 0.0)), 0.0)
    depth = 0
    node = program.parents[hole_loc]
    while node >= 0:
        depth += 1
        node = program.parents[node]
    extra = np.stack(
        [anchor, ok.astype(np.float64), np.full(len(y), float(injective)), np.full(len(y), depth / 8.0)], -1
    )
    return extra.astype(np.float32), anchor


@dataclass
class ReverseExample:
    state: EncodedState
    hole: int  # index of the hole in the encoded (cut) program
    extra: np.ndarray  # (n, EXTRA_CHANNELS)
    t: np.ndarray  # (n,) slog(z) relative to the anchor


@dataclass
class ReverseBatch:
    states: StateBatch
    hole: torch.Tensor  # (B,)
    extra: torch.Tensor  # (B, n, EXTRA_CHANNELS)
    t: torch.Tensor  # (B, n)
    mask: torch.Tensor  # (B, n)


def sample_hole_task(
    rng: np.random.Generator, prior: ProgramPrior
) -> tuple[Program, int, np.ndarray, np.ndarray, list] | None:
    """``(program, hole_loc, X, y, z)`` with a non-root hole, or None for a rejected draw."""
    fs, X = random_setting(rng)
    program = prior.sample(fs, rng)
    if len(program) < 2:
        return None
    z = node_values(program, X)
    if not is_finite(z) or not output_ok(z[0]) or max(np.abs(v).max() for v in z) > 1e8:
        return None
    loc = int(rng.integers(1, len(program)))
    return program, loc, X, z[0], z


def make_reverse_example(program: Program, loc: int, X: np.ndarray, y: np.ndarray, z: list) -> ReverseExample:
    extra, anchor = hole_features(program, loc, X, y, z)
    t = slog(np.asarray(z[loc], dtype=np.float64)) - anchor
    return ReverseExample(encode_hole_state(program, loc, X, y, z), loc, extra, t.astype(np.float32))


class ReverseFlowData(StreamDataModule):
    """Random programs with one random non-root node cut out as a hole."""

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        val_size: int = 256,
        max_program_size: int = 15,
    ):
        super().__init__(batch_size, num_workers, seed, val_size)
        self.prior = ProgramPrior(2, max_program_size)

    def make_example(self, rng: np.random.Generator) -> ReverseExample | None:
        drawn = sample_hole_task(rng, self.prior)
        return None if drawn is None else make_reverse_example(*drawn)

    def collate(self, examples: list[ReverseExample]) -> ReverseBatch:
        return collate_reverse(examples)


def collate_reverse(examples: list[ReverseExample]) -> ReverseBatch:
    states = collate_states([e.state for e in examples])
    B, n = states.points.shape[:2]
    extra = torch.zeros(B, n, EXTRA_CHANNELS)
    t = torch.zeros(B, n)
    for b, e in enumerate(examples):
        extra[b, : len(e.t)] = torch.from_numpy(e.extra)
        t[b, : len(e.t)] = torch.from_numpy(e.t)
    hole = torch.tensor([e.hole for e in examples], dtype=torch.long)
    return ReverseBatch(states, hole, extra, t, states.point_mask)
