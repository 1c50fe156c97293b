"""The learning-rate schedule every trained module shares."""

from __future__ import annotations

import math
from collections.abc import Callable


def warmup_cosine(warm: int, total: int) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up, then cosine decay to 5%."""

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, total - warm))
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))

    return factor
