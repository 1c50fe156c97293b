"""The incremental forward flow p(y' | x, ŷ, φ, Δφ): a learned, differentiable stand-in for the simulator.

Given a parent state (x, target ŷ, φ with its node outputs z) and a candidate edit, it gives
the density of the child's output y' at each point: a 1-D spline flow per point, whose
context is that point's features, the state, and the edit's embedding. y' is modelled in the
target's units, ``w = slog((y' − mean ŷ) / std ŷ)`` (see :mod:`flows.forward_data`), so the
post-edit NMSE follows from the flow without the simulator; the flow's variable is w minus an
anchor, by default the first-order estimate y + ∂y/∂z·(v_new − z) built from the value the edit
writes at its own node (one operator on the parent's cached values, not a run of the child).
With ``local_value=False`` the anchor is the parent's output and the local value is hidden.

``predict_loss`` scores every candidate of a state with one encoder pass: the Screen stage
ranks candidates by it. Everything from the edit embedding on is differentiable, so
∂(predicted loss)/∂(edit embedding) says which way to move in edit space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from flows.edit_embedding import EDIT_CODE_DIM, edit_codes
from flows.encoders import (
    NODE_CHANNELS,
    POINT_CHANNELS,
    StateBatch,
    collate_states,
    encode_state,
    unslog,
)
from flows.flow_module import PointFlow
from flows.forward_data import (
    CANDIDATE_CHANNELS,
    ForwardBatch,
    candidate_edits,
    candidate_features,
    children,
    collate_forward,
    from_target_units,
    kid_indices,
    make_forward_example,
    sample_state,
    state_extras,
)
from simulator.edits import Edit
from simulator.enumerate import ProgramPrior
from simulator.execute import node_values
from simulator.program import Program
from simulator.scoring import spearman

# the point; the parent's y; the edited node's z and its children's; ∂y/∂z at the node; the candidate
POINT_INPUTS = POINT_CHANNELS + 4 * NODE_CHANNELS + 2 + CANDIDATE_CHANNELS


FORWARD_TABLE_COLUMNS = ["parent", "edit", "predicted_nmse", "true_nmse"]


@dataclass
class ScreenContext:
    """One encoded parent state, reused for every candidate edit of it."""

    program: Program
    X: np.ndarray
    y_target: np.ndarray
    states_z: np.ndarray  # (L, n) the parent's node outputs
    states: StateBatch
    extras: torch.Tensor  # (1, L, n, 2)
    nodes: torch.Tensor  # (1, L, H) per-node embeddings
    pooled: torch.Tensor  # (1, H)
    z_target: torch.Tensor  # (n,) the target, z-scored


@dataclass
class Candidates:
    """The per-candidate inputs of one state's candidate edits."""

    locs: torch.Tensor
    kids: torch.Tensor
    codes: torch.Tensor
    feats: torch.Tensor  # (m, n, CANDIDATE_CHANNELS)
    anchors: torch.Tensor  # (2, m, n)


