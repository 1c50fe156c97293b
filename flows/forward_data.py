"""Training data for the incremental forward flow p(y' | x, ŷ, φ, Δφ), made by the simulator.

A state is a search state as the planner sees it: a random target program φ_b gives the
target ŷ on random inputs, and a few random edits of φ_b give the current program φ_a.
Candidates are legal one-edit children of φ_a (random ones, plus, half the time, the first
edit of a path back to φ_b, so that good candidates are seen too); their outputs come from
the incremental simulator, and invalid children are dropped.

Child outputs are modelled per point in the target's normalised units,
``w = slog((y' − mean ŷ) / std ŷ)``: in those units NMSE(y', ŷ) is the mean squared
distance to the z-scored target, and the signed log tames the children that explode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from flows.datasets import StreamDataModule
from flows.edit_embedding import edit_codes
from flows.encoders import EncodedState, StateBatch, collate_states, encode_state, slog, unslog
from simulator.edits import Edit, apply, corrupt, edit_path, legal_edits
from simulator.enumerate import ProgramPrior, output_ok, random_setting
from simulator.execute import is_finite, leaf_value, node_values
from simulator.incremental import IncrementalEvaluator, edited_node_value
from simulator.language import FunctionSet, arity
from simulator.operators import OPERATORS
from simulator.program import Program


def target_units(values: np.ndarray, y_target: np.ndarray) -> np.ndarray:
    """``slog((v − mean ŷ) / std ŷ)``: the space the forward flow models, per point."""
    with np.errstate(all="ignore"):
        return slog((values - y_target.mean()) / (y_target.std() + 1e-300))


def from_target_units(w: torch.Tensor) -> torch.Tensor:
    """Inverse of the signed log: back to the target's z-scored units."""
    return unslog(w, clamp=30.0)


def node_jacobians(program: Program, z: np.ndarray) -> np.ndarray:
    """∂y/∂z_i at every point for every node i (L, n): the chain rule down from the root.

    Each point's output depends on a node only through that point's value, so the
    Jacobian is diagonal and one (L, n) array holds it. Non-finite entries become 0.
    """
    return node_curvatures(program, z)[0]


