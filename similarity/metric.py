"""The similarity metric M(y, ŷ) = ‖E(x, y) − E(x, ŷ)‖, learned from the simulator's topology.

NMSE says how far two outputs are in value; a planner needs to know how many edits separate
the programs behind them. E is a DeepSets encoder of the point set (x, y), trained with a
pairwise logistic ranking loss: for any two pairs in a batch, the one whose programs are
fewer edits apart must get the smaller M. Pairs are ranked within a group (same anchor,
same X) and, with a smaller weight, across groups, so that M is comparable between tasks.

Features are computed in torch (the same numbers as :func:`flows.encoders.point_features`),
so M is differentiable in ŷ: the planner can backpropagate M into a program's node outputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from flows.checkpoint import Pretrained
from flows.datasets import SimulatorStream
from flows.encoders import MAX_VARS, POINT_CHANNELS, SetEncoder, slog
from flows.schedule import adamw_warmup_cosine
from similarity.pair_data import PairDataModule, PairGroup, collate_groups, run_ok
from simulator.edits import corrupt, edit_distance
from simulator.scoring import nmse, spearman

TEST_SEED_OFFSET = 2_000_003  # held-out metric stream; training uses seed, validation seed + 1_000_003


def _zscore_rows(V: torch.Tensor) -> torch.Tensor:
    mu = V.mean(-1, keepdim=True)
    sd = V.std(-1, unbiased=False, keepdim=True)
    return ((V - mu) / (sd + 1e-8)).clamp(-10, 10)


def torch_point_features(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Features of many outputs on shared inputs, differentiable in Y.

    ``X`` (..., n, d) with d <= MAX_VARS and ``Y`` (..., m, n) -> (..., m, n, POINT_CHANNELS),
    equal to ``point_features(X, y)`` row by row: slog(x) per variable, slog(y), z-scored y.
    """
    *lead, n, d = X.shape
    if d > MAX_VARS:
        raise ValueError(f"the similarity model handles at most {MAX_VARS} variables, got {d}")
    m = Y.shape[-2]
    xs = slog(X.to(Y.dtype))
    if d < MAX_VARS:
        xs = torch.cat([xs, xs.new_zeros(*lead, n, MAX_VARS - d)], -1)
    xs = xs.unsqueeze(-3).expand(*lead, m, n, MAX_VARS)
    return torch.cat([xs, slog(Y).unsqueeze(-1), _zscore_rows(Y).unsqueeze(-1)], -1)


PAIR_CHANNELS = POINT_CHANNELS + 8  # the candidate's point channels, then the eight pair channels below


