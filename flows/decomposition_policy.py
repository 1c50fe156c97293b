"""The decomposition policy p(operator, sibling | x, z*): which split of a target to try first.

Each step ``z* = op(a, z')`` is scored from a set encoding of its points (x, z*, the
remainder z', the sibling a, and how they compare) plus an embedding of the operator and
side; a softmax over the steps of one target gives the policy. It is trained on random
chains (:mod:`flows.decomposition_data`) to put the steps that peel a real wrap off first,
and the sub-goal stage's recursion (:mod:`pipelines.search.decompose`) searches best-first by its
log-probabilities, where the plain stand-in tries steps in library order.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from flows.checkpoint import Pretrained
from flows.decomposition_data import (
    FEATURE_CHANNELS,
    DecompositionBatch,
    DecompositionExample,
    chain_example,
    collate_steps,
    random_chain,
    step_features,
    step_ops,
)
from flows.encoders import BINARY_OPS, SetEncoder
from simulator.decomposition_steps import DecompositionSteps

TOP_K = (1, 5, 10)


class DecompositionPolicy(Pretrained, pl.LightningModule):
    """Scores every decomposition step of a target; trained by a softmax over the steps with
    every right step as a positive."""

    def __init__(self, hidden: int = 64, lr: float = 2e-3, metric_chains: int = 200):
        super().__init__()
        self.save_hyperparameters()
        self.encoder = SetEncoder(FEATURE_CHANNELS, hidden, hidden)
        self.op = nn.Embedding(2 * len(BINARY_OPS), hidden)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, batch: DecompositionBatch) -> torch.Tensor:
        """Logits (B, C); padded steps are -inf."""
        h = self.encoder(batch.features, batch.point_mask) + self.op(batch.ops)
        logits = self.head(h).squeeze(-1)
        return logits.masked_fill(~batch.step_mask, float("-inf"))

    def loss(self, batch: DecompositionBatch) -> torch.Tensor:
        """-log of the probability mass on the right steps."""
        logits = self(batch)
        right = torch.logsumexp(logits.masked_fill(~batch.positive, float("-inf")), -1)
        return (torch.logsumexp(logits, -1) - right).mean()

    @torch.no_grad()
    def log_probs(
        self, X: np.ndarray, z: np.ndarray, siblings: np.ndarray, steps: DecompositionSteps
    ) -> np.ndarray:
        """log p of each step of target ``z`` (C,)."""
        return self.log_probs_many(X, [z], siblings, [steps])[0]

    @torch.no_grad()
    def log_probs_many(
        self, X: np.ndarray, targets: list[np.ndarray], siblings: np.ndarray, steps: list[DecompositionSteps]
    ) -> list[np.ndarray]:
        """log p of each step of each target on the same points X, in one pass."""
        examples = [
            DecompositionExample(step_features(X, z, siblings, s), step_ops(s), np.zeros(len(s), bool))
            for z, s in zip(targets, steps)
        ]
        logp = torch.log_softmax(self(collate_steps(examples)), -1).double().numpy()
        return [row[: len(s)] for row, s in zip(logp, steps)]

    # ----- training -----------------------------------------------------------------------
    def training_step(self, batch: DecompositionBatch, batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch.ops.shape[0])
        return loss

    def validation_step(self, batch: DecompositionBatch, batch_idx: int) -> None:
        self.log("val/loss", self.loss(batch), prog_bar=True, batch_size=batch.ops.shape[0])

    def on_validation_epoch_end(self) -> None:
        if getattr(self.trainer, "sanity_checking", False):
            return
        metrics = decomposition_metrics(self, n=self.hparams.metric_chains, seed=7)
        for key, value in metrics.items():
            self.log(f"val/{key}", value, batch_size=1)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def first_right_step(policy: DecompositionPolicy | None, example: DecompositionExample) -> int:
    """How many steps are tried before a right one: in the policy's order, or in library order."""
    order = np.arange(len(example.ops))
    if policy is not None:
        with torch.no_grad():
            order = torch.argsort(policy(collate_steps([example]))[0], descending=True).numpy()
    return int(np.flatnonzero(example.positive[order])[0])


def decomposition_metrics(
    policy: DecompositionPolicy | None,
    n: int = 200,
    seed: int = 0,
    examples: list[DecompositionExample] | None = None,
) -> dict[str, float]:
    """How often a right step is among the first k tried, on ``n`` fresh held-out decisions
    (or on ``examples``, such as the decisions of held-out traces' found programs): by the
    policy, and in library order (the plain stand-in, ``plain_top<k>``)."""
    rng = np.random.default_rng([seed, 17])
    hits = {k: [0, 0] for k in TOP_K}
    done = 0
    was_training = policy.training if policy is not None else False
    if policy is not None:
        policy.eval()
    if examples is not None:
        examples = [e for e in examples if e is not None]
        n = len(examples)
    given = iter(examples) if examples is not None else None
    while done < n:
        if given is not None:
            example = next(given)
        else:
            chain = random_chain(rng)
            if chain is None:
                continue
            example = chain_example(chain, int(rng.integers(1, len(chain.values))))
        if example is None:
            continue
        done += 1
        first_plain, first_policy = first_right_step(None, example), first_right_step(policy, example)
        for k in TOP_K:
            hits[k][0] += first_policy < k
            hits[k][1] += first_plain < k
    if policy is not None and was_training:
        policy.train()
    out = {}
    for k in TOP_K:
        out[f"top{k}"] = hits[k][0] / n
        out[f"plain_top{k}"] = hits[k][1] / n
    return out
