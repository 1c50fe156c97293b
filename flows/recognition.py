"""The recognition model p(token in the law | x, y): which operators and variables to enumerate first.

DreamCoder's recognition model reads a task and weights the grammar that enumerates its
programs. Here it reads the data (x, y) and the function set and gives each allowed token a
probability of appearing in the law. The sub-goal stage's library keeps at most
``max_entries`` programs; with many variables or operators that cap cuts programs of 6 or 7
nodes, often the law's parts. Token costs from these probabilities
(:func:`token_costs`) put the programs made of likely tokens first, so the cap keeps them.
The plain stand-in costs every token 1: programs smallest first, as before.

Variables are read by one shared encoder each (x_i beside y), so the model's view does not
depend on how many variables a task has or their order; operators from a summary of all
points and the function set.
"""

from __future__ import annotations

import math

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from flows.checkpoint import Pretrained
from flows.encoders import MAX_VARS, POINT_CHANNELS, VOCAB, SetEncoder
from flows.recognition_data import (
    VARIABLE_CHANNELS,
    RecognitionBatch,
    candidate_tokens,
    collate_recognition,
    random_task,
    recognition_example,
)
from simulator.language import FunctionSet, variables

VARIABLE_IDS = torch.tensor([VOCAB.index(v) for v in variables(MAX_VARS)])
COST_BASE = 4.0  # a token this many times less likely than the likeliest costs one node more
MAX_EXTRA_COST = 3


def _mlp(i: int, h: int, o: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.GELU(), nn.Linear(h, o))


