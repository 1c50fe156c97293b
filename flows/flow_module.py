"""What the forward and reverse flows share: a 1-D spline density per point, and its training.

Both flows encode a program (:class:`~flows.encoders.ProgramEncoder`), turn each point's
features into a context with a two-layer MLP, and model one number per point with a
conditional rational-quadratic spline flow. Both standardise the flow's variable on the first
training batch, train by negative log-likelihood with Adam, and after each validation compute
held-out metrics and log a W&B table of examples. :class:`PointFlow` holds that; a subclass
says what its variable is (:meth:`PointFlow.flow_values`), how to score a batch
(``log_prob``) and which metrics to log.

The attribute names (``encoder``, ``context_net``, ``density``, ``standardized``) are the
state-dict keys of the shipped checkpoints, and the modules are created in the order the
subclasses always created them, so a seed gives the same initial weights as before.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from flows.checkpoint import Pretrained
from flows.density import ConditionalDensity
from flows.encoders import ProgramEncoder


class PointFlow(Pretrained, pl.LightningModule):
    """Base class of :class:`~flows.forward_flow.ForwardFlow` and :class:`~flows.reverse_flow.ReverseFlow`.

    A subclass calls ``self.save_hyperparameters()`` (with ``hidden``, ``layers``, ``heads``,
    ``lr`` among them), then :meth:`init_encoder`, its own modules, then :meth:`init_density`.
    """

    metric_keys: tuple[str, ...] = ()  # held-out metrics logged as val/<key>
    table_key: str = ""  # the W&B table of examples logged after each validation
    table_columns: tuple[str, ...] = ()

    # ----- building -----------------------------------------------------------------------
    def init_encoder(self) -> None:
        self.encoder = ProgramEncoder(self.hparams.hidden, self.hparams.layers, self.hparams.heads)

    def init_density(self, context_inputs: int) -> None:
        """The per-point context MLP, the spline flow, and the flag that standardisation is done."""
        c = self.hparams.context_features
        self.context_net = nn.Sequential(nn.Linear(context_inputs, 2 * c), nn.GELU(), nn.Linear(2 * c, c))
        self.density = ConditionalDensity(
            1,
            c,
            self.hparams.flow_hidden,
            self.hparams.num_transforms,
            kind="spline",
            num_bins=self.hparams.num_bins,
        )
        self.register_buffer("standardized", torch.zeros((), dtype=torch.bool))

    # ----- what a subclass says -----------------------------------------------------------
    def flow_values(self, batch: Any) -> torch.Tensor:
        """The flow's variable at every real point of ``batch`` (1-D), to standardise it once."""
        raise NotImplementedError

    def log_prob(self, batch: Any) -> torch.Tensor:
        """log p of every real point of ``batch`` (1-D)."""
        raise NotImplementedError

    def train_log_prob(self, batch: Any) -> torch.Tensor:
        """``log_prob`` as training sees it (e.g. with dequantisation noise)."""
        return self.log_prob(batch)

    def batch_size(self, batch: Any) -> int:
        raise NotImplementedError

    def held_out_metrics(self, table: list) -> dict | None:
        """Metrics on fresh examples after each validation, table rows into ``table``; None skips."""
        return None

    # ----- training -----------------------------------------------------------------------
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if not bool(self.standardized):
            self.density.set_standardization(self.flow_values(batch).unsqueeze(-1))
            self.standardized.fill_(True)
        loss = -self.train_log_prob(batch).mean()
        self.log("train/nll", loss, prog_bar=True, batch_size=self.batch_size(batch))
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val/nll", -self.log_prob(batch).mean(), prog_bar=True, batch_size=self.batch_size(batch))

    def on_validation_epoch_end(self) -> None:
        if getattr(self.trainer, "sanity_checking", False):
            return
        table: list = []
        metrics = self.held_out_metrics(table)
        if metrics is None:
            return
        for key in self.metric_keys:
            self.log(f"val/{key}", metrics[key], batch_size=1)
        log_table = getattr(self.logger, "log_table", None)
        if log_table is not None and self.global_rank == 0:
            log_table(key=self.table_key, columns=list(self.table_columns), data=table)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
