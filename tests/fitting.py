"""One tiny training run through the real ``induce fit``, shared by the models' tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import wandb

from pipelines.cli import main


def fit_tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: Path, *overrides: str) -> Path:
    """Train ``config``'s module for 3 steps in ``tmp_path`` (its run folder under ``runs/``);
    returns the exported checkpoint. ``overrides`` shrink the data and the metrics."""
    monkeypatch.chdir(tmp_path)
    wandb.finish()  # an earlier fit in this process leaves its run open; the logger would reuse it
    out = tmp_path / "model.pt"
    main(
        [
            "fit",
            "--config",
            str(config),
            "--trainer.max_steps=3",
            "--trainer.val_check_interval=3",
            *overrides,
            f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
            f"--trainer.callbacks.init_args.path={out}",
        ]
    )
    wandb.finish()
    assert out.is_file()
    return out
