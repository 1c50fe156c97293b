"""DDP on the CPU: two processes train the edit flow, each on its own simulator stream.

Lightning's ``ddp`` strategy re-launches the command line for the second rank, so the fit
runs in a subprocess (``python -m pipelines.cli``), not inside pytest. A small callback,
defined here and importable by both ranks, writes the targets each rank trained on.
Both ranks must share rank 0's run folder, where rank 0 alone writes ``model.pt``.
It takes 15-60 s on a 2-core machine, so it is marked ``slow`` (run it with ``-m slow``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl

from pipelines.shipped import config_path

REPO = Path(__file__).resolve().parents[1]


class StreamProbe(pl.Callback):
    """Records the target programs of each rank's training batches in ``out_dir/rank<k>.json``."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.keys: list[str] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.keys.extend(str(e.target) + " <- " + str(e.program) for e in batch["examples"].items)

    def on_train_end(self, trainer, pl_module) -> None:
        info = {"rank": trainer.global_rank, "world": trainer.world_size, "keys": self.keys}
        Path(self.out_dir, f"rank{trainer.global_rank}.json").write_text(json.dumps(info))


@pytest.mark.slow
def test_ddp_two_cpu_processes_use_different_streams(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]),
        WANDB_MODE="offline",
        OMP_NUM_THREADS="1",
    )
    cmd = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "fit",
        "--config",
        str(config_path("edit_flow")),
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
        "--trainer.accelerator=cpu",
        "--trainer.max_steps=3",
        "--trainer.val_check_interval=3",
        "--trainer.limit_val_batches=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--data.val_size=8",
        "--data.batch_size=4",
        "--data.num_workers=0",
        "--model.hidden=16",
        "--model.heads=2",
        "--model.context_features=16",
        "--model.flow_hidden=16",
        "--model.nguyen_val=2",
        "--model.table_rows=0",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
        "--trainer.callbacks+=test_ddp.StreamProbe",
        f"--trainer.callbacks.init_args.out_dir={tmp_path}",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world"] == 2 for r in ranks)
    assert all(len(r["keys"]) == 3 * 4 for r in ranks)  # 3 steps of 4 examples on each rank
    assert not set(ranks[0]["keys"]) & set(ranks[1]["keys"]), "the ranks trained on the same examples"
    run_dirs = list((tmp_path / "runs" / "edit_flow").iterdir())
    assert len(run_dirs) == 1, run_dirs  # rank 1 used rank 0's run folder, it made none of its own
    assert (run_dirs[0] / "model.pt").is_file() and (run_dirs[0] / "config.yaml").is_file()
