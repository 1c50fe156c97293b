"""The reverse flow and the exact inverse behind it: hand cases, a CLI fit, save/load, the shipped file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from flows.reverse_data import ReverseFlowData, collate_reverse, encode_hole_state
from flows.reverse_flow import ReverseFlow, hole_hits, newton_refine, reverse_flow_metrics
from pipelines.shipped import checkpoint_path, config_path
from simulator.execute import evaluate, node_values
from simulator.inverse import exact_inverse, hole_path, invert_path
from simulator.program import parse
from tests.fitting import fit_tiny

CONFIG = config_path("reverse_flow")
X = np.linspace(0.5, 2.5, 9)[:, None]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _hole(text: str, sub: str) -> tuple:
    """The program, the location of its subtree printed as ``sub``, the true z there, and y."""
    p = parse(text)
    loc = next(i for i in range(len(p)) if str(p.subtree(i)) == sub)
    z = node_values(p, X)
    return p, loc, z[loc], z[0]


@pytest.mark.parametrize(
    ("text", "sub"),
    [
        ("x1 + sin(x1)", "sin(x1)"),
        ("sin(x1) - x1", "sin(x1)"),
        ("x1 - sin(x1)", "sin(x1)"),
        ("x1*exp(x1)", "exp(x1)"),
        ("exp(x1)/x1", "exp(x1)"),
        ("x1/exp(x1)", "exp(x1)"),
        ("log(x1 + 3)", "x1 + 3"),
        ("exp(2*x1)", "2*x1"),
        ("sqrt(x1 + 1)", "x1 + 1"),
        ("-inv(x1 + 1)", "x1 + 1"),
        ("tanh(x1 - 1)", "x1 - 1"),
        ("cube(x1 - 2)", "x1 - 2"),
        ("(x1 - 2)**3", "x1 - 2"),
        ("2**(x1*x1)", "x1*x1"),
        ("(x1 + 2)**(x1 + 1)", "x1 + 1"),
        ("log(exp(x1)*x1 + 1) - cos(x1)", "exp(x1)"),
    ],
)
def test_exact_inverse_recovers_the_subtree(text: str, sub: str) -> None:
    p, loc, z, y = _hole(text, sub)
    v = exact_inverse(p, loc, X, y)
    assert v is not None
    np.testing.assert_allclose(v, z, rtol=1e-9, atol=1e-9)
    assert exact_inverse(p, loc, X, y, principal=False) is not None  # every step one-to-one


def test_principal_branch_is_a_preimage_not_the_truth() -> None:
    p, loc, z, y = _hole("square(x1 - 1.5)", "x1 - 1.5")
    v = exact_inverse(p, loc, X, y)
    assert v is not None and (v >= 0).all()
    np.testing.assert_allclose(np.abs(v), np.abs(z), rtol=1e-9)
    assert not np.allclose(v, z)  # x1 - 1.5 is negative on part of X
    np.testing.assert_allclose(evaluate(p.replace_subtree(loc, parse("x1")), v[:, None]), y, rtol=1e-9)
    assert exact_inverse(p, loc, X, y, principal=False) is None
    p, loc, z, y = _hole("cos(x1)", "x1")
    v = exact_inverse(p, loc, X, y)
    np.testing.assert_allclose(np.cos(v), y, rtol=1e-9)
    assert exact_inverse(p, loc, X, y, principal=False) is None


@pytest.mark.parametrize(
    ("text", "sub", "y"),
    [
        ("(x1 - x1)*exp(x1)", "exp(x1)", None),  # multiplied by zero: any value works
        ("exp(x1)", "x1", -np.ones(9)),  # no real log of a negative target
        ("sin(x1)", "x1", np.full(9, 1.5)),  # out of sin's range
        ("sqrt(x1)", "x1", -np.ones(9)),
        ("x1/exp(x1)", "exp(x1)", np.zeros(9)),  # x/z = 0 has no solution for x != 0
    ],
)
def test_exact_inverse_none_where_no_preimage(text: str, sub: str, y: np.ndarray | None) -> None:
    p, loc, _, y0 = _hole(text, sub)
    assert exact_inverse(p, loc, X, y0 if y is None else y) is None


def test_invert_path_marks_points() -> None:
    p, loc, z, y = _hole("log(x1 + 1)", "x1 + 1")
    y = y.copy()
    y[0] = np.nan
    v, ok, injective = invert_path(p, loc, X, y)
    assert injective and not ok[0] and ok[1:].all()
    np.testing.assert_allclose(v[1:], z[1:])


def test_hole_state_hides_the_path() -> None:
    p, loc, _, y = _hole("x1*sin(x1 + 2)", "x1 + 2")
    s = encode_hole_state(p, loc, X, y)
    assert len(s.tokens) == len(p) - 2  # the subtree x1 + 2 became one hole token
    assert np.abs(s.nodes[[0, 2, 3]]).sum() == 0  # root, sin and the hole carry no values
    assert np.abs(s.nodes[1]).sum() > 0  # the sibling x1 does


def test_newton_refine_reaches_a_preimage() -> None:
    p, loc, z, y = _hole("square(x1 - 1.5) + x1", "x1 - 1.5")
    steps = hole_path(p, loc, X)
    start = z + np.random.default_rng(0).normal(0, 0.1, size=(3, len(z)))
    refined = newton_refine(steps, start, y)
    assert hole_hits(refined, z).all()


def _model() -> ReverseFlow:
    torch.manual_seed(0)
    return ReverseFlow(hidden=16, layers=1, heads=2, context_features=8, flow_hidden=8, num_transforms=1)


def test_sample_hole_shapes_and_save_load(tmp_path: Path) -> None:
    model = _model()
    p, loc, _, y = _hole("x1*sin(x1 + 2)", "x1 + 2")
    raw = model.sample_hole(p, loc, X, y, n=5, refine=False)
    assert raw.shape == (5, len(X)) and np.isfinite(raw).all()
    refined = model.sample_hole(p, loc, X, y, n=5)
    assert refined.shape == (5, len(X))
    again = model.sample_hole(p, loc, X, y, n=5, seed=3)
    np.testing.assert_array_equal(again, model.sample_hole(p, loc, X, y, n=5, seed=3))  # seeded
    data = ReverseFlowData(val_size=4)
    batch = collate_reverse(data.validation_examples())
    path = model.export(tmp_path / "r.pt")
    loaded = ReverseFlow.from_pretrained(path)
    with torch.no_grad():
        torch.testing.assert_close(loaded.log_prob(batch), model.eval().log_prob(batch))


def test_tiny_fit_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = fit_tiny(
        tmp_path, monkeypatch, CONFIG, "--trainer.limit_val_batches=1", "--data.val_size=8",
        "--data.batch_size=8", "--model.metric_holes=2",
    )  # fmt: skip
    assert list((tmp_path / "runs").glob("reverse_flow/*/wandb/offline-run-*"))  # the run folder
    model = ReverseFlow.from_pretrained(out)
    assert "val/nll" in model.checkpoint_metrics


SHIPPED = checkpoint_path("reverse_flow")


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped reverse_flow.pt")
def test_shipped_checkpoint_meets_its_record() -> None:
    """Figures recorded in pipelines/checkpoints/reverse_flow.md for n=20 holes, seed 0, 32 draws,
    minus 0.03."""
    model = ReverseFlow.from_pretrained()
    assert SHIPPED.stat().st_size < 1.5e6
    m = reverse_flow_metrics(model, n=20, seed=0, n_samples=32)
    assert m["raw_hit_point"] >= 0.857 - 0.03 and m["raw_hit_point"] >= 0.5
    assert m["hit_point"] >= 0.938 - 0.03
    assert m["hit_hole"] >= 0.85 - 0.03
    assert m["hit_point"] > m["exact_hit_point"]
