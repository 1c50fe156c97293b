"""Locate: where in the program to edit.

Gradient reasoning: backpropagate the loss through the differentiable simulator to every
node's output z. A node whose output the loss is sensitive to is a good place to edit.
"""

from __future__ import annotations

import numpy as np
import torch

from pipelines.search.problem import Problem
from simulator.execute import torch_forward
from simulator.program import Program


class UniformLocate:
    """Stand-in: every location equally likely."""

    name = "uniform"

    def scores(self, problem: Problem, program: Program) -> np.ndarray:
        return np.full(len(program), 1.0 / len(program))


class GradientLocate:
    """A prior over locations from |∂L/∂z| and the linearised gain.

    L is the normalised squared error, plus M(ŷ, y) when ``similarity`` names a checkpoint.

    For node i with output z_i and gradient g_i = ∂L/∂z_i, a step of size ε·|z_i| along
    −g_i lowers L by about ε·|z_i|·|g_i| (the linearised gain). That gain, normalised and
    mixed with a uniform floor (``floor``) so that no location is ruled out, is the prior.
    """

    name = "gradient"

    def __init__(self, floor: float = 0.3, similarity: str | None = None):
        self.floor = floor
        self.similarity = similarity  # a similarity checkpoint path, or None

    def scores(self, problem: Problem, program: Program) -> np.ndarray:
        n = len(program)
        uniform = np.full(n, 1.0 / n)
        X, y = problem.model_data
        X = torch.as_tensor(X, dtype=torch.float64).requires_grad_(True)
        consts = torch.tensor(program.consts, dtype=torch.float64, requires_grad=True)
        y_hat, z = torch_forward(program, X, consts)
        for v in z:
            if v.requires_grad:
                v.retain_grad()
        y = torch.as_tensor(y, dtype=torch.float64)
        loss = torch.mean((y_hat - y) ** 2) / problem.y_var
        from similarity.metric import pretrained_similarity  # lazy: Lightning loads only when used

        model = pretrained_similarity(self.similarity)
        if model is not None:  # the learned distance to the goal, M(ŷ, y)
            loss = loss + model.distance_torch(X.detach(), y_hat, y)
        if not loss.requires_grad or not torch.isfinite(loss):
            return uniform
        loss.backward()
        gain = np.array(
            [0.0 if v.grad is None else float((v.grad.abs() * (v.detach().abs() + 1e-3)).sum()) for v in z]
        )
        if not np.isfinite(gain).all() or gain.sum() <= 0:
            return uniform
        return self.floor * uniform + (1 - self.floor) * gain / gain.sum()
