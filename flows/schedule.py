"""The learning-rate schedule (and optimizer) the trained modules share."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def warmup_cosine(warm: int, total: int) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up, then cosine decay to 5%."""

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, total - warm))
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))

    return factor


def adamw_warmup_cosine(
    module: torch.nn.Module, lr: float, weight_decay: float, warm: int, total: int
) -> dict:
    """AdamW with :func:`warmup_cosine` stepped per optimizer step, as Lightning expects it."""
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_cosine(warm, total))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
