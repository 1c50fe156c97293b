"""The bench summary as a W&B run: offline and silent unless the user asks otherwise.

``WANDB_MODE`` decides (offline when unset, so no network and no account are ever needed;
``disabled`` skips W&B). The run lives in ``<out>/wandb``; ``wandb sync`` uploads it later.
W&B is a report only: whatever goes wrong there is one warning line, never a failed bench.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.bench.stats import Summary


def rows(s: Summary) -> tuple[list[str], list[list]]:
    """Recovery rates in [0, 1] per task and method, then the mean over tasks."""
    body = [[t, *(None if r != r else float(r) for r in s.rate.loc[t])] for t in s.tasks]
    return ["task", *s.methods], [*body, ["mean", *(s.mean_rate[m] for m in s.methods)]]


def log_summary(s: Summary, meta: dict, out: Path, plot: Path | None = None) -> str | None:
    """Log the summary table, per-method means and the plot; returns a warning line or None."""
    mode = os.environ.get("WANDB_MODE", "offline")
    if mode == "disabled":
        return None
    os.environ.setdefault("WANDB_SILENT", "true")  # the bench's console is its progress and summary
    try:
        import wandb

        settings = wandb.Settings(silent=True, quiet=True, console="off", disable_git=True, save_code=False)
        run = wandb.init(
            project="active-induction",
            dir=str(out),
            mode=mode,
            job_type="bench",
            config=meta,
            settings=settings,
        )
        try:
            columns, data = rows(s)
            run.log({"summary": wandb.Table(columns=columns, data=data)})
            run.summary.update({f"recovery/{m}": v for m, v in s.mean_rate.items() if v is not None})
            if plot is not None and plot.exists():
                run.log({"recovery_vs_calls": wandb.Image(str(plot))})
        finally:
            run.finish()
    except Exception as err:  # noqa: BLE001 - W&B is a report, never a reason to fail
        return f"warning: W&B logging skipped ({type(err).__name__}: {str(err).strip()[:200]})"
    return None
