"""``induce fit|validate|test``: train any module through LightningCLI and a YAML config.

Every config in ``configs/`` names a ``model`` and ``data`` by ``class_path``; the
default logger is W&B, offline unless the user opts in (``WANDB_MODE=online`` or
``--trainer.logger.init_args.offline=false``). ``ExportCheckpoint`` writes the safe,
shippable checkpoint at the end of ``fit``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.cli import LightningCLI

LOGGER_DEFAULT = {
    "class_path": "pytorch_lightning.loggers.WandbLogger",
    "init_args": {"project": "active-induction", "offline": True, "save_dir": "runs", "log_model": False},
}


class ExportCheckpoint(pl.Callback):
    """At the end of fit, save the module in the shippable format with its last metrics."""

    def __init__(self, path: str):
        self.path = path

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_rank != 0:
            return
        metrics = {
            k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1
        }
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        pl_module.export(self.path, metrics)  # type: ignore[attr-defined]
        print(f"exported {type(pl_module).__name__} to {self.path}")


def lightning_main(args: list[str]) -> None:
    """Run LightningCLI on ``args`` (e.g. ``["fit", "--config", "configs/edit_flow.yaml"]``)."""
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    Path("runs").mkdir(exist_ok=True)
    LightningCLI(
        pl.LightningModule,
        pl.LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"logger": LOGGER_DEFAULT, "accelerator": "cpu"},
        seed_everything_default=0,
    )
