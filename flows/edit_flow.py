"""The edit flow p(Δφ | x, ŷ, φ): which local edit brings φ closer to the program behind ŷ.

An edit factorises into where and what: log p(Δφ) = log p(loc) + log p(code | loc).
- *where*: a learned score per node of φ (the program encoder sees each node's output z
  beside ŷ), normalised over the nodes;
- *what*: a conditional spline flow (nflows, through :class:`ConditionalDensity`) over a
  dequantised binary code of the edit's discrete parts (kind, token, new leaf, side),
  conditioned on the location's node embedding and a global summary of (x, ŷ, φ, function
  set). Several next edits are often correct at once; a flow keeps that multimodality
  where a point estimate would average it away.

Scoring every legal candidate costs one encoder pass plus one batched flow ``log_prob``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from flows.checkpoint import Pretrained
from flows.datasets import VALIDATION_SEED_OFFSET, SimulatorStream
from flows.density import ConditionalDensity
from flows.edit_data import (
    EditDataModule,
    EditExample,
    collate_edit_examples,
    function_set_mask,
    nguyen_edit_examples,
)
from flows.encoders import POINT_CHANNELS, VOCAB, ProgramEncoder, SetEncoder, collate_states, encode_state
from flows.schedule import adamw_warmup_cosine
from simulator.edits import KINDS, Edit, legal_edits
from simulator.program import Program

KIND_BITS = max(1, math.ceil(math.log2(len(KINDS))))
TOKEN_BITS = max(1, math.ceil(math.log2(len(VOCAB))))
CODE_DIM = KIND_BITS + 2 * TOKEN_BITS + 1  # kind, token, leaf, side
_KIND_ID = {k: i for i, k in enumerate(KINDS)}


def _bits(ids: np.ndarray, n: int) -> np.ndarray:
    """Most significant bit first, so the flow's autoregression goes coarse to fine."""
    return ((ids[:, None] >> np.arange(n - 1, -1, -1)) & 1).astype(np.float32)


def edit_bits(edits: Sequence[Edit]) -> np.ndarray:
    """The discrete parts of each edit as 0/1 vectors, shape (len(edits), CODE_DIM).

    A fixed binary code keeps the flowed vector small (16 numbers for 40 tokens) and, once
    dequantised with uniform noise, gives every edit a unit cell the flow can put mass on.
    Unused parts (no leaf for a replace, say) code as the padding token, id 0.
    """
    kind = np.fromiter((_KIND_ID[e.kind] for e in edits), np.int64, len(edits))
    tok = np.fromiter((VOCAB.index(e.token) if e.token else 0 for e in edits), np.int64, len(edits))
    leaf = np.fromiter((VOCAB.index(e.leaf) if e.leaf else 0 for e in edits), np.int64, len(edits))
    side = np.fromiter((e.side for e in edits), np.int64, len(edits))
    return np.concatenate(
        [_bits(kind, KIND_BITS), _bits(tok, TOKEN_BITS), _bits(leaf, TOKEN_BITS), _bits(side, 1)], 1
    )


def infer_function_set_mask(program: Program, edits: Sequence[Edit]) -> np.ndarray:
    """The function set as seen from a program and its legal edits (which list every allowed token)."""
    m = np.zeros(len(VOCAB), dtype=np.float32)
    for t in program.tokens:
        m[VOCAB.index(t)] = 1.0
    for e in edits:
        for t in (e.token, e.leaf):
            if t:
                m[VOCAB.index(t)] = 1.0
    return m


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.GELU(), nn.Linear(h, o))


def uniform_topk(n_candidates: int, n_correct: int, k: int) -> float:
    """Chance that a uniformly random top-k holds a correct edit: 1 - C(N-c, k) / C(N, k)."""
    k = min(k, n_candidates)
    miss = 1.0
    for i in range(k):
        miss *= max(n_candidates - n_correct - i, 0) / (n_candidates - i)
    return 1.0 - miss


