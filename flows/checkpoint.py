"""Shipped checkpoints: a safe file format, checked on load.

A checkpoint is a plain dict of tensors and primitive values, saved with ``torch.save``
and read with ``torch.load(..., weights_only=True)``: no pickled code runs on load. It
records the module's class, hyperparameters, vocabulary and format version, so that a
mismatched or corrupt file fails with one clear line naming the file.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from flows.encoders import VOCAB
from pipelines.shipped import CHECKPOINTS, checkpoint_path, note_checkpoint, resolve_checkpoint

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, corrupt, or made for another model."""


def _plain(value: Any) -> Any:
    """Hyperparameters reduced to what ``weights_only`` loading accepts."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def is_fixed_mask(key: str) -> bool:
    """nflows' MADE masks: constants of the architecture that ``__init__`` rebuilds, so they
    are left out of the file (as float buffers they were a quarter of it)."""
    return key.endswith(".mask")


def save_checkpoint(
    module: torch.nn.Module, path: str | Path, hparams: dict, metrics: dict | None = None
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": FORMAT_VERSION,
        "class": f"{type(module).__module__}.{type(module).__qualname__}",
        "hparams": _plain(dict(hparams)),
        "vocab": list(VOCAB.tokens),
        "metrics": _plain(metrics or {}),
        "state_dict": {
            k: v.detach().cpu().contiguous() for k, v in module.state_dict().items() if not is_fixed_mask(k)
        },
    }
    torch.save(payload, path)
    return path


def load_checkpoint(path: str | Path, expected_class: type) -> dict:
    """The checkpoint's payload, after checking it belongs to ``expected_class``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise CheckpointError(f"{path}: not an active-induction checkpoint")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {payload.get('format_version')} != {FORMAT_VERSION}"
        )
    want = f"{expected_class.__module__}.{expected_class.__qualname__}"
    if payload.get("class") != want:
        raise CheckpointError(f"{path}: holds a {payload.get('class')}, not a {want}")
    if list(payload.get("vocab", [])) != list(VOCAB.tokens):
        raise CheckpointError(f"{path}: vocabulary does not match this version of the code")
    return payload


class Pretrained:
    """Mixin for LightningModules: ``export`` to and ``from_pretrained`` from the safe format.

    The module must call ``self.save_hyperparameters()`` so that it can be rebuilt from
    ``hparams`` alone. A class that ``pipelines.shipped.CHECKPOINTS`` lists gets its shipped
    file's name as ``default_checkpoint``; ``from_pretrained()`` with no path reads that file.
    """

    default_checkpoint: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names = [n for n, c in CHECKPOINTS.items() if c == f"{cls.__module__}.{cls.__qualname__}"]
        if names:
            cls.default_checkpoint = f"{names[0]}.pt"

    @classmethod
    def shipped_path(cls) -> Path:
        """The checkpoint that ships for this class."""
        if not cls.default_checkpoint:
            raise CheckpointError(f"no shipped checkpoint for {cls.__name__}")
        return checkpoint_path(cls.default_checkpoint.removesuffix(".pt"))

    def export(self, path: str | Path, metrics: dict | None = None) -> Path:
        # LightningCLI adds private entries (``_class_path``) that are not constructor arguments
        hparams = {k: v for k, v in dict(self.hparams).items() if not k.startswith("_")}  # type: ignore[attr-defined]
        return save_checkpoint(self, path, hparams, metrics)

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None):
        path = resolve_checkpoint(path) if path is not None else cls.shipped_path()
        payload = load_checkpoint(path, cls)
        try:
            model = cls(**payload["hparams"])
        except TypeError as err:
            raise CheckpointError(f"{path}: hyperparameters do not fit {cls.__name__} ({err})") from None
        model.load_weights(path, payload)
        model.eval()
        model.checkpoint_metrics = payload.get("metrics", {})
        model.checkpoint_file = str(Path(path).resolve())  # what a solve records it used
        return model

    def load_weights(self, path: str | Path, payload: dict | None = None) -> None:
        """Copy an exported checkpoint's weights into this module (same architecture)."""
        payload = payload if payload is not None else load_checkpoint(path, type(self))
        try:
            masks = {k: v for k, v in self.state_dict().items() if is_fixed_mask(k)}  # type: ignore[attr-defined]
            self.load_state_dict({**masks, **payload["state_dict"]})  # type: ignore[attr-defined]
        except RuntimeError as err:
            first = str(err).splitlines()[0][:160]
            raise CheckpointError(f"{path}: weights do not fit {type(self).__name__} ({first})") from None

    @classmethod
    def recorded_metrics(cls, path: str | Path | None = None) -> dict:
        path = resolve_checkpoint(path) if path is not None else cls.shipped_path()
        return dict(load_checkpoint(path, cls).get("metrics", {}))


class InitFromPretrained(pl.Callback):
    """Start a fit from an exported checkpoint's weights: fine-tuning, and each round of expert
    iteration. The model's config must describe the same architecture."""

    def __init__(self, path: str):
        self.path = path

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pl_module.load_weights(resolve_checkpoint(self.path))  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=16)
def _load_once(cls: type, path: str | Path | None = None):
    return cls.from_pretrained(path)


def load_pretrained(cls: type, path: str | Path | None = None):
    """``cls.from_pretrained(path)``, loaded once per process and then shared: stages that use the
    same model (the similarity metric in locate and verify) hold one copy, and the planner's inner
    loop asks for it with no file-system call. ``None`` means the shipped checkpoint, as does its
    name (``similarity``); see :func:`pipelines.shipped.resolve_checkpoint`. Every call tells
    :func:`pipelines.shipped.recording_checkpoints` which file is in use (a solve records them)."""
    model = _load_once(cls, path)
    note_checkpoint(model.checkpoint_file)
    return model