def torch_pair_features(X: torch.Tensor, y: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Features of each candidate output next to the goal, differentiable in Y.

    ``X`` (..., n, d), goal ``y`` (..., n) and candidates ``Y`` (..., m, n) ->
    (..., m, n, PAIR_CHANNELS). Besides each output alone (as :func:`torch_point_features`),
    a pair head sees how the two relate point by point: the difference of their z-scores
    (zero when ŷ is y up to scale and offset), their sum (zero for a negative scale), and
    the residual y − ŷ and ratio y / ŷ, whose shapes say what edit is left. An embedding
    distance ‖E(y) − E(ŷ)‖ cannot see these relations.
    """
    base = torch_point_features(X, Y)  # slog x, slog ŷ, z ŷ
    g = y.unsqueeze(-2).expand_as(Y)
    zg, zy = _zscore_rows(g), base[..., -1]
    residual = g - Y
    safe = torch.where(Y.abs() < 1e-8, torch.full_like(Y, 1e-8), Y)
    ratio = (g / safe).clamp(-1e8, 1e8)
    extra = [slog(g), zg, zg - zy, zg + zy, slog(residual), _zscore_rows(residual)]
    extra += [slog(ratio), _zscore_rows(ratio)]
    return torch.cat([base, torch.stack(extra, -1)], -1)


class SimilarityModule(Pretrained, pl.LightningModule):
    """Contrastive distance to a goal; ``distance`` is the metric M the planner uses.

    Two heads share the training and the interface. The embedding head (the default) is
    M = ‖E(x, y) − E(x, ŷ)‖: ``normalize`` puts embeddings on the unit sphere, so M lies in
    [0, 2]. The pair head (``pair_head``) reads each (y, ŷ) point by point
    (:func:`torch_pair_features`) and returns 2·sigmoid of one DeepSets score, in the same
    range: it is no longer a metric between outputs, only a learned distance to the goal,
    which is what the planner asks of it. ``temperature`` sets how sharply the ranking loss
    separates pairs.
    """

    def __init__(
        self,
        hidden: int = 128,
        embed_dim: int = 32,
        lr: float = 2e-3,
        weight_decay: float = 1e-5,
        temperature: float = 0.05,
        cross_weight: float = 0.5,
        normalize: bool = True,
        table_rows: int = 12,
        test_pairs: int = 300,
        pair_head: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters()
        if pair_head:
            self.encoder = SetEncoder(PAIR_CHANNELS, hidden, 1)
        else:
            self.encoder = SetEncoder(POINT_CHANNELS, hidden, embed_dim)
        self._val: list[dict[str, np.ndarray]] = []

    # ----- distances ---------------------------------------------------------------------------
    def goal_distances(self, X: torch.Tensor, y: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        """M(ŷ, y) with gradients into ``Y``: ``X`` (..., n, d), goal ``y`` (..., n) and
        finite candidates ``Y`` (..., m, n) -> (..., m)."""
        p = next(self.parameters())
        X, y, Y = (t.to(p.device, torch.float64) for t in (X, y, Y))
        if self.hparams.pair_head:
            score = self.encoder(torch_pair_features(X, y, Y).to(p.dtype)).squeeze(-1)
            return 2 * torch.sigmoid(score)
        e = self.encoder(torch_point_features(X, torch.cat([y.unsqueeze(-2), Y], -2)).to(p.dtype))
        if self.hparams.normalize:
            e = torch.nn.functional.normalize(e, dim=-1)
        return torch.linalg.vector_norm(e[..., 1:, :] - e[..., :1, :], dim=-1)  # its gradient at 0 is 0

    def distance_torch(self, X: torch.Tensor, y_hat: torch.Tensor, y_target: torch.Tensor) -> torch.Tensor:
        """M(ŷ, y) with gradients into ``y_hat``: (m, n) or (n,) candidates -> (m,) or ().

        Rows of ``y_hat`` that are not finite get M = inf and a zero gradient.
        """
        X = torch.as_tensor(X)
        X = X.reshape(X.shape[0], -1)
        single = y_hat.dim() == 1
        Yh = y_hat.reshape(1, -1) if single else y_hat
        ok = torch.isfinite(Yh).all(-1)
        Yh = torch.where(ok.unsqueeze(-1), Yh, torch.zeros_like(Yh))
        yt = torch.as_tensor(y_target).reshape(-1).to(Yh.dtype).detach()
        d = self.goal_distances(X, yt, Yh).to(Yh.dtype)
        d = torch.where(ok, d, torch.full_like(d, float("inf")))
        return d[0] if single else d

    def distance(
        self, X: np.ndarray, y: np.ndarray, Y_candidates: np.ndarray, chunk: int = 4096
    ) -> np.ndarray:
        """M(y, ŷ) for every row of ``Y_candidates`` (m, n): (m,) float64, inf where ŷ is not finite."""
        X = torch.as_tensor(np.asarray(X, dtype=np.float64).reshape(len(y), -1))
        yt = torch.as_tensor(np.asarray(y, dtype=np.float64))
        Yc = np.asarray(Y_candidates, dtype=np.float64).reshape(-1, len(y))
        out = np.full(len(Yc), np.inf)
        ok = np.isfinite(Yc).all(-1)
        rows = torch.as_tensor(Yc[ok])
        with torch.no_grad():
            parts = [self.goal_distances(X, yt, rows[i : i + chunk]) for i in range(0, len(rows), chunk)]
        if parts:
            out[ok] = torch.cat(parts).double().cpu().numpy()
        return out

    # ----- training ----------------------------------------------------------------------------
    def _group_distances(self, batch: dict) -> torch.Tensor:
        """M between each group's anchor (row 0) and every member: (B, m - 1)."""
        X, Y = batch["X"], batch["Y"]
        return self.goal_distances(X, Y[:, 0], Y[:, 1:])

    def ranking_loss(self, M: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """Pairwise logistic loss: a pair fewer edits apart must get the smaller M.

        ``M`` and ``dist`` are (B, P). Pairs inside a group weigh 1, pairs across groups
        ``cross_weight``; ties in distance carry no loss.
        """
        B, P = M.shape
        m, d = M.reshape(-1), dist.reshape(-1).to(M.dtype)
        g = torch.arange(B, device=M.device).repeat_interleave(P)
        closer = d.unsqueeze(1) < d.unsqueeze(0)  # [p, q]: p's programs are fewer edits apart
        w = torch.where(g.unsqueeze(1) == g.unsqueeze(0), 1.0, self.hparams.cross_weight) * closer
        margin = (m.unsqueeze(1) - m.unsqueeze(0)) / self.hparams.temperature
        return (torch.nn.functional.softplus(margin) * w).sum() / w.sum().clamp_min(1)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        M = self._group_distances(batch)
        loss = self.ranking_loss(M, batch["dist"][:, 1:])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(M))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        M = self._group_distances(batch)
        loss = self.ranking_loss(M, batch["dist"][:, 1:])
        self.log("val/loss", loss, prog_bar=True, batch_size=len(M))
        Y = batch["Y"].cpu().numpy()
        self._val.append(
            {
                "M": M.double().cpu().numpy(),
                "nmse": np.stack([nmse(y[1:], y[0]) for y in Y]),
                "dist": batch["dist"][:, 1:].cpu().numpy(),
                "k": batch["k"][:, 1:].cpu().numpy(),
                "programs": batch["programs"],
            }
        )

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        cat = {k: np.concatenate([v[k] for v in self._val]) for k in ("M", "nmse", "dist", "k")}
        stats = rank_stats(cat["M"], cat["nmse"], cat["dist"], cat["k"])
        for key, value in stats.items():
            self.log(f"val/{key}", value, sync_dist=True)
        if self.hparams.test_pairs > 0 and not self.trainer.sanity_checking:
            # the held-out figure that the shipped checkpoint records and its test checks again
            held = similarity_metrics(self, n=self.hparams.test_pairs, seed=0)
            self.train()
            for key, value in held.items():
                self.log(f"test/{key}", float(value), sync_dist=True)
        self._log_table(self._val[0])
        self._val = []

    def _log_table(self, first: dict) -> None:
        """A few (anchor, member, edits, M, NMSE) rows, when the logger is W&B."""
        from pytorch_lightning.loggers import WandbLogger

        if not isinstance(self.logger, WandbLogger) or self.global_rank != 0:
            return
        rows = []
        for b, progs in enumerate(first["programs"]):
            for j in range(len(progs) - 1):
                if len(rows) < self.hparams.table_rows and (j in (0, 2, len(progs) - 2)):
                    rows.append(
                        [
                            progs[0],
                            progs[j + 1],
                            int(first["dist"][b, j]),
                            float(first["M"][b, j]),
                            float(first["nmse"][b, j]),
                        ]
                    )
        cols = ["anchor", "member", "edit_distance", "M", "nmse"]
        try:
            self.logger.log_table(key="val/pairs", columns=cols, data=rows, step=self.global_step)
        except Exception as err:  # a logging hiccup must not stop training
            print(f"similarity: could not log the W&B table ({type(err).__name__}: {err})")

    def configure_optimizers(self) -> Any:
        total = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 1000
        return adamw_warmup_cosine(
            self, self.hparams.lr, self.hparams.weight_decay, max(1, total // 20), total
        )


# ----- quality metrics ------------------------------------------------------------------------
def rank_stats(M: np.ndarray, base: np.ndarray, dist: np.ndarray, k: np.ndarray) -> dict[str, float]:
    """Spearman of M and of NMSE against edit distance, arrays (groups, members).

    ``spearman``: pooled over every variant pair (k >= 1), across groups, the headline figure;
    ``spearman_within``: the mean over groups of the per-group correlation, which is what a
    planner ranking candidates for one target sees; ``neg_auc``: how often an unrelated
    program gets a larger M than the one-edit variant of the same anchor.
    """
    var = k >= 1
    out = {
        "spearman": spearman(M[var], dist[var]),
        "spearman_nmse": spearman(base[var], dist[var]),
    }
    within, within_base = [], []
    for g in range(len(M)):
        s = var[g]
        if len(np.unique(dist[g, s])) >= 3:
            within.append(spearman(M[g, s], dist[g, s]))
            within_base.append(spearman(base[g, s], dist[g, s]))
    out["spearman_within"] = float(np.nanmean(within)) if within else float("nan")
    out["spearman_within_nmse"] = float(np.nanmean(within_base)) if within_base else float("nan")
    rows = (k == 1).any(1)  # groups with a one-edit member (a growth chain may lack one)
    neg, one = k[rows] == -1, k[rows] == 1
    if neg.any():
        first = np.nanmax(np.where(one, M[rows], -np.inf), 1, keepdims=True)
        first_b = np.nanmax(np.where(one, base[rows], -np.inf), 1, keepdims=True)
        out["neg_auc"] = float(np.mean((M[rows] > first)[neg]))
        out["neg_auc_nmse"] = float(np.mean((base[rows] > first_b)[neg]))
    return out


def held_out_groups(n: int = 300, seed: int = 0, data: PairDataModule | None = None) -> list[PairGroup]:
    """Groups from a stream no training or validation run draws, holding at least ``n`` variant pairs."""
    data = data or PairDataModule()
    per = data.max_k
    stream = SimulatorStream(data.make_example, TEST_SEED_OFFSET + seed, 0, -(-n // per))
    return list(stream)


def nguyen_groups(seed: int = 0, chains: int = 4, max_k: int = 6) -> list[PairGroup]:
    """Evaluation only: the built-in benchmark formulas, each corrupted along a few random chains.

    The benchmarks are out of distribution for a model trained on random programs; this is
    the figure that says whether M still tracks edit distance there. Never used in training.
    """
    from simulator.suites import TASKS

    rng = np.random.default_rng([seed, 0x5EED])
    out: list[PairGroup] = []
    for task in TASKS.values():
        X, y0 = task.sample("train", seed)
        anchor = task.program()
        for _ in range(chains):
            progs, ys, cur = [anchor], [y0], anchor
            for _ in range(max_k):
                for _ in range(8):
                    nxt, _ = corrupt(cur, task.function_set, 1, rng, max_size=40)
                    y = run_ok(nxt, X)
                    if y is not None:
                        break
                else:
                    break
                cur = nxt
                progs.append(cur)
                ys.append(y)
            if len(progs) == max_k + 1:
                k = np.arange(max_k + 1)
                dist = np.array([edit_distance(p, anchor) for p in progs])
                out.append(PairGroup(X, np.stack(ys), k, dist, [str(p) for p in progs], task.name))
    return out


def _score_groups(model: SimilarityModule, groups: list[PairGroup]) -> dict[str, float]:
    """rank_stats of M and of NMSE on the same groups (one X per group, padded to one batch)."""
    batch = collate_groups(groups)
    model.eval()
    with torch.no_grad():
        M = model._group_distances(batch).double().cpu().numpy()
    base = np.stack([nmse(g.Y[1:], g.Y[0]) for g in groups])
    return rank_stats(M, base, batch["dist"][:, 1:].numpy(), batch["k"][:, 1:].numpy())


def similarity_metrics(
    model: SimilarityModule, n: int = 300, seed: int = 0, data: PairDataModule | None = None
) -> dict[str, float]:
    """M's rank correlation with edit distance on held-out pairs, beside NMSE's on the same pairs.

    The ``nguyen_*`` figures repeat the test on corrupted benchmark formulas (evaluation only).
    """
    groups = held_out_groups(n, seed, data)
    stats = _score_groups(model, groups)
    stats["n_pairs"] = int(sum(int((g.k >= 1).sum()) for g in groups))
    nguyen = _score_groups(model, nguyen_groups(seed))
    stats.update({f"nguyen_{k}": v for k, v in nguyen.items() if not k.startswith("neg")})
    return stats


def pretrained_similarity(path: str | None) -> SimilarityModule | None:
    """The similarity model at ``path`` (shared by every stage that names it), or None."""
    if path is None:
        return None
    from flows.checkpoint import load_pretrained

    return load_pretrained(SimilarityModule, path)