class EditFlow(Pretrained, pl.LightningModule):
    """Conditional flow over edits; ``score_edits`` ranks a program's legal edits."""

    def __init__(
        self,
        hidden: int = 64,
        encoder_layers: int = 2,
        heads: int = 4,
        context_features: int = 64,
        flow_hidden: int = 64,
        flow_transforms: int = 2,
        num_bins: int = 8,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        warmup_steps: int = 200,
        nguyen_val: int = 36,
        table_rows: int = 8,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.points = SetEncoder(POINT_CHANNELS, hidden, hidden)
        self.program_encoder = ProgramEncoder(hidden, encoder_layers, heads)
        self.fs_embed = nn.Linear(len(VOCAB), hidden)
        self.summary = _mlp(3 * hidden, hidden, hidden)
        self.loc_head = _mlp(2 * hidden, hidden, 1)
        self.context = _mlp(2 * hidden, hidden, context_features)
        self.flow = ConditionalDensity(
            CODE_DIM, context_features, flow_hidden, flow_transforms, "spline", num_bins, tail_bound=2.5
        )
        # the code is known: bits + noise lie in [0, 2); map them to [-2, 2) once, for good
        self.flow.shift.fill_(1.0)
        self.flow.scale.fill_(0.5)
        self._nguyen: list[EditExample] | None = None
        self._table: list[list[Any]] = []

    # ----- the density --------------------------------------------------------------------
    def encode(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-node embeddings (B, L, H), a summary (B, H), and log p(loc) over nodes (B, L)."""
        state = batch["state"]
        nodes, pooled = self.program_encoder(state)
        pts = self.points(state.points, state.point_mask)
        g = self.summary(torch.cat([pts, pooled, self.fs_embed(batch["fs"])], -1))
        logits = self.loc_head(torch.cat([nodes, g.unsqueeze(1).expand_as(nodes)], -1)).squeeze(-1)
        logits = logits.masked_fill(~state.node_mask, -1e9)
        return nodes, g, torch.log_softmax(logits, -1)

    def edit_log_prob(
        self,
        nodes: torch.Tensor,
        g: torch.Tensor,
        loc_logp: torch.Tensor,
        rows: torch.Tensor,
        locs: torch.Tensor,
        codes: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """log p(loc) and log p(code | loc) of edits; ``rows`` says which state each belongs to."""
        ctx = self.context(torch.cat([nodes[rows, locs], g[rows]], -1))
        return loc_logp[rows, locs], self.flow.log_prob(codes, ctx)

    def _label_terms(
        self, batch: dict[str, Any], encoded: tuple | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        nodes, g, loc_logp = encoded or self.encode(batch)
        labels = [e.label for e in batch["examples"].items]
        codes = torch.from_numpy(edit_bits(labels)).to(self.device)
        codes = codes + torch.rand_like(codes)  # uniform dequantisation
        rows = torch.arange(len(labels), device=self.device)
        return self.edit_log_prob(nodes, g, loc_logp, rows, batch["loc"], codes)

    # ----- scoring ------------------------------------------------------------------------
    @torch.no_grad()
    def score_batch(self, examples: Sequence[EditExample], candidates: Sequence[Sequence[Edit]]) -> list:
        """log p of each candidate edit of each example (one encoder pass, one flow pass)."""
        batch = collate_edit_examples(list(examples))
        return self._score(batch["state"], batch["fs"], candidates)

    def _score(self, state, fs: torch.Tensor, candidates: Sequence[Sequence[Edit]]) -> list[np.ndarray]:
        dev = self.device
        state = type(state)(*(t.to(dev) for t in vars(state).values()))
        nodes, g, loc_logp = self.encode({"state": state, "fs": fs.to(dev)})
        flat = [e for c in candidates for e in c]
        if not flat:
            return [np.zeros(0) for _ in candidates]
        rows = torch.repeat_interleave(
            torch.arange(len(candidates)), torch.tensor([len(c) for c in candidates])
        ).to(dev)
        locs = torch.tensor([e.loc for e in flat], dtype=torch.long, device=dev)
        codes = torch.from_numpy(edit_bits(flat)).to(dev) + 0.5  # cell centres
        lp_loc, lp_code = self.edit_log_prob(nodes, g, loc_logp, rows, locs, codes)
        scores = (lp_loc + lp_code).float().cpu().numpy()
        return np.split(scores, np.cumsum([len(c) for c in candidates])[:-1])

    @torch.no_grad()
    def score_edits(
        self,
        program: Program,
        X: np.ndarray,
        y: np.ndarray,
        edits: Sequence[Edit],
        function_set_mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """Log-density of each candidate edit of ``program`` given data (X, y); higher is likelier.

        ``edits`` should be the legal edits of ``program`` in the task's function set; the
        set is read from them unless ``function_set_mask`` (see ``function_set_mask()``) is given.
        """
        edits = list(edits)
        if not edits:
            return np.zeros(0)
        X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
        state = collate_states([encode_state(program, X, np.asarray(y, dtype=np.float64))])
        fs = function_set_mask if function_set_mask is not None else infer_function_set_mask(program, edits)
        was = self.training
        self.eval()
        try:
            return self._score(state, torch.from_numpy(np.asarray(fs, np.float32))[None], [edits])[0]
        finally:
            self.train(was)

    # ----- Lightning ----------------------------------------------------------------------
    def _list_loss(self, batch: dict[str, Any], encoded: tuple | None = None) -> torch.Tensor | None:
        """Listwise cross-entropy −Σ q log softmax(score) over each listed example's candidates
        (traced states with their children's loss ranks), averaged; None if no example has a list.

        The scores are the ones the planner ranks by (cell centres), renormalised over the
        candidates, so the flow learns the ranking of the children a one-step lookahead pays
        simulator calls to see.
        """
        items = batch["examples"].items
        listed = [i for i, e in enumerate(items) if e.candidates]
        if not listed:
            return None
        nodes, g, loc_logp = encoded or self.encode(batch)
        flat = [c for i in listed for c in items[i].candidates]
        sizes = [len(items[i].candidates) for i in listed]
        rows = torch.repeat_interleave(torch.tensor(listed), torch.tensor(sizes)).to(self.device)
        locs = torch.tensor([e.loc for e in flat], dtype=torch.long, device=self.device)
        codes = torch.from_numpy(edit_bits(flat)).to(self.device) + 0.5
        lp_loc, lp_code = self.edit_log_prob(nodes, g, loc_logp, rows, locs, codes)
        groups = torch.split(lp_loc + lp_code, sizes)
        return -sum(
            (torch.from_numpy(items[i].weights).to(self.device) * torch.log_softmax(s, 0)).sum()
            for i, s in zip(listed, groups)
        ) / len(listed)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        encoded = self.encode(batch)
        lp_loc, lp_code = self._label_terms(batch, encoded)
        loss = -(lp_loc + lp_code).mean()
        bs = len(lp_loc)
        self.log("train/loc_nll", -lp_loc.mean(), batch_size=bs)
        self.log("train/code_nll", -lp_code.mean(), batch_size=bs)
        listwise = self._list_loss(batch, encoded)
        if listwise is not None:
            self.log("train/list_ce", listwise, batch_size=bs)
            loss = loss + listwise
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def on_validation_epoch_end(self) -> None:
        self._evaluate_end("val")

    def on_test_epoch_end(self) -> None:
        self._evaluate_end("test")

    def _evaluate(self, batch: dict[str, Any], batch_idx: int, stage: str) -> None:
        """Held-out NLL and top-k accuracy beside the uniform baseline, on the same examples."""
        lp_loc, lp_code = self._label_terms(batch)
        bs = len(lp_loc)
        self.log(f"{stage}/loss", -(lp_loc + lp_code).mean(), prog_bar=True, batch_size=bs, sync_dist=True)
        self.log(f"{stage}/loc_nll", -lp_loc.mean(), batch_size=bs, sync_dist=True)
        self.log(f"{stage}/code_nll", -lp_code.mean(), batch_size=bs, sync_dist=True)
        examples = batch["examples"].items
        for key, value in topk_stats(self, examples).items():
            self.log(f"{stage}/{key}", value, batch_size=bs, sync_dist=True, prog_bar=key == "top5")
        if batch_idx == 0 and self.hparams.table_rows:
            self._table = _table_rows(self, examples[: self.hparams.table_rows])

    def _evaluate_end(self, stage: str) -> None:
        """The Nguyen-derived figures (a fixed set, out of distribution) and the sample table."""
        if self.hparams.nguyen_val and not self.trainer.sanity_checking:
            if self._nguyen is None:
                self._nguyen = nguyen_edit_examples(self.hparams.nguyen_val, seed=0)
            for key, value in topk_stats(self, self._nguyen).items():
                self.log(f"{stage}/nguyen_{key}", value, sync_dist=True)
        from pytorch_lightning.loggers import WandbLogger

        if isinstance(self.logger, WandbLogger) and self._table and self.global_rank == 0:
            columns = ["target", "program", "label", "top5", "hit@5", "candidates", "correct"]
            self.logger.log_table(
                key=f"{stage}/samples", columns=columns, data=self._table, step=self.global_step
            )
        self._table = []

    def configure_optimizers(self):
        total = self.trainer.max_steps if self.trainer and self.trainer.max_steps > 0 else 10_000
        warm = max(1, min(self.hparams.warmup_steps, total // 10))
        return adamw_warmup_cosine(self, self.hparams.lr, self.hparams.weight_decay, warm, total)


# ----- quality metrics ----------------------------------------------------------------------
def _rank(model: EditFlow, examples: Sequence[EditExample]) -> list[tuple[list[Edit], np.ndarray]]:
    cands = [legal_edits(e.program, e.function_set) for e in examples]
    out = []
    step = 64
    for i in range(0, len(examples), step):
        scores = model.score_batch(examples[i : i + step], cands[i : i + step])
        out.extend(zip(cands[i : i + step], scores))
    return out


def topk_stats(model: EditFlow, examples: Sequence[EditExample], ks: Sequence[int] = (1, 5)) -> dict:
    """Top-k accuracy (any correct next edit counts) beside the exact uniform baseline."""
    if not examples:
        return {}
    hits = {k: 0.0 for k in ks}
    base = {k: 0.0 for k in ks}
    was = model.training
    model.eval()
    try:
        ranked = _rank(model, examples)
    finally:
        model.train(was)
    for ex, (cands, scores) in zip(examples, ranked):
        correct = set(ex.correct or ())
        order = np.argsort(-scores, kind="stable")
        for k in ks:
            hits[k] += any(cands[j] in correct for j in order[:k])
            base[k] += uniform_topk(len(cands), sum(c in correct for c in cands), k)
    n = len(examples)
    out = {f"top{k}": hits[k] / n for k in ks}
    out.update({f"uniform_top{k}": base[k] / n for k in ks})
    return out


def _table_rows(model: EditFlow, examples: Sequence[EditExample]) -> list[list[Any]]:
    rows = []
    for ex, (cands, scores) in zip(examples, _rank(model, examples)):
        top = [cands[j] for j in np.argsort(-scores, kind="stable")[:5]]
        correct = set(ex.correct or ())
        rows.append(
            [
                str(ex.target),
                str(ex.program),
                str(ex.label),
                "; ".join(map(str, top)),
                any(e in correct for e in top),
                len(cands),
                len(correct),
            ]
        )
    return rows


def held_out_examples(n: int, seed: int = 0, **data_kwargs: Any) -> list[EditExample]:
    """``n`` random-program edit examples from a stream no training run draws from."""
    dm = EditDataModule(**data_kwargs)

    def make(rng: np.random.Generator) -> EditExample | None:
        return dm.make_example(rng, with_correct=True)

    return list(SimulatorStream(make, 2 * VALIDATION_SEED_OFFSET + seed, 0, n))


def edit_flow_metrics(model: EditFlow, n: int = 200, seed: int = 0) -> dict[str, float]:
    """Top-1/top-5 on held-out random programs and on corrupted Nguyen-1..12, each beside uniform."""
    out: dict[str, float] = {}
    for name, examples in (
        ("random", held_out_examples(n, seed)),
        ("nguyen", nguyen_edit_examples(n, seed)),
    ):
        for key, value in topk_stats(model, examples).items():
            out[f"{name}_{key}"] = float(value)
        out[f"{name}_n"] = float(len(examples))
    return out


__all__ = [
    "CODE_DIM",
    "EditFlow",
    "edit_bits",
    "edit_flow_metrics",
    "function_set_mask",
    "infer_function_set_mask",
    "topk_stats",
    "uniform_topk",
]
