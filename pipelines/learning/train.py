"""``induce fit|validate|test|predict`` through LightningCLI, and ``induce export``.

Every config in ``pipelines/configs/`` names a ``model`` and ``data`` by ``class_path`` (``--config
edit_flow``, a bare name, is the shipped config of that name); the default
logger is W&B, offline unless the user opts in (``WANDB_MODE=online`` or
``--trainer.logger.init_args.offline=false``).

Each run gets its own folder, ``<save_dir>/<name>/<timestamp>/`` (``save_dir`` is the
logger's, ``runs`` by default; ``name`` the logger's run name or the model class): the
config as given, the W&B files, Lightning's ``.ckpt`` files and, at the end of ``fit``, the
shippable ``model.pt`` that :class:`ExportCheckpoint` writes. Training never writes into
``pipelines/checkpoints/``: shipping a model is the explicit
``induce export RUN pipelines/checkpoints/NAME.pt``.

``validate``/``test``/``predict`` need weights: ``--ckpt_path`` takes a Lightning ``.ckpt``
or an exported file (``model.pt``, or a shipped checkpoint by its name, ``similarity``, read with
``weights_only=True``); the model is then built with the hyperparameters the file records.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import LightningCLI

from pipelines.shipped import CHECKPOINTS, checkpoint_path, config_path, resolve_checkpoint

EXPORT_NAME = "model.pt"
RUNS_ROOT = "runs"
RUN_DIR_ENV = "INDUCE_RUN_DIR"  # hands rank 0's run folder to the ranks DDP re-launches
EVAL_COMMANDS = ("validate", "test", "predict")
LIGHTNING_CKPT_ALIASES = ("best", "last", "hpc", "registry")  # --ckpt_path values that are not files

LOGGER_DEFAULT = {
    "class_path": "pytorch_lightning.loggers.WandbLogger",
    "init_args": {"project": "active-induction", "offline": True, "save_dir": RUNS_ROOT, "log_model": False},
}

# Console lines a user can do nothing about: warnings about how Lightning calls its own
# dependencies, and advertisements. Progress, metrics and real errors stay.
QUIET_WARNINGS = (
    r"LightningCLI's args parameter is intended to run from within Python",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)
QUIET_LOG_PREFIXES = ("💡 Tip:", "TPU available:", "HPU available:")


class TrainingError(ValueError):
    """A fit/validate/test/export that cannot run as asked (one line for the user)."""


class ExportCheckpoint(pl.Callback):
    """At the end of fit, save the module in the shippable format with its last metrics.

    The file is the run folder's ``model.pt`` (the trainer's ``default_root_dir``, which
    ``induce fit`` points at the run folder), or ``path`` when given. It is never an existing
    file: that is checked before training starts, so a long run cannot end in a refusal.
    """

    def __init__(self, path: str | None = None):
        self.path = path
        self.written: Path | None = None

    def target(self, trainer: pl.Trainer) -> Path:
        return Path(self.path) if self.path else Path(trainer.default_root_dir) / EXPORT_NAME

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit" and trainer.global_rank == 0 and self.target(trainer).exists():
            raise TrainingError(
                f"{self.target(trainer)} already exists; ExportCheckpoint never overwrites a file "
                "(leave out its path to write into a fresh run folder)"
            )

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_rank != 0 or trainer.fast_dev_run:
            return  # a smoke run ships nothing (lightning_main says what it ran)
        metrics = {
            k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1
        }
        path = self.target(trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        pl_module.export(path, metrics)  # type: ignore[attr-defined]
        self.written = path
        print(f"exported {type(pl_module).__name__} to {path}")
        print(export_hint(path, getattr(pl_module, "default_checkpoint", "") or ""))


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it lies inside it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path.resolve())


def export_hint(path: str | Path, shipped: str) -> str:
    """The ``induce export`` command that ships ``path`` as it stands: to the shipped model of
    that name, with ``--force`` said aloud when that file exists; a new file otherwise."""
    if not shipped:
        return f"to keep it: induce export {path} {Path(path).parent.name}.pt"
    dest = checkpoint_path(shipped.removesuffix(".pt"))
    if dest.exists():
        return f"to ship it (replaces the shipped {shipped}): induce export {path} {_shown(dest)} --force"
    return f"to ship it: induce export {path} {_shown(dest)}"


def smoke_report(subcommand: str, trainer: pl.Trainer, run_dir: Path | None) -> str:
    """What a ``--trainer.fast_dev_run`` run did, since Lightning turns its logger off."""

    def total(counts: Any) -> int:
        return int(sum(n for n in (counts or []) if n != float("inf")))

    parts = []
    if subcommand == "fit":
        parts.append(f"{trainer.global_step} training")
    counts = {
        "fit": ("num_val_batches", "validation"),
        "validate": ("num_val_batches", "validation"),
        "test": ("num_test_batches", "test"),
        "predict": ("num_predict_batches", "predict"),
    }
    attr, what = counts.get(subcommand, ("", ""))
    if attr and total(getattr(trainer, attr, None)):
        parts.append(f"{total(getattr(trainer, attr))} {what}")
    losses = [
        f"{k} {float(v):.4g}"
        for k, v in trainer.callback_metrics.items()
        if k.endswith("loss") and getattr(v, "numel", lambda: 1)() == 1
    ]
    where = f"; {run_dir} holds only its config.yaml" if run_dir is not None else ""
    return (
        f"smoke run (fast_dev_run): {subcommand} ran {' and '.join(parts) or 'no'} batch(es)"
        + (f", {', '.join(losses)}" if losses else "")
        + f". Nothing was saved: no logger, no checkpoints, no {EXPORT_NAME}{where}"
    )


# ----- the exported file format, as seen from here ------------------------------------------------
def read_export(path: str | Path) -> dict | None:
    """The payload of an exported (safe-format) checkpoint, or None for any other file.

    Loaded with ``weights_only=True``, so no code in the file runs; Lightning ``.ckpt`` files
    and unreadable files give None.
    """
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not ours, or not readable: the caller decides
        return None
    if isinstance(payload, dict) and "format_version" in payload and "state_dict" in payload:
        return payload
    return None


def _resolve_export(source: str | Path) -> Path:
    """``source`` as an exported file: itself, a run folder's model.pt, or a name folder's newest."""
    p = Path(source)
    if p.is_file():
        return p
    if p.is_dir():
        if (p / EXPORT_NAME).is_file():
            return p / EXPORT_NAME
        runs = sorted(q for q in p.glob(f"*/{EXPORT_NAME}") if q.is_file())
        if runs:
            return runs[-1]
        raise TrainingError(f"{source}: no {EXPORT_NAME} in this folder or its run folders")
    raise TrainingError(f"{source}: no such file or run folder")


def export_run(source: str | Path, dest: str | Path, force: bool = False) -> Path:
    """Copy a run's exported model to ``dest`` (e.g. ``pipelines/checkpoints/similarity.pt``).

    ``source`` is an exported file, a run folder, or a folder of runs (its newest run is
    taken). An existing ``dest`` is replaced only with ``force``.
    """
    src = _resolve_export(source)
    payload = read_export(src)
    if payload is None:
        raise TrainingError(f"{src}: not an exported model (a Lightning .ckpt cannot be shipped as it is)")
    dest = Path(dest)
    if dest.is_dir():
        raise TrainingError(f"{dest} is a folder; give the file to write, e.g. {dest / 'NAME.pt'}")
    if dest.exists() and not force:
        raise TrainingError(f"{dest} already exists; pass --force to replace it")
    if dest.exists() and dest.resolve() == src.resolve():
        raise TrainingError(f"{dest} is the source itself")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return src


# ----- the Lightning CLI --------------------------------------------------------------------------
def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _loggers(trainer_cfg: Any) -> list:
    value = trainer_cfg.get("logger")
    items = value if isinstance(value, list) else [value]
    return [v for v in items if hasattr(v, "get") and v.get("class_path")]


def new_run_dir(root: str | Path, name: str, suffix: str = "") -> Path:
    """A fresh folder ``root/name/<YYYYmmdd-HHMMSS><suffix>`` (``-2``, ``-3``, ... if taken)."""
    base = Path(root) / name / (time.strftime("%Y%m%d-%H%M%S") + suffix)
    path, k = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            k += 1
            path = base.with_name(f"{base.name}-{k}")


class InduceCLI(LightningCLI):
    """LightningCLI with run folders, exported weights for evaluation, and a quiet console."""

    run_dir: Path | None = None
    _export_weights: Path | None = None

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand]
        ckpt = cfg.get("ckpt_path")
        if self.subcommand in EVAL_COMMANDS and not ckpt:
            raise TrainingError(
                f"{self.subcommand} needs trained weights: add --ckpt_path NAME (a shipped model: "
                f"{', '.join(CHECKPOINTS)}), runs/NAME/STAMP/model.pt (a run's export) or a Lightning .ckpt"
            )
        if ckpt and str(ckpt) not in LIGHTNING_CKPT_ALIASES:
            ckpt = cfg.ckpt_path = str(resolve_checkpoint(str(ckpt)))  # a shipped model by its name
            if not Path(ckpt).is_file():
                raise TrainingError(f"{ckpt}: checkpoint file not found")
        if ckpt:
            self._exported_weights(cfg, str(ckpt))
        loggers = _loggers(cfg.trainer)
        if any("Wandb" in str(lg.get("class_path")) for lg in loggers):
            _quiet_wandb()
        self._make_run_dir(cfg, loggers)
        if self._export_weights is not None:
            cfg.ckpt_path = None  # loaded in after_instantiate_classes, not by Lightning
        for lg in loggers:
            if lg.get("init_args") is not None and "save_dir" in lg.init_args:
                lg.init_args.save_dir = str(self.run_dir)
        cfg.trainer.default_root_dir = str(self.run_dir)

    def _make_run_dir(self, cfg: Any, loggers: list) -> None:
        """The run folder; rank 0 creates it and saves the config as given, DDP ranks reuse it."""
        inherited = os.environ.get(RUN_DIR_ENV)
        if inherited and os.environ.get("LOCAL_RANK", "0") != "0":
            self.run_dir = Path(inherited)
            return
        root, name = RUNS_ROOT, None
        for lg in loggers:
            args = lg.get("init_args") or {}
            root = args.get("save_dir") or root
            name = args.get("name") or name
        if not name:
            name = _snake(str(cfg.model.class_path).rpartition(".")[2]) if cfg.get("model") else "run"
        suffix = "" if self.subcommand == "fit" else f"-{self.subcommand}"
        self.run_dir = new_run_dir(root, str(name), suffix)
        os.environ[RUN_DIR_ENV] = str(self.run_dir)
        self._parser(self.subcommand).save(
            cfg, str(self.run_dir / "config.yaml"), skip_none=False, overwrite=False, multifile=False
        )

    def _exported_weights(self, cfg: Any, ckpt: str) -> None:
        """An exported file as ``--ckpt_path``: the model takes its hyperparameters; we load its weights."""
        payload = read_export(ckpt)
        if payload is None:
            return  # a Lightning .ckpt: Lightning loads it
        if self.subcommand == "fit":
            raise TrainingError(
                f"{ckpt} is an exported model; fit --ckpt_path resumes only from a Lightning .ckpt "
                "(the run folder keeps them)"
            )
        want = str(cfg.model.class_path)
        if payload.get("class") != want:
            raise TrainingError(f"{ckpt} holds a {payload.get('class')}, but the config's model is {want}")
        for key, value in payload.get("hparams", {}).items():
            cfg.model.init_args[key] = value
        self._export_weights = Path(ckpt)

    def after_instantiate_classes(self) -> None:
        if self._export_weights is not None:
            if not hasattr(self.model, "load_weights"):
                raise TrainingError(f"{type(self.model).__name__} cannot load an exported checkpoint")
            self.model.load_weights(self._export_weights)  # checks class and vocabulary; weights_only
            print(f"weights: {self._export_weights} ({type(self.model).__name__})")


def _quiet_wandb() -> None:
    """Apply ``WANDB_SILENT`` before the logger builds its settings (wandb reads it only in setup)."""
    import wandb

    wandb.setup()


class _DropLines(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(QUIET_LOG_PREFIXES)


def quiet_console() -> None:
    """Silence the warnings and log lines listed in ``QUIET_WARNINGS`` and ``QUIET_LOG_PREFIXES``."""
    for pattern in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _DropLines) for f in log.filters):
            log.addFilter(_DropLines())


def lightning_main(args: list[str]) -> InduceCLI:
    """Run LightningCLI on ``args`` (e.g. ``["fit", "--config", "edit_flow"]``); a ``--config``
    that is no file but names a shipped config reads that one."""
    args = _shipped_configs(args)
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    quiet_console()
    cli = None
    try:
        cli = InduceCLI(
            pl.LightningModule,
            pl.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=args,
            save_config_callback=None,  # InduceCLI saves the config, as given, in the run folder
            trainer_defaults={"logger": LOGGER_DEFAULT, "accelerator": "cpu", "enable_model_summary": False},
            seed_everything_default=0,
        )
    finally:
        _finish_wandb()
    if cli.run_dir is not None and os.environ.get("LOCAL_RANK", "0") == "0":
        trainer = getattr(cli, "trainer", None)
        if trainer is not None and trainer.fast_dev_run:
            print(smoke_report(cli.subcommand or "", trainer, cli.run_dir))
        print(f"run folder: {cli.run_dir}")
    return cli


def _shipped_configs(args: list[str]) -> list[str]:
    """``args`` with each ``--config NAME`` that is not a file replaced by the shipped config's path."""
    out = list(args)
    for i, arg in enumerate(out):
        if arg == "--config" and i + 1 < len(out):
            out[i + 1] = str(config_path(out[i + 1]))
        elif arg.startswith("--config="):
            out[i] = f"--config={config_path(arg.removeprefix('--config='))}"
    return out


def _finish_wandb() -> None:
    """Close the W&B run, so its offline files are complete and a next run in this process starts fresh."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()
