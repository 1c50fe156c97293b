"""The one nflows wrapper: sbi's sample shape, z-scoring, and a fit of a 1-D bimodal conditional."""

from __future__ import annotations

import pytest
import torch

from flows.density import ConditionalDensity


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.mark.parametrize("kind", ["spline", "affine"])
@pytest.mark.parametrize("features", [1, 3])
def test_shapes(kind: str, features: int) -> None:
    d = ConditionalDensity(features, 5, hidden_features=16, num_transforms=2, kind=kind)
    ctx = torch.randn(7, 5)
    x = torch.randn(7, features)
    assert d.log_prob(x, ctx).shape == (7,)
    s = d.sample(4, ctx)
    assert s.shape == (4, 7, features)  # [n, batch, features], not nflows' [batch, n, features]
    assert torch.isfinite(s).all()
    assert d.loss(x, ctx).dim() == 0


def test_sample_order_follows_context() -> None:
    """Sample [k, b] must belong to context row b: a flow that ignores noise shows it plainly."""
    d = ConditionalDensity(1, 1, hidden_features=16, num_transforms=1, kind="affine")
    d.set_standardization(torch.tensor([[100.0], [100.0 + 1e-6]]))  # scale clamps to 1e-3
    ctx = torch.tensor([[0.0], [1.0], [2.0]])
    s = d.sample(50, ctx)[..., 0]
    assert s.shape == (50, 3)
    assert (s - 100).abs().max() < 1.0  # every row shifted by the same data mean


def test_standardization() -> None:
    d = ConditionalDensity(2, 3, hidden_features=8, num_transforms=1, kind="affine")
    data = torch.randn(500, 2) * torch.tensor([10.0, 0.1]) + torch.tensor([50.0, -3.0])
    d.set_standardization(data)
    assert torch.allclose(d.shift, data.mean(0)) and torch.allclose(d.scale, data.std(0))
    ctx = torch.zeros(4, 3)
    u = torch.randn(4, 2)
    # log p(x) = log p_u((x - shift)/scale) - sum log scale: a change of variables
    d2 = ConditionalDensity(2, 3, hidden_features=8, num_transforms=1, kind="affine")
    d2.load_state_dict({k: v for k, v in d.state_dict().items() if k not in ("shift", "scale")}, strict=False)
    x = u * d.scale + d.shift
    expected = d2.log_prob(u, ctx) - torch.log(d.scale).sum()
    assert torch.allclose(d.log_prob(x, ctx), expected, atol=1e-5)
    s = d.sample(2000, torch.zeros(1, 3))[:, 0]
    assert (s.mean(0) - data.mean(0)).abs().max() < 5.0


def test_bad_shapes_raise() -> None:
    d = ConditionalDensity(2, 3, hidden_features=8, num_transforms=1)
    with pytest.raises(ValueError, match="context must be"):
        d.log_prob(torch.randn(4, 2), torch.randn(4, 5))
    with pytest.raises(ValueError, match="inputs must be"):
        d.log_prob(torch.randn(4, 3), torch.randn(4, 3))
    with pytest.raises(ValueError, match="inputs must be"):
        d.log_prob(torch.randn(5, 2), torch.randn(4, 3))
    with pytest.raises(ValueError, match="context must be"):
        d.sample(3, torch.randn(3))
    with pytest.raises(ValueError, match="unknown flow kind"):
        ConditionalDensity(1, 1, kind="glow")


def test_learns_bimodal_conditional() -> None:
    """x = ±sqrt(c) + noise: the spline flow must put mass on both branches, as the reverse flow needs."""
    d = ConditionalDensity(1, 1, hidden_features=32, num_transforms=2, kind="spline", num_bins=8)

    def batch(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = torch.rand(n, 1) * 3 + 1
        sign = torch.where(torch.rand(n, 1) < 0.5, -1.0, 1.0)
        return sign * c.sqrt() + 0.1 * torch.randn(n, 1), c

    x, c = batch(512)
    d.set_standardization(x)
    opt = torch.optim.Adam(d.parameters(), lr=3e-3)
    first = float(d.loss(x, c).detach())
    for _ in range(200):
        x, c = batch(256)
        opt.zero_grad()
        loss = d.loss(x, c)
        loss.backward()
        opt.step()
    x, c = batch(1024)
    assert float(d.loss(x, c).detach()) < first - 0.5
    s = d.sample(400, torch.tensor([[2.25]]))[:, 0, 0]
    near = lambda m: float(((s - m).abs() < 0.3).float().mean())  # noqa: E731
    assert near(1.5) > 0.25 and near(-1.5) > 0.25  # both modes of ±1.5
    assert near(0.0) < 0.1  # and little mass between them
