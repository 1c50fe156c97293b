"""Each operator record's parts agree with one another, and a new operator is one entry."""

import numpy as np
import pytest
import sympy
import torch

from simulator import operators
from simulator.execute import evaluate, torch_forward
from simulator.language import FunctionSet, arity
from simulator.operators import OPERATORS, Operator
from simulator.program import parse

RNG = np.random.default_rng(0)
A = RNG.uniform(0.3, 1.4, 64)  # inside every operator's domain
B = RNG.uniform(0.3, 1.4, 64)


def _args(op: Operator) -> tuple[np.ndarray, ...]:
    return (A,) if op.arity == 1 else (A, B)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_numpy_torch_and_sympy_agree(name):
    op = OPERATORS[name]
    args = _args(op)
    expected = op.numpy(*args)
    got = op.torch(*(torch.as_tensor(a) for a in args)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    syms = sympy.symbols("a b")[: op.arity]
    f = sympy.lambdify(syms, op.sympy(*syms), "numpy")
    np.testing.assert_allclose(f(*args), expected, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_derivatives_match_autograd(name):
    op = OPERATORS[name]
    tensors = [torch.tensor(a, requires_grad=True) for a in _args(op)]
    out = op.torch(*tensors)
    firsts = torch.autograd.grad(out.sum(), tensors, create_graph=True)
    d1 = op.derivative(*_args(op))
    d1 = (d1,) if op.arity == 1 else d1
    d2 = op.second_derivative(*_args(op))
    d2 = (d2,) if op.arity == 1 else d2
    for k, (g, t) in enumerate(zip(firsts, tensors)):
        np.testing.assert_allclose(d1[k], g.detach().numpy(), rtol=1e-9, atol=1e-12)
        second = (
            torch.autograd.grad(g.sum(), t, retain_graph=True, allow_unused=True)[0]
            if g.requires_grad
            else None
        )
        second = np.zeros_like(A) if second is None else second.detach().numpy(force=True)
        np.testing.assert_allclose(d2[k], second, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_inverse_undoes_the_operator(name):
    op = OPERATORS[name]
    if op.arity == 1:
        z = op.numpy(A)
        pre, unique = op.inverse(z)
        np.testing.assert_allclose(op.numpy(pre), z, rtol=1e-9)
        if unique:
            np.testing.assert_allclose(pre, A, rtol=1e-9)
        return
    z = op.numpy(A, B)
    left, _ = op.inverse(z, B, 0)  # the hole on the left, B its sibling
    right, _ = op.inverse(z, A, 1)
    np.testing.assert_allclose(op.numpy(left, B), z, rtol=1e-9)
    np.testing.assert_allclose(op.numpy(A, right), z, rtol=1e-9)


@pytest.mark.parametrize("name", sorted(n for n, op in OPERATORS.items() if op.arity == 1))
def test_an_operator_that_is_not_one_to_one_lists_its_other_branches(name):
    op = OPERATORS[name]
    z = op.numpy(A)
    principal, unique = op.inverse(z)
    assert unique == (op.branches is None)
    if op.branches is not None:
        others = op.branches(principal)
        assert others.shape[1:] == principal.shape and len(others) >= 1
        np.testing.assert_allclose(op.numpy(others), np.broadcast_to(z, others.shape), rtol=1e-9, atol=1e-12)
        assert not any(np.allclose(row, principal) for row in others)


def test_operators_parse_print_and_export_from_the_registry():
    for name, op in OPERATORS.items():
        text = f"{name}(x1)" if op.arity == 1 else f"{name}(x1, x2)"
        p = parse(text)
        assert p.tokens[0] == name and arity(name) == op.arity
        X = np.column_stack([A, B])
        np.testing.assert_allclose(evaluate(parse(str(p)), X), evaluate(p, X), rtol=1e-12)


def test_a_new_operator_is_one_entry(monkeypatch):
    """Registering sinh is enough to parse, run, differentiate, export and search with it; the
    shipped models, which never saw it, step aside for programs that use it."""
    monkeypatch.setitem(
        OPERATORS,
        "sinh",
        Operator(
            "sinh",
            1,
            np.sinh,
            torch.sinh,
            sympy.sinh,
            np.cosh,
            np.sinh,
            lambda z: (np.arcsinh(z), True),
            sympy_function=sympy.sinh,
        ),  # fmt: skip
    )
    p = parse("sinh(x1) + x1")
    X = A[:, None]
    np.testing.assert_allclose(evaluate(p, X), np.sinh(A) + A)
    y, _ = torch_forward(p, torch.as_tensor(X))
    np.testing.assert_allclose(y.numpy(), np.sinh(A) + A)
    assert p.to_sympy() == sympy.sinh(sympy.Symbol("x1", real=True)) + sympy.Symbol("x1", real=True)
    fs = FunctionSet.from_names("add,sinh")
    assert fs.unary == ("sinh",)
    from pipelines.interface.pipeline import InductionPipeline

    res = InductionPipeline.preset("full").solve(X, np.sinh(A) + A, function_set=fs, calls=3000, seconds=600)
    assert res.loss < 1e-12 and "sinh" in str(res.program)


def test_register_rejects_a_bad_arity():
    with pytest.raises(ValueError, match="arity"):
        operators.register(Operator("bad", 3, *([None] * 6)))
