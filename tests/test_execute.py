import numpy as np
import torch
from hypothesis import given, settings

from simulator.edits import apply, legal_edits
from simulator.execute import (
    evaluate,
    evaluate_many,
    is_finite,
    node_values,
    torch_forward,
    value_and_jacobian,
)
from simulator.incremental import IncrementalEvaluator
from simulator.program import parse, symbols, to_sympy
from tests.strategies import FULL, inputs, programs


@given(programs())
@settings(max_examples=150, deadline=None)
def test_numpy_torch_sympy_agree(p):
    X = inputs(1, n=8)
    y = evaluate(p, X)
    if not is_finite(node_values(p, X)):
        return
    yt, _ = torch_forward(p, torch.as_tensor(X))
    assert np.allclose(yt.numpy(), y, rtol=1e-9, atol=1e-9)
    xs = symbols(2)
    f = __import__("sympy").lambdify(xs, to_sympy(p, xs), "numpy")
    ys = np.broadcast_to(np.asarray(f(X[:, 0], X[:, 1]), dtype=float), y.shape)
    ok = np.isfinite(ys)
    assert np.allclose(ys[ok], y[ok], rtol=1e-6, atol=1e-8)


@given(programs(max_size=12))
@settings(max_examples=80, deadline=None)
def test_incremental_matches_full(p):
    X = inputs(2)
    edits = legal_edits(p, FULL)
    Yi, vi = IncrementalEvaluator(p, X).evaluate(edits)
    Yf, vf = evaluate_many([apply(p, e) for e in edits], X)
    assert np.array_equal(vi, vf)
    assert np.allclose(Yi[vi], Yf[vf], rtol=1e-9, atol=1e-12)


@given(programs(max_size=12))
@settings(max_examples=60, deadline=None)
def test_torch_gradients_match_finite_differences(p):
    X = torch.as_tensor(inputs(3, n=6))
    if not p.consts or not is_finite(node_values(p, X.numpy())):
        p = parse("sin(1.3*x1) + exp(0.4*x2)*x1")
    c = torch.tensor(p.consts, dtype=torch.float64, requires_grad=True)
    y, _ = torch_forward(p, X, c)
    if not torch.isfinite(y).all() or y.abs().max() > 1e6:
        return  # finite differences lose all precision next to huge values
    y.sum().backward()
    for k in range(len(p.consts)):
        h = 1e-6 * max(1.0, abs(p.consts[k]))
        up, down = list(p.consts), list(p.consts)
        up[k] += h
        down[k] -= h
        fd = (
            evaluate(p.with_consts(up), X.numpy()).sum() - evaluate(p.with_consts(down), X.numpy()).sum()
        ) / (2 * h)
        if np.isfinite(fd):
            assert np.isclose(c.grad[k].item(), fd, rtol=1e-4, atol=1e-5)


@given(programs(max_size=12))
@settings(max_examples=60, deadline=None)
def test_the_forward_mode_jacobian_matches_torch(p):
    """The numpy Jacobian in the constants (Levenberg-Marquardt's) agrees with autograd's."""
    X = inputs(3, n=6)
    if not p.consts or not is_finite(node_values(p, X)):
        p = parse("sin(1.3*x1) + exp(0.4*x2)*x1/(x2 - 2.5)")
    y, J = value_and_jacobian(p, X)
    assert J.shape == (len(p.consts), len(X)) and np.allclose(y, evaluate(p, X), equal_nan=True)
    if not np.isfinite(y).all():
        return
    c = torch.tensor(p.consts, dtype=torch.float64, requires_grad=True)
    jt = torch.autograd.functional.jacobian(lambda c: torch_forward(p, torch.as_tensor(X), c)[0], c)
    ok = np.isfinite(J.T)
    assert np.allclose(J.T[ok], jt.numpy()[ok], rtol=1e-9, atol=1e-9)


def test_non_finite_marks_program_invalid():
    X = np.array([[-1.0], [2.0]])
    _, valid = evaluate_many([parse("log(x1)"), parse("x1 + 1"), parse("exp(exp(exp(exp(x1*9))))")], X)
    assert valid.tolist() == [False, True, False]


def test_node_values_expose_every_node():
    p = parse("sin(x1) + x1")
    z = node_values(p, np.array([[0.5]]))
    assert len(z) == 4 and np.isclose(z[1][0], np.sin(0.5)) and np.isclose(z[0][0], np.sin(0.5) + 0.5)
