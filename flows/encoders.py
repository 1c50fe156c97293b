"""Shared encoders: the point set (x, y) and the program with its intermediate outputs z.

Every flow conditions on the same two views of a state, so they live here once:
- :class:`SetEncoder`, a DeepSets encoder over points, invariant to their order;
- :class:`ProgramEncoder`, a transformer over the nodes of the tree, each node carrying its
  token, depth, side, parent token, and a set-encoding of its output z next to the target.

Values are squashed with a signed log and z-scored per set, so the same weights see
programs whose outputs differ by orders of magnitude (out-of-distribution scales are the
rule on real data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from simulator.execute import node_values
from simulator.language import CONST, MAX_LITERAL, variables
from simulator.operators import OPERATORS
from simulator.program import Program

MAX_VARS = 10
# The operators the shipped models were trained with, in their order. An operator registered
# later (simulator/operators.py) is unknown to them until they are retrained with it added
# here; the learned stages then fall back to their stand-in's choice for programs using it.
MODEL_OPERATORS: tuple[str, ...] = (
    *("add", "sub", "mul", "div", "pow"),
    *("sin", "cos", "tan", "exp", "log", "sqrt", "neg", "inv", "square", "cube", "abs", "tanh"),
)
# The binary ones: the decomposition policy embeds each step's (operator, side), so the
# recursion peels only these.
BINARY_OPS: tuple[str, ...] = tuple(t for t in MODEL_OPERATORS if OPERATORS[t].arity == 2)
PAD = "<pad>"
HOLE = "<hole>"  # a node whose value the reverse flow must supply


@dataclass(frozen=True)
class Vocabulary:
    """Token ids shared by every model; saved inside each checkpoint and checked on load."""

    tokens: tuple[str, ...]

    @classmethod
    def default(cls) -> Vocabulary:
        literals = tuple(str(i) for i in range(MAX_LITERAL + 1))
        return cls((PAD, HOLE, *MODEL_OPERATORS, CONST, *literals, *variables(MAX_VARS)))

    def __len__(self) -> int:
        return len(self.tokens)

    def index(self, token: str) -> int:
        try:
            return self._ids[token]
        except KeyError:
            raise ValueError(f"token {token!r} is not in the model vocabulary") from None

    @property
    def _ids(self) -> dict[str, int]:
        ids = self.__dict__.get("_ids_cache")
        if ids is None:
            ids = {t: i for i, t in enumerate(self.tokens)}
            object.__setattr__(self, "_ids_cache", ids)
        return ids


VOCAB = Vocabulary.default()


def slog(v: np.ndarray | torch.Tensor):
    """Signed log: keeps sign and order, squashes magnitude."""
    if isinstance(v, torch.Tensor):
        return torch.sign(v) * torch.log1p(v.abs())
    return np.sign(v) * np.log1p(np.abs(v))


def unslog(w: np.ndarray | torch.Tensor, clamp: float = 40.0):
    """Inverse of :func:`slog`; magnitudes are clamped at ``clamp`` first so nothing overflows."""
    if isinstance(w, torch.Tensor):
        return torch.sign(w) * torch.expm1(w.abs().clamp_max(clamp))
    return np.sign(w) * np.expm1(np.minimum(np.abs(w), clamp))


def _zscore(v: np.ndarray, axis: int = -1) -> np.ndarray:
    mu = v.mean(axis=axis, keepdims=True)
    sd = v.std(axis=axis, keepdims=True)
    return np.clip((v - mu) / (sd + 1e-8), -10, 10)


POINT_CHANNELS = MAX_VARS + 2  # slog(x) per variable, slog(y), z-scored y
NODE_CHANNELS = 4  # slog(z), z-scored z, z in y's units, z-scored target y


def point_features(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(n, POINT_CHANNELS) features of a point set; variables beyond d are zero."""
    n, d = X.shape
    if d > MAX_VARS:
        raise ValueError(f"the models handle at most {MAX_VARS} variables, got {d}")
    out = np.zeros((n, POINT_CHANNELS), dtype=np.float32)
    out[:, :d] = slog(X)
    out[:, MAX_VARS] = slog(y)
    out[:, MAX_VARS + 1] = _zscore(y)
    return out


