"""Fit a program's constants to data by gradient (LBFGS through the torch simulator)."""

from __future__ import annotations

import numpy as np
import torch

from simulator.execute import torch_forward
from simulator.program import Program


def fit_constants(program: Program, X: np.ndarray, y: np.ndarray, steps: int = 30) -> tuple[Program, int]:
    """The program with constants fitted to (X, y), and the forward passes spent.

    Starts from the program's current values; keeps them when fitting fails or diverges.
    A program without constants is returned unchanged with zero passes.
    """
    if not program.consts:
        return program, 0
    Xt = torch.as_tensor(X, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    scale = float(np.var(y)) + 1e-12
    c = torch.tensor(program.consts, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [c],
        lr=1.0,
        max_iter=steps,
        tolerance_grad=1e-15,
        tolerance_change=1e-24,
        line_search_fn="strong_wolfe",
    )
    passes = 0

    def closure() -> torch.Tensor:
        nonlocal passes
        passes += 1
        opt.zero_grad()
        y_hat, _ = torch_forward(program, Xt, c)
        loss = torch.mean((y_hat - yt) ** 2) / scale
        if not torch.isfinite(loss):
            return loss
        loss.backward()
        return loss

    best = program
    try:
        opt.step(closure)
        values = c.detach().numpy()
        if np.isfinite(values).all():
            best = program.with_consts(values)
    except (RuntimeError, ValueError, IndexError):  # LBFGS's line search can fail on a cliff
        pass
    return best, passes
