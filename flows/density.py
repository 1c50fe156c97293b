"""One conditional-density interface for every flow, in the manner of sbi's estimators.

nflows 0.14 is old: it returns samples shaped ``[context, samples, features]`` and some of
its transforms use deprecated torch calls. This module wraps it once, so the rest of the
project sees ``log_prob(inputs, context)``, ``sample(n, context) -> [n, batch, features]``
and ``loss(inputs, context)``, with inputs z-scored by statistics taken from data.
"""

from __future__ import annotations

import types
import warnings

import torch
from nflows.distributions.normal import StandardNormal
from nflows.flows.base import Flow
from nflows.transforms.autoregressive import (
    MaskedAffineAutoregressiveTransform,
    MaskedPiecewiseRationalQuadraticAutoregressiveTransform,
)
from nflows.transforms.base import CompositeTransform
from nflows.transforms.permutations import ReversePermutation
from nflows.transforms.splines import rational_quadratic
from torch import nn


def _softmax_small_last_dim(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Softmax with the reduced dimension moved to the front.

    torch's CPU softmax over a short last dimension (the spline's 8 bins) is slow. Over a
    (740, 16, 8) batch it took 1.7 ms against 0.08 ms along the first dimension, on one
    thread with torch 2.13. nflows' spline calls it twice per layer, and that was 44% of the
    edit flow's scoring (docs/speed.md).
    """
    return torch.softmax(x.movedim(dim, 0), 0).movedim(0, dim)


# nflows' spline reads ``F.softmax`` from its own module; give it the fast one, nothing else changes
rational_quadratic.F = types.SimpleNamespace(
    **{**vars(torch.nn.functional), "softmax": _softmax_small_last_dim}
)


class ConditionalDensity(nn.Module):
    """p(inputs | context) as a conditional normalizing flow from nflows.

    ``kind="spline"`` stacks rational-quadratic spline autoregressive layers, which can be
    multimodal even in one dimension; ``kind="affine"`` stacks MAF layers (cheaper).
    Inputs are standardised with buffers set by :meth:`set_standardization` (a batch of
    data, as sbi's builders do), so the flow works at unit scale.
    """

    def __init__(
        self,
        features: int,
        context_features: int,
        hidden_features: int = 64,
        num_transforms: int = 3,
        kind: str = "spline",
        num_bins: int = 8,
        tail_bound: float = 5.0,
    ):
        super().__init__()
        if kind not in ("spline", "affine"):
            raise ValueError(f"unknown flow kind {kind!r}; use 'spline' or 'affine'")
        self.features = features
        self.context_features = context_features
        layers: list[nn.Module] = []
        for k in range(num_transforms):
            if kind == "spline":
                layers.append(
                    MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
                        features=features,
                        hidden_features=hidden_features,
                        context_features=context_features,
                        num_bins=num_bins,
                        tails="linear",
                        tail_bound=tail_bound,
                    )
                )
            else:
                layers.append(
                    MaskedAffineAutoregressiveTransform(
                        features=features, hidden_features=hidden_features, context_features=context_features
                    )
                )
            if features > 1 and k < num_transforms - 1:
                layers.append(ReversePermutation(features))
        self.flow = Flow(CompositeTransform(layers), StandardNormal([features]))
        self.register_buffer("shift", torch.zeros(features))
        self.register_buffer("scale", torch.ones(features))

    @torch.no_grad()
    def set_standardization(self, inputs: torch.Tensor) -> None:
        """Z-score future inputs with the mean and std of this batch."""
        self.shift.copy_(inputs.mean(0))
        self.scale.copy_(inputs.std(0).clamp_min(1e-3))

    def _check(self, inputs: torch.Tensor | None, context: torch.Tensor) -> None:
        if context.dim() != 2 or context.shape[1] != self.context_features:
            raise ValueError(f"context must be [batch, {self.context_features}], got {list(context.shape)}")
        if inputs is not None and (inputs.dim() != 2 or inputs.shape != (context.shape[0], self.features)):
            raise ValueError(
                f"inputs must be [{context.shape[0]}, {self.features}], got {list(inputs.shape)}"
            )

    def log_prob(self, inputs: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """log p(inputs | context), one value per row: shape [batch]."""
        self._check(inputs, context)
        u = (inputs - self.shift) / self.scale
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.flow.log_prob(u, context=context) - torch.log(self.scale).sum()

    def sample(self, n: int, context: torch.Tensor) -> torch.Tensor:
        """``n`` samples per context row, shaped ``[n, batch, features]`` (sbi's order)."""
        self._check(None, context)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            u = self.flow.sample(n, context=context)  # nflows: [batch, n, features]
        return u.permute(1, 0, 2) * self.scale + self.shift

    def loss(self, inputs: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood, the training objective."""
        return -self.log_prob(inputs, context).mean()