class ForwardFlow(PointFlow):
    """p(y' | x, ŷ, φ, Δφ) per point, with ``predict_loss`` for screening candidate edits."""

    metric_keys = ("spearman", "spearman_linear_baseline", "spearman_subtree_baseline", "top1_regret")
    table_key = "val/forward_examples"
    table_columns = tuple(FORWARD_TABLE_COLUMNS)

    def __init__(
        self,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 4,
        context_features: int = 48,
        flow_hidden: int = 48,
        num_transforms: int = 3,
        num_bins: int = 8,
        lr: float = 2e-3,
        metric_states: int = 10,
        local_value: bool = True,
        dequantize: float = 0.05,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.init_encoder()
        self.code_proj = nn.Linear(EDIT_CODE_DIM, hidden)
        self.edit_net = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.init_density(POINT_INPUTS + 2 * hidden)

    # ----- the model ------------------------------------------------------------------------
    def edit_embedding(
        self,
        nodes: torch.Tensor,
        pooled: torch.Tensor,
        cand_state: torch.Tensor,
        locs: torch.Tensor,
        codes: torch.Tensor,
    ) -> torch.Tensor:
        """(M, H) embedding of each candidate: what it does (code), where (node), in which state."""
        return self.edit_net(
            torch.cat([self.code_proj(codes), nodes[cand_state, locs], pooled[cand_state]], -1)
        )

    def point_context(
        self,
        states: StateBatch,
        extras: torch.Tensor,
        pooled: torch.Tensor,
        cand_state: torch.Tensor,
        locs: torch.Tensor,
        kids: torch.Tensor,
        feats: torch.Tensor,
        embedding: torch.Tensor,
    ) -> torch.Tensor:
        """(M, n, C) flow context per candidate and point."""
        n = states.points.shape[1]
        if not self.hparams.local_value:  # keep the leaf, hide the node's new value
            feats = torch.cat([feats[..., :2], torch.zeros_like(feats[..., 2:])], -1)
        kid_nodes = [
            states.nodes[cand_state, kids[:, k].clamp_min(0)] * (kids[:, k] >= 0)[:, None, None].float()
            for k in range(2)
        ]
        per_point = torch.cat(
            [
                states.points[cand_state],
                states.nodes[cand_state, 0],
                states.nodes[cand_state, locs],
                *kid_nodes,
                extras[cand_state, locs],
                feats,
            ],
            -1,
        )
        shared = torch.cat([embedding, pooled[cand_state]], -1).unsqueeze(1).expand(-1, n, -1)
        return self.context_net(torch.cat([per_point, shared], -1))

    def batch_context(self, batch: ForwardBatch) -> torch.Tensor:
        nodes, pooled = self.encoder(batch.states)
        emb = self.edit_embedding(nodes, pooled, batch.cand_state, batch.locs, batch.codes)
        return self.point_context(
            batch.states, batch.extras, pooled, batch.cand_state, batch.locs, batch.kids, batch.feats, emb
        )

    def anchor(self, anchors: torch.Tensor) -> torch.Tensor:
        """The per-point origin of the modelled residual: first-order estimate, or the parent's output."""
        return anchors[0] if self.hparams.local_value else anchors[1]

    def log_prob(self, batch: ForwardBatch, noise: float = 0.0) -> torch.Tensor:
        """log p(w) of every real (candidate, point): shape (number of real points,).

        The flow models w minus its anchor. Where the path above the edit is linear, the
        first-order anchor is exact and that residual is exactly 0 for most points; training
        adds Gaussian ``noise`` (dequantisation) so the flow learns a narrow bump there, not a
        spike that starves the other modes.
        """
        ctx = self.batch_context(batch)
        r = (batch.w - self.anchor(batch.anchors))[batch.mask]
        if noise > 0:
            r = r + noise * torch.randn_like(r)
        return self.density.log_prob(r.unsqueeze(-1), ctx[batch.mask])

    # ----- training (the loop itself is PointFlow's) --------------------------------------------
    def flow_values(self, batch: ForwardBatch) -> torch.Tensor:
        return (batch.w - self.anchor(batch.anchors))[batch.mask]

    def train_log_prob(self, batch: ForwardBatch) -> torch.Tensor:
        return self.log_prob(batch, noise=self.hparams.dequantize)

    def batch_size(self, batch: ForwardBatch) -> int:
        return len(batch.locs)

    def held_out_metrics(self, table: list) -> dict | None:
        if self.hparams.metric_states <= 0:
            return None
        return forward_flow_metrics(
            self, n_states=self.hparams.metric_states, seed=1, with_nll=False, table=table
        )

    # ----- screening ------------------------------------------------------------------------
    def screen_context(self, program: Program, X: np.ndarray, y_target: np.ndarray) -> ScreenContext:
        """Encode a parent state once; every candidate of it reuses this."""
        X = np.asarray(X, dtype=np.float64)
        y_target = np.asarray(y_target, dtype=np.float64)
        z = np.stack(node_values(program, X))
        states = collate_states([encode_state(program, X, y_target, list(z))])
        extras = torch.from_numpy(state_extras(program, z, y_target))[None]
        nodes, pooled = self.encoder(states)
        zt = (y_target - y_target.mean()) / (y_target.std() + 1e-300)
        return ScreenContext(
            program, X, y_target, z, states, extras, nodes, pooled, torch.as_tensor(zt, dtype=torch.float32)
        )

    def candidates(self, ctx: ScreenContext, edits: Sequence[Edit]) -> Candidates:
        edits = list(edits)
        z = ctx.states_z
        feats, linear, parent_w = candidate_features(ctx.program, z, ctx.X, ctx.y_target, edits)
        return Candidates(
            torch.as_tensor([e.loc for e in edits], dtype=torch.long),
            torch.from_numpy(kid_indices(ctx.program, edits)),
            torch.from_numpy(edit_codes(edits)),
            torch.from_numpy(feats),
            torch.from_numpy(np.stack([linear, parent_w]).astype(np.float32)),
        )

    def candidate_embeddings(self, ctx: ScreenContext, cands: Candidates) -> torch.Tensor:
        """(m, H) edit embeddings of the candidates: the input that loss gradients flow back to."""
        cand = torch.zeros(len(cands.locs), dtype=torch.long)
        return self.edit_embedding(ctx.nodes, ctx.pooled, cand, cands.locs, cands.codes)

    def loss_from_embeddings(
        self,
        ctx: ScreenContext,
        cands: Candidates,
        embedding: torch.Tensor,
        n_samples: int = 0,
        reduce: str = "median",
    ) -> torch.Tensor:
        """Predicted post-edit NMSE per candidate, differentiable w.r.t. ``embedding``.

        ``n_samples=0`` uses each point's median (the flow's image of the base median, one
        pass, deterministic). Otherwise the per-sample NMSE over reparameterised samples is
        reduced by ``median`` (robust to the rare exploding sample; the default) or ``mean``.
        """
        m = len(cands.locs)
        cand = torch.zeros(m, dtype=torch.long)
        pc = self.point_context(
            ctx.states, ctx.extras, ctx.pooled, cand, cands.locs, cands.kids, cands.feats, embedding
        )
        n = pc.shape[1]
        flat = pc.reshape(m * n, -1)
        if n_samples <= 0:
            r = self._median(flat).reshape(1, m, n)
        else:
            r = self.density.sample(n_samples, flat).reshape(n_samples, m, n)
        w = r + self.anchor(cands.anchors)
        err = (from_target_units(w) - ctx.z_target).square().mean(-1)  # (S, m)
        if err.shape[0] == 1:
            return err[0]
        return err.median(0).values if reduce == "median" else err.mean(0)

    def _median(self, context: torch.Tensor) -> torch.Tensor:
        """Each row's median: 1-D flows are monotone, so the base median maps to it.

        Reaches into nflows' ``Flow._transform`` (nflows is pinned to 0.14): it has no public
        way to push a chosen base point through the inverse with a context.
        """
        noise = torch.zeros(context.shape[0], 1)
        u, _ = self.density.flow._transform.inverse(noise, context=context)
        return (u * self.density.scale + self.density.shift)[:, 0]

    def predict_loss(
        self,
        program: Program,
        X: np.ndarray,
        y_target: np.ndarray,
        edits: Sequence[Edit],
        n_samples: int = 0,
        seed: int = 0,
        chunk: int = 256,
    ) -> np.ndarray:
        """Predicted NMSE of each child ``apply(program, e)`` against ``y_target``, without the simulator.

        One encoder pass for the state, candidates in chunks. ``n_samples=0`` (default) is the
        per-point median plug-in: deterministic, fastest, and on held-out states it ranks
        better than Monte-Carlo NMSE (whose rare exploding draws add noise). With samples the
        result is seeded so rankings repeat.
        """
        if len(edits) == 0:
            return np.zeros(0)
        was_training = self.training
        self.eval()
        out = []
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            ctx = self.screen_context(program, X, y_target)
            for k in range(0, len(edits), chunk):
                cands = self.candidates(ctx, edits[k : k + chunk])
                emb = self.candidate_embeddings(ctx, cands)
                out.append(self.loss_from_embeddings(ctx, cands, emb, n_samples).double().numpy())
        self.train(was_training)
        pred = np.concatenate(out)
        return np.where(np.isfinite(pred), pred, np.inf)  # e.g. a parent that is itself invalid on X


# ----- metrics ------------------------------------------------------------------------------
def subtree_share_baseline(program: Program, edits: Sequence[Edit], parent_loss: float) -> np.ndarray:
    """A simulator-free heuristic: an edit moves the output more the larger the share of the tree it rewrites.

    Predicted loss = parent loss + share, so bigger rewrites rank as riskier.
    """
    size = len(program)
    return np.array([parent_loss + (program.ends[e.loc] - e.loc) / size for e in edits])


def forward_flow_metrics(
    model: ForwardFlow,
    n_states: int = 50,
    seed: int = 0,
    max_candidates: int = 64,
    n_samples: int = 0,
    with_nll: bool = True,
    table: list | None = None,
) -> dict:
    """Held-out quality of the forward flow on fresh random states.

    For each state, up to ``max_candidates`` valid one-edit children (random legal edits,
    as the Screen sees them) get a true NMSE from the simulator and a predicted one from
    ``predict_loss``; the Spearman correlation between them is averaged over states. Beside
    it, on the same candidates: a random order (0 by definition); the subtree-share
    heuristic (no simulator at all); and the first-order estimate y + ∂y/∂z·(v_new − z), which
    reads the same local value as the flow (``local_value=True``) and so is the bar the flow
    must clear. ``top1_regret``: log10 of the true loss of the flow's top candidate over the
    best candidate's (mean over states; ``top1_regret_linear_baseline`` the same for the
    first-order estimate). ``table``, if given, receives a few (program, edit, predicted, true) rows.
    ``nll`` is the held-out negative log-likelihood per point, in target units (nats).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7919]))
    prior = ProgramPrior(1, 12)
    rho, rho_base, rho_lin, regret, regret_lin, nll, npts = [], [], [], [], [], 0.0, 0
    while len(rho) < n_states:
        drawn = sample_state(rng, prior)
        if drawn is None:
            continue
        fs, X, y, parent, _, ev = drawn
        edits = candidate_edits(rng, fs, parent, None, max_candidates // 2 + 1)
        edits, w = children(ev, edits, y)
        edits, w = edits[:max_candidates], w[:max_candidates]
        if len(edits) < 5:
            continue
        zt = (y - y.mean()) / y.std()
        u = unslog(w)
        true = np.mean((u - zt) ** 2, axis=1)
        if np.ptp(true) == 0:
            continue
        pred = model.predict_loss(parent, X, y, edits, n_samples=n_samples, seed=seed)
        parent_loss = float(np.mean((ev.z[0] - y) ** 2) / np.var(y))
        rho.append(spearman(pred, true, undefined=0.0))
        if table is not None and len(table) < 12:
            table.extend([str(parent), str(e), float(p), float(t)] for e, p, t in zip(edits[:4], pred, true))
        rho_base.append(spearman(subtree_share_baseline(parent, edits, parent_loss), true, undefined=0.0))
        _, linear, _ = candidate_features(parent, ev.z, X, y, edits)
        lin_loss = np.mean((unslog(linear) - zt) ** 2, 1)
        rho_lin.append(spearman(lin_loss, true, undefined=0.0))
        regret_lin.append(float(np.log10((true[np.argmin(lin_loss)] + 1e-12) / (true.min() + 1e-12))))
        regret.append(float(np.log10((true[np.argmin(pred)] + 1e-12) / (true.min() + 1e-12))))
        if with_nll:
            with torch.no_grad():
                lp = model.log_prob(collate_forward([make_forward_example(parent, X, y, ev.z, edits, w)]))
            nll -= float(lp.sum())
            npts += lp.numel()
    out = {
        "spearman": float(np.mean(rho)),
        "spearman_subtree_baseline": float(np.mean(rho_base)),
        "spearman_random_baseline": 0.0,
        "spearman_linear_baseline": float(np.mean(rho_lin)),
        "top1_regret": float(np.mean(regret)),
        "top1_regret_linear_baseline": float(np.mean(regret_lin)),
        "n_states": n_states,
    }
    if with_nll:
        out["nll"] = nll / max(npts, 1)
    return out