class Recognition(Pretrained, pl.LightningModule):
    """Multi-label logits over the vocabulary; only the task's own tokens are read."""

    def __init__(self, hidden: int = 64, lr: float = 2e-3, metric_tasks: int = 300):
        super().__init__()
        self.save_hyperparameters()
        self.points = SetEncoder(POINT_CHANNELS, hidden, hidden)
        self.variable = SetEncoder(VARIABLE_CHANNELS, hidden, hidden)
        self.fs_embed = nn.Linear(len(VOCAB), hidden)
        self.summary = _mlp(3 * hidden, hidden, hidden)
        self.op_head = nn.Linear(hidden, len(VOCAB))
        self.var_head = _mlp(2 * hidden, hidden, 1)

    def forward(self, batch: RecognitionBatch) -> torch.Tensor:
        """Logits (B, len(VOCAB)); tokens outside the function set are -inf."""
        B = batch.points.shape[0]
        pmask = batch.point_mask.unsqueeze(1).expand(B, MAX_VARS, -1)
        h = self.variable(batch.variables, pmask)  # (B, V, H)
        vm = batch.variable_mask.unsqueeze(-1).to(h.dtype)
        hv = (h * vm).sum(1) / vm.sum(1).clamp_min(1)
        g = self.summary(
            torch.cat([self.points(batch.points, batch.point_mask), self.fs_embed(batch.fs), hv], -1)
        )
        logits = self.op_head(g)
        var_logits = self.var_head(torch.cat([h, g.unsqueeze(1).expand_as(h)], -1)).squeeze(-1)
        logits = logits.index_copy(1, VARIABLE_IDS.to(logits.device), var_logits)
        return logits.masked_fill(batch.fs <= 0, float("-inf"))

    def loss(self, batch: RecognitionBatch) -> torch.Tensor:
        """Binary cross-entropy over the task's tokens."""
        logits, allowed = self(batch), batch.fs > 0
        bce = nn.functional.binary_cross_entropy_with_logits(
            logits.masked_fill(~allowed, 0.0), batch.labels, reduction="none"
        )
        return (bce * allowed).sum() / allowed.sum()

    @torch.no_grad()
    def probabilities(self, function_set: FunctionSet, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """p(token in the law) for each operator and variable of ``function_set``."""
        was = self.training
        self.eval()
        try:
            example = recognition_example(function_set, np.asarray(X, np.float64), np.asarray(y, np.float64))
            p = torch.sigmoid(self(collate_recognition([example]))[0]).double().numpy()
        finally:
            self.train(was)
        return {t: float(p[VOCAB.index(t)]) for t in candidate_tokens(function_set)}

    # ----- training -----------------------------------------------------------------------
    def training_step(self, batch: RecognitionBatch, batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch.points.shape[0])
        return loss

    def validation_step(self, batch: RecognitionBatch, batch_idx: int) -> None:
        self.log("val/loss", self.loss(batch), prog_bar=True, batch_size=batch.points.shape[0])

    def on_validation_epoch_end(self) -> None:
        if getattr(self.trainer, "sanity_checking", False):
            return
        for key, value in recognition_metrics(self, n=self.hparams.metric_tasks, seed=7).items():
            self.log(f"val/{key}", value, batch_size=1)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def token_costs(probabilities: dict[str, float]) -> dict[str, int]:
    """Integer enumeration costs: 1 for the likeliest tokens, one more per factor of
    ``COST_BASE`` less likely, at most ``1 + MAX_EXTRA_COST``."""
    if not probabilities:
        return {}
    top = max(probabilities.values())
    return {
        t: 1 + min(MAX_EXTRA_COST, int(math.log(top / max(p, 1e-12)) / math.log(COST_BASE)))
        for t, p in probabilities.items()
    }


def recognition_metrics(model: Recognition | None, n: int = 300, seed: int = 0) -> dict[str, float]:
    """On ``n`` held-out random laws: the mean rank of the law's tokens among the task's
    tokens, as a share (0 is first), by the model and by a uniform order (0.5 in
    expectation), and the area under the ROC curve (uniform: 0.5)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng([seed, 41])
    coin = np.random.default_rng([seed, 43])  # the uniform order: random, apart from the tasks' stream
    ranks, scores, labels = [], [], []
    done = 0
    while done < n:
        task = random_task(rng)
        if task is None:
            continue
        done += 1
        fs, X, y, program = task
        tokens = candidate_tokens(fs)
        if model is None:
            p = {t: float(coin.random()) for t in tokens}
        else:
            p = model.probabilities(fs, X, y)
        used = set(program.tokens)
        order = sorted(tokens, key=lambda t: -p[t])
        ranks += [order.index(t) / max(len(tokens) - 1, 1) for t in tokens if t in used]
        scores += [p[t] for t in tokens]
        labels += [t in used for t in tokens]
    auc = roc_auc_score(labels, scores) if model is not None else 0.5
    return {"mean_rank": float(np.mean(ranks)), "auc": float(auc)}


def library_metrics(
    model: Recognition | None, n: int = 60, seed: int = 0, cap: int = 20_000, size: int = 7
) -> dict[str, float]:
    """What the library's cap keeps, with the model's token costs and smallest first, on the
    same ``n`` held-out random laws of 5 to ``size`` nodes without constants, over the full
    function set with 3 to 5 variables (where the cap binds): the share whose law is in the
    library (by output), and, over those in both, how many entries it is preceded by."""
    from simulator.enumerate import ProgramPrior, enumerate_exhaustive, output_ok, output_signature
    from simulator.execute import evaluate

    rng = np.random.default_rng([seed, 47])
    prior = ProgramPrior(min_size=5, max_size=size, p_const=0.0)
    found: dict[str, list[bool]] = {"model": [], "plain": []}
    while len(found["plain"]) < n:
        fs = FunctionSet.from_names("full").with_vars(int(rng.integers(3, 6)))
        fs = FunctionSet(fs.unary, fs.binary, tuple(t for t in fs.leaves if t != "const"), fs.name)
        X = np.abs(rng.uniform(-5, 5, (int(rng.integers(20, 101)), fs.n_vars))) + 0.1
        law = prior.sample(fs, rng)
        with np.errstate(all="ignore"):
            y = evaluate(law, X)
            if not output_ok(y):
                continue
        sig = output_signature(y)
        orders = {"plain": None}
        if model is not None:
            orders["model"] = token_costs(model.probabilities(fs, X, y))
        for name, costs in orders.items():
            _, outputs = enumerate_exhaustive(fs, X, size, cap, costs)
            with np.errstate(all="ignore"):  # rounding a huge entry overflows; it is no match
                found[name].append(any(output_signature(o) == sig for o in outputs))
    out = {"laws": float(n), "cap": float(cap), "plain_kept": float(np.mean(found["plain"]))}
    if model is not None:
        a, b = np.array(found["model"]), np.array(found["plain"])
        out.update(kept=float(a.mean()), wins=float(np.sum(a & ~b)), losses=float(np.sum(~a & b)))
    return out