def node_curvatures(program: Program, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(J, H, affine)``: ∂y/∂z_i and ∂²y/∂z_i² per node and point, and whether y is affine in z_i.

    y is affine in a node when every ancestor is add, sub, neg, mul, or div with the node on
    the numerator's side: there the first-order estimate of an edit's effect is exact.
    """
    J = np.zeros_like(z)
    H = np.zeros_like(z)
    J[0] = 1.0
    affine = np.ones(len(program), dtype=bool)
    with np.errstate(all="ignore"):
        for i, t in enumerate(program.tokens):
            op = OPERATORS.get(t)
            if op is None:
                continue
            if op.arity == 1:
                c = i + 1
                d1, d2 = op.derivative(z[c]), op.second_derivative(z[c])
                J[c], H[c] = J[i] * d1, H[i] * d1 * d1 + J[i] * d2
                affine[c] = affine[i] and t == "neg"
            else:
                left, right = program.children(i)
                da, db = op.derivative(z[left], z[right])
                ha, hb = op.second_derivative(z[left], z[right])
                J[left], J[right] = J[i] * da, J[i] * db
                H[left], H[right] = H[i] * da * da + J[i] * ha, H[i] * db * db + J[i] * hb
                affine[left] = affine[i] and t in ("add", "sub", "mul", "div")
                affine[right] = affine[i] and t in ("add", "sub", "mul")
    clean = lambda v: np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)  # noqa: E731
    return clean(J), clean(H), affine


def local_values(parent: Program, z: np.ndarray, X: np.ndarray, edits: list[Edit]) -> np.ndarray:
    """(m, n) the value each edit writes at its own node, from the parent's cached values.

    This is one operator on cached inputs (what the edit *is*, numerically), not a run of
    the child: its effect on the output, through every ancestor, is what the flow predicts.
    """
    out = np.empty((len(edits), X.shape[0]))
    leaves: dict[str, np.ndarray] = {}
    leaf = lambda t: leaves[t] if t in leaves else leaves.setdefault(t, leaf_value(t, X))  # noqa: E731
    with np.errstate(all="ignore"):
        for j, e in enumerate(edits):
            out[j] = edited_node_value(parent, z, e, leaf)
    return out


# the new leaf (2); the node's new value (3); its first- and second-order effect on y (2); affine flag (1)
CANDIDATE_CHANNELS = 8


def candidate_features(
    parent: Program, z: np.ndarray, X: np.ndarray, y_target: np.ndarray, edits: list[Edit]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per candidate and point: ``(features (m, n, CANDIDATE_CHANNELS), linear anchor, parent anchor)``.

    The anchors are in target units (see :func:`target_units`): the parent's output, and the
    first-order estimate y + ∂y/∂z·(v_new − z) of the child's output (exact where y is affine in
    the node). The flow models the child's output relative to one of them; the second-order
    term and the affine flag tell it where and how far the first-order estimate bends.
    """
    m, n = len(edits), X.shape[0]
    feats = np.zeros((m, n, CANDIDATE_CHANNELS))
    mu, sd = y_target.mean(), y_target.std() + 1e-300
    parent_w = np.broadcast_to(target_units(z[0], y_target), (m, n))
    if m == 0:
        return feats.astype(np.float32), parent_w.copy(), parent_w.copy()
    for j, e in enumerate(edits):
        leaf = e.leaf or (e.token if e.kind in ("collapse", "replace") and arity(e.token) == 0 else "")
        if leaf:
            v = leaf_value(leaf, X)
            feats[j, :, 0] = slog(v)
            feats[j, :, 1] = np.clip((v - mu) / sd, -10, 10)
    locs = np.array([e.loc for e in edits])
    J, H, affine = node_curvatures(parent, z)
    J, H = J[locs], H[locs]
    feats[..., 7] = affine[locs][:, None]
    with np.errstate(all="ignore"):
        v = local_values(parent, z, X, edits)
        ok = np.isfinite(v)
        v0 = np.where(ok, v, 0.0)
        delta = J * (v0 - z[locs]) / sd
        feats[..., 2] = slog(v0)
        feats[..., 3] = np.clip((v0 - mu) / sd, -10, 10)
        feats[..., 4] = ok
        feats[..., 5] = np.clip(slog(delta), -30, 30)
        feats[..., 6] = np.clip(slog(0.5 * H * (v0 - z[locs]) ** 2 / sd), -30, 30)
        linear = target_units(z[0] + J * (v0 - z[locs]), y_target)
    linear = np.where(ok & np.isfinite(linear), np.clip(linear, -30, 30), parent_w)
    return feats.astype(np.float32), linear, parent_w.copy()


def state_extras(program: Program, z: np.ndarray, y_target: np.ndarray) -> np.ndarray:
    """(L, n, 2) per node: slog of ∂y/∂z_i in target units per node scale, and slog of ∂y/∂z_i."""
    J = node_jacobians(program, z)
    with np.errstate(all="ignore"):  # huge node values are clipped by slog, not reported
        node_scale = np.sqrt(np.mean(z**2, axis=1, keepdims=True)) + 1e-8
        rel = J * node_scale / (y_target.std() + 1e-300)
        return np.stack([slog(rel), slog(J)], -1).astype(np.float32)


def kid_indices(program: Program, edits: list[Edit]) -> np.ndarray:
    """(m, 2) the edited node's children (-1 where it has fewer than two)."""
    out = np.full((len(edits), 2), -1, dtype=np.int64)
    for j, e in enumerate(edits):
        kids = program.children(e.loc)
        out[j, : len(kids)] = kids
    return out


@dataclass
class ForwardExample:
    """One parent state and some of its valid one-edit children."""

    state: EncodedState
    extras: np.ndarray  # (L, n, 2) per-node sensitivities, see state_extras
    locs: np.ndarray  # (m,) edited node of each candidate
    kids: np.ndarray  # (m, 2) its children, -1 for none
    codes: np.ndarray  # (m, EDIT_CODE_DIM)
    feats: np.ndarray  # (m, n, CANDIDATE_CHANNELS) see candidate_features
    anchors: np.ndarray  # (2, m, n) first-order and parent anchors, target units
    w: np.ndarray  # (m, n) children's outputs in target units


def make_forward_example(
    parent: Program, X: np.ndarray, y_target: np.ndarray, z: np.ndarray, edits: list[Edit], w: np.ndarray
) -> ForwardExample:
    """Everything the forward flow reads about a state and its candidates (``w`` may be zeros)."""
    feats, linear, parent_w = candidate_features(parent, z, X, y_target, edits)
    return ForwardExample(
        encode_state(parent, X, y_target, list(z)),
        state_extras(parent, z, y_target),
        np.array([e.loc for e in edits], dtype=np.int64),
        kid_indices(parent, edits),
        edit_codes(edits),
        feats,
        np.stack([linear, parent_w]).astype(np.float32),
        np.asarray(w, dtype=np.float32),
    )


@dataclass
class ForwardBatch:
    states: StateBatch
    extras: torch.Tensor  # (B, L, n, 2)
    cand_state: torch.Tensor  # (M,) which state each candidate belongs to
    locs: torch.Tensor  # (M,)
    kids: torch.Tensor  # (M, 2)
    codes: torch.Tensor  # (M, EDIT_CODE_DIM)
    feats: torch.Tensor  # (M, n, CANDIDATE_CHANNELS)
    anchors: torch.Tensor  # (2, M, n)
    w: torch.Tensor  # (M, n) padded like the states' points
    mask: torch.Tensor  # (M, n) True for real points


def sample_state(
    rng: np.random.Generator, prior: ProgramPrior, max_corruptions: int = 4, max_size: int = 30
) -> tuple[FunctionSet, np.ndarray, np.ndarray, Program, Program, IncrementalEvaluator] | None:
    """``(fs, X, ŷ, φ_a, φ_b, evaluator of φ_a)``, or None for a rejected draw."""
    fs, X = random_setting(rng)
    target = prior.sample(fs, rng)
    zb = node_values(target, X)
    if not is_finite(zb) or not output_ok(zb[0]):
        return None
    k = int(rng.integers(1, max_corruptions + 1))
    parent, _ = corrupt(target, fs, k, rng, max_size=max_size)
    ev = IncrementalEvaluator(parent, X)
    if not ev.node_ok.all() or np.abs(ev.z).max() > 1e12:
        return None
    return fs, X, zb[0], parent, target, ev


def candidate_edits(
    rng: np.random.Generator,
    fs: FunctionSet,
    parent: Program,
    target: Program | None,
    m: int,
    max_size: int = 30,
    p_path: float = 0.5,
) -> list[Edit]:
    """Up to ``2m`` random legal edits, led (with probability ``p_path``) by a step towards the target."""
    legal = legal_edits(parent, fs, max_size=max_size)
    if not legal:
        return []
    pick = rng.choice(len(legal), size=min(2 * m, len(legal)), replace=False)
    edits = [legal[int(i)] for i in pick]
    if target is not None and rng.random() < p_path:
        path = edit_path(parent, target)
        if path and len(apply(parent, path[0])) <= max_size and path[0] not in edits:
            edits.insert(0, path[0])
    return edits


def children(
    ev: IncrementalEvaluator, edits: list[Edit], y_target: np.ndarray, max_abs: float = 1e12
) -> tuple[list[Edit], np.ndarray]:
    """The valid children among ``edits`` and their outputs in target units."""
    if not edits:
        return [], np.zeros((0, len(y_target)))
    Y, valid = ev.evaluate(edits)
    with np.errstate(all="ignore"):
        valid &= np.abs(Y).max(axis=1) < max_abs
    keep = [e for e, v in zip(edits, valid) if v]
    return keep, target_units(Y[valid], y_target)


class ForwardFlowData(StreamDataModule):
    """Parent states with ``candidates`` children each, drawn on the fly from the simulator."""

    def __init__(
        self,
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
        val_size: int = 128,
        candidates: int = 16,
        max_program_size: int = 12,
        max_corruptions: int = 4,
        max_size: int = 30,
    ):
        super().__init__(batch_size, num_workers, seed, val_size)
        self.candidates = candidates
        self.prior = ProgramPrior(1, max_program_size)
        self.max_corruptions = max_corruptions
        self.max_size = max_size

    def make_example(self, rng: np.random.Generator) -> ForwardExample | None:
        drawn = sample_state(rng, self.prior, self.max_corruptions, self.max_size)
        if drawn is None:
            return None
        fs, X, y, parent, target, ev = drawn
        edits = candidate_edits(rng, fs, parent, target, self.candidates, self.max_size)
        edits, w = children(ev, edits, y)
        if not edits:
            return None
        return make_forward_example(parent, X, y, ev.z, edits[: self.candidates], w[: self.candidates])

    def collate(self, examples: list[ForwardExample]) -> ForwardBatch:
        return collate_forward(examples)


def collate_forward(examples: list[ForwardExample]) -> ForwardBatch:
    states = collate_states([e.state for e in examples])
    B, L, n = states.nodes.shape[:3]
    cand_state = torch.cat([torch.full((len(e.locs),), b, dtype=torch.long) for b, e in enumerate(examples)])
    M = len(cand_state)
    extras = torch.zeros(B, L, n, 2)
    w = torch.zeros(M, n)
    feats = torch.zeros(M, n, CANDIDATE_CHANNELS)
    anchors = torch.zeros(2, M, n)
    k = 0
    for b, e in enumerate(examples):
        m, p = e.w.shape
        extras[b, : e.extras.shape[0], :p] = torch.from_numpy(e.extras)
        w[k : k + m, :p] = torch.from_numpy(e.w)
        feats[k : k + m, :p] = torch.from_numpy(e.feats)
        anchors[:, k : k + m, :p] = torch.from_numpy(e.anchors)
        k += m
    return ForwardBatch(
        states,
        extras,
        cand_state,
        torch.from_numpy(np.concatenate([e.locs for e in examples])),
        torch.from_numpy(np.concatenate([e.kids for e in examples])),
        torch.from_numpy(np.concatenate([e.codes for e in examples])),
        feats,
        anchors,
        w,
        states.point_mask[cand_state],
    )