def node_features(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(nodes, n, NODE_CHANNELS) features of each node's output next to the target y."""
    with np.errstate(all="ignore"):
        z = np.nan_to_num(z, nan=0.0, posinf=1e6, neginf=-1e6)
        in_y = np.clip((z - y.mean()) / (y.std() + 1e-8), -10, 10)
        out = np.stack([slog(z), _zscore(z), in_y, np.broadcast_to(_zscore(y), z.shape)], axis=-1)
    return out.astype(np.float32)


@dataclass
class EncodedState:
    """One (x, y, φ) state as arrays; :func:`collate_states` batches them."""

    points: np.ndarray  # (n, POINT_CHANNELS)
    tokens: np.ndarray  # (L,) token ids
    depth: np.ndarray  # (L,)
    side: np.ndarray  # (L,) 0 left child, 1 right child, 2 root or only child
    parent_token: np.ndarray  # (L,) token id of the parent (PAD for the root)
    nodes: np.ndarray  # (L, n, NODE_CHANNELS)


def encode_state(
    program: Program, X: np.ndarray, y: np.ndarray, z: Sequence[np.ndarray] | None = None
) -> EncodedState:
    """Arrays for the encoders; ``z`` (node outputs on X) is computed when not given."""
    z = np.stack(node_values(program, X) if z is None else z)
    par = program.parents
    depth = np.zeros(len(program), dtype=np.int64)
    side = np.full(len(program), 2, dtype=np.int64)
    for i in range(1, len(program)):
        depth[i] = depth[par[i]] + 1
        kids = program.children(par[i])
        if len(kids) == 2:
            side[i] = kids.index(i)
    ids = np.array([VOCAB.index(t) for t in program.tokens], dtype=np.int64)
    parent_ids = np.array([0 if p < 0 else ids[p] for p in par], dtype=np.int64)
    return EncodedState(point_features(X, y), ids, depth, side, parent_ids, node_features(z, y))


@dataclass
class StateBatch:
    points: torch.Tensor  # (B, n, C)
    point_mask: torch.Tensor  # (B, n) True for real points
    tokens: torch.Tensor  # (B, L)
    depth: torch.Tensor
    side: torch.Tensor
    parent_token: torch.Tensor
    nodes: torch.Tensor  # (B, L, n, NODE_CHANNELS)
    node_mask: torch.Tensor  # (B, L) True for real nodes


def collate_states(states: Sequence[EncodedState]) -> StateBatch:
    """Pad a list of states to one batch (points and nodes both padded, with masks)."""
    B = len(states)
    n = max(s.points.shape[0] for s in states)
    L = max(len(s.tokens) for s in states)
    points = torch.zeros(B, n, POINT_CHANNELS)
    pmask = torch.zeros(B, n, dtype=torch.bool)
    tok = torch.zeros(B, L, dtype=torch.long)
    dep = torch.zeros(B, L, dtype=torch.long)
    sid = torch.full((B, L), 2, dtype=torch.long)
    ptok = torch.zeros(B, L, dtype=torch.long)
    nodes = torch.zeros(B, L, n, NODE_CHANNELS)
    nmask = torch.zeros(B, L, dtype=torch.bool)
    for b, s in enumerate(states):
        k, m = s.points.shape[0], len(s.tokens)
        points[b, :k] = torch.from_numpy(s.points)
        pmask[b, :k] = True
        tok[b, :m] = torch.from_numpy(s.tokens)
        dep[b, :m] = torch.from_numpy(s.depth)
        sid[b, :m] = torch.from_numpy(s.side)
        ptok[b, :m] = torch.from_numpy(s.parent_token)
        nodes[b, :m, :k] = torch.from_numpy(s.nodes)
        nmask[b, :m] = True
    return StateBatch(points, pmask, tok, dep, sid, ptok, nodes, nmask)


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.GELU(), nn.Linear(h, h), nn.GELU(), nn.Linear(h, o))


class SetEncoder(nn.Module):
    """DeepSets: per-point MLP, masked mean and max pooling, then an MLP."""

    def __init__(self, in_channels: int = POINT_CHANNELS, hidden: int = 64, out: int = 64):
        super().__init__()
        self.phi = _mlp(in_channels, hidden, hidden)
        self.rho = _mlp(2 * hidden, hidden, out)
        self.out_features = out

    def forward(self, points: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``points`` (..., n, C) and ``mask`` (..., n) -> (..., out)."""
        h = self.phi(points)
        if mask is None:
            mask = torch.ones(points.shape[:-1], dtype=torch.bool, device=points.device)
        m = mask.unsqueeze(-1).to(h.dtype)
        mean = (h * m).sum(-2) / m.sum(-2).clamp_min(1)
        mx = h.masked_fill(~mask.unsqueeze(-1), -1e4).max(-2).values
        return self.rho(torch.cat([mean, mx], -1))


class ProgramEncoder(nn.Module):
    """Transformer over the nodes of a program; each node sees its own output z on the data.

    Returns per-node embeddings (B, L, H), used to embed edit locations, and a pooled
    embedding (B, H) of the whole program.
    """

    MAX_DEPTH = 32

    def __init__(self, hidden: int = 64, layers: int = 2, heads: int = 4, vocab_size: int = len(VOCAB)):
        super().__init__()
        self.hidden = hidden
        self.token = nn.Embedding(vocab_size, hidden)
        self.parent = nn.Embedding(vocab_size, hidden)
        self.depth = nn.Embedding(self.MAX_DEPTH, hidden)
        self.side = nn.Embedding(3, hidden)
        self.node_values = SetEncoder(NODE_CHANNELS + POINT_CHANNELS, hidden, hidden)
        layer = nn.TransformerEncoderLayer(hidden, heads, 2 * hidden, dropout=0.0, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, batch: StateBatch) -> tuple[torch.Tensor, torch.Tensor]:
        B, L, n, _ = batch.nodes.shape
        pts = batch.points.unsqueeze(1).expand(B, L, n, batch.points.shape[-1])
        zf = self.node_values(
            torch.cat([batch.nodes, pts], -1), batch.point_mask.unsqueeze(1).expand(B, L, n)
        )
        h = (
            self.token(batch.tokens)
            + self.parent(batch.parent_token)
            + self.depth(batch.depth.clamp_max(self.MAX_DEPTH - 1))
            + self.side(batch.side)
            + zf
        )
        h = self.transformer(h, src_key_padding_mask=~batch.node_mask)
        m = batch.node_mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp_min(1)
        return h, pooled
