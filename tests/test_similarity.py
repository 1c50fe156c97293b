"""The similarity metric M: data, distances, gradients, checkpoints, CLI fit, shipped quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from flows.checkpoint import CheckpointError
from flows.encoders import point_features
from pipelines.shipped import config_path
from similarity.metric import (
    PAIR_CHANNELS,
    SimilarityModule,
    similarity_metrics,
    torch_pair_features,
    torch_point_features,
)
from similarity.pair_data import PairDataModule, benchmark_keys, make_group
from simulator.edits import edit_distance
from simulator.program import parse

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = SimilarityModule.shipped_path()


@pytest.fixture(scope="module", params=[False, True], ids=["embedding", "pair"])
def model(request: pytest.FixtureRequest) -> SimilarityModule:
    """Both heads answer the same interface."""
    torch.manual_seed(0)
    return SimilarityModule(hidden=16, embed_dim=8, pair_head=request.param).eval()


def _xy(n: int = 20, d: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, d))
    return X, np.sin(X[:, 0]) + X[:, -1] ** 2


def test_groups_hold_edit_distances_and_never_a_benchmark() -> None:
    rng = np.random.default_rng(0)
    groups = [g for g in (make_group(rng, max_k=4, n_negatives=2) for _ in range(60)) if g is not None]
    assert len(groups) > 20
    banned = benchmark_keys()
    for g in groups[:10]:
        assert g.Y.shape == (7, 20) and list(g.k) == [0, 1, 2, 3, 4, -1, -1]
        assert np.isfinite(g.Y).all() and (g.Y.std(1) > 0).all()
        progs = [parse(p) for p in g.programs]
        assert g.dist[0] == 0
        assert list(g.dist) == [edit_distance(p, progs[0]) for p in progs]
        assert not any(p.key in banned for p in progs)
    data = PairDataModule(batch_size=4, val_size=8)
    batch = next(iter(data.train_dataloader()))
    assert batch["Y"].shape == (4, 9, 20) and batch["X"].shape == (4, 20, 10) and len(batch["programs"]) == 4


def test_growth_groups_walk_a_shortest_path_to_the_anchor() -> None:
    """Growth chains are programs on the way to the anchor, each labelled with its edits left."""
    rng = np.random.default_rng(1)
    groups = [g for g in (make_group(rng, max_k=4, growth=True) for _ in range(60)) if g is not None]
    assert len(groups) > 10
    for g in groups[:10]:
        progs = [parse(p) for p in g.programs]
        assert g.Y.shape == (7, 20) and list(g.dist) == [edit_distance(p, progs[0]) for p in progs]
        chain = g.dist[1:5]
        assert list(chain) == sorted(chain, reverse=True) and (chain >= 1).all()
        assert list(g.k[:5]) == list(g.dist[:5]) and list(g.k[5:]) == [-1, -1]
    with pytest.raises(ValueError, match="growth_share"):
        PairDataModule(growth_share=1.5)


def test_torch_features_match_point_features() -> None:
    X, y = _xy(d=3)
    Y = np.stack([y, 3 * y - 1, np.exp(y)])
    got = torch_point_features(torch.from_numpy(X), torch.from_numpy(Y)).numpy()
    want = np.stack([point_features(X, row) for row in Y])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_pair_features_see_scale_offset_and_residual() -> None:
    X, y = _xy(d=3)
    Y = np.stack([3 * y - 1, -2 * y, y + X[:, 0]])
    f = torch_pair_features(torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(Y)).numpy()
    assert f.shape == (3, 20, PAIR_CHANNELS)
    np.testing.assert_allclose(f[:, :, :-8], torch_point_features(torch.from_numpy(X), torch.from_numpy(Y)))
    z_diff, z_sum, z_residual = f[..., -6], f[..., -5], f[..., -3]
    assert np.abs(z_diff[0]).max() < 1e-6  # the same shape up to a positive scale and an offset
    assert np.abs(z_sum[1]).max() < 1e-6  # up to a negative scale
    want = (X[:, 0] - X[:, 0].mean()) / X[:, 0].std()  # y − ŷ = −x1: the edit that is left
    np.testing.assert_allclose(z_residual[2], -want, atol=1e-6)


def test_distance_shapes_zero_on_self_and_inf_when_invalid(model: SimilarityModule) -> None:
    X, y = _xy()
    Y = np.stack([y, y + 0.1, np.cos(X[:, 0]), np.full(20, np.nan)])
    d = model.distance(X, y, Y)
    assert d.shape == (4,) and d.dtype == np.float64
    assert np.isfinite(d[:3]).all() and (d[:3] >= 0).all() and (d[:3] <= 2).all() and d[3] == np.inf
    if not model.hparams.pair_head:  # a metric: zero on itself
        assert d[0] == 0.0 and d[1] > 0
    assert model.distance(X, y, y).shape == (1,)
    many = np.tile(y, (500, 1)) + np.linspace(0, 1, 500)[:, None]
    np.testing.assert_allclose(
        model.distance(X[:, :1], y, many, chunk=64), model.distance(X[:, :1], y, many), atol=1e-6
    )


def test_distance_torch_is_differentiable_and_agrees(model: SimilarityModule) -> None:
    X, y = _xy()
    Yh = torch.tensor(np.stack([y + 0.3 * X[:, 0], y, 2 * y]), requires_grad=True)
    d = model.distance_torch(torch.from_numpy(X), Yh, torch.from_numpy(y))
    assert d.shape == (3,)
    if not model.hparams.pair_head:
        assert d[1].item() == 0.0
    d.sum().backward()
    assert torch.isfinite(Yh.grad).all() and Yh.grad[0].abs().sum() > 0
    np.testing.assert_allclose(d.detach().numpy(), model.distance(X, y, Yh.detach().numpy()), atol=1e-5)
    bad = torch.tensor(np.stack([y, np.full(20, np.inf)]), requires_grad=True)
    d2 = model.distance_torch(torch.from_numpy(X), bad, torch.from_numpy(y))
    assert d2[1] == float("inf")
    d2[0].backward()
    assert torch.isfinite(bad.grad).all()
    one = model.distance_torch(torch.from_numpy(X), torch.from_numpy(y + 1.0), torch.from_numpy(y))
    assert one.dim() == 0


def test_export_round_trip(model: SimilarityModule, tmp_path: Path) -> None:
    X, y = _xy()
    Y = np.stack([y + 1, np.sin(y), y**2])
    path = model.export(tmp_path / "sim.pt", {"spearman": 0.5})
    again = SimilarityModule.from_pretrained(path)
    np.testing.assert_array_equal(again.distance(X, y, Y), model.distance(X, y, Y))
    assert again.checkpoint_metrics["spearman"] == 0.5


def test_bad_checkpoints_name_the_file(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt.pt"):
        SimilarityModule.from_pretrained(corrupt)

    class Other(SimilarityModule):
        pass

    other = Other(hidden=8, embed_dim=4).export(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt"):
        SimilarityModule.from_pretrained(other)
    with pytest.raises(CheckpointError, match="missing.pt"):
        SimilarityModule.from_pretrained(tmp_path / "missing.pt")


def test_tiny_fit_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.cli import main

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "sim.pt"
    args = [
        "fit",
        "--config",
        str(config_path("similarity")),
        "--trainer.max_steps=3",
        "--trainer.val_check_interval=3",
        "--trainer.enable_checkpointing=false",
        "--data.init_args.batch_size=4",
        "--data.init_args.val_size=4",
        "--data.init_args.num_workers=0",
        "--model.init_args.hidden=16",
        "--model.init_args.test_pairs=12",
        f"--trainer.callbacks.init_args.path={out}",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
    ]
    assert main(args) == 0
    model = SimilarityModule.from_pretrained(out)
    for key in ("train/loss", "val/spearman", "test/spearman", "test/spearman_nmse"):
        assert key in model.checkpoint_metrics
    runs = list((tmp_path / "runs").glob("similarity/*/wandb/offline-run-*"))
    assert runs and list(runs[0].glob("files/media/table/val/pairs_*.table.json"))


def test_shipped_checkpoint_reaches_its_recorded_spearman() -> None:
    if not SHIPPED.is_file():
        pytest.skip("no shipped similarity checkpoint")
    assert SHIPPED.stat().st_size < 1_000_000
    model = SimilarityModule.from_pretrained()
    recorded = SimilarityModule.recorded_metrics()
    stats = similarity_metrics(model, n=300, seed=0)  # the figure recorded in training, same pairs
    assert stats["spearman"] >= recorded["test/spearman"] - 0.02
    assert stats["spearman"] > stats["spearman_nmse"]
