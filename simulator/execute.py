"""The simulator g(φ, x): batched numpy execution, the incremental path, and a torch path.

No operator is "protected": log of a negative number is NaN, and any non-finite value
anywhere in the tree makes the program invalid for that data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

from simulator.language import CONST, is_literal, is_variable, variable_index
from simulator.operators import OPERATORS
from simulator.program import Program


def leaf_value(token: str, X: np.ndarray, const: float = 1.0) -> np.ndarray:
    """The value of a leaf on every row of X (broadcast to shape (n,))."""
    if is_variable(token):
        return X[:, variable_index(token)]
    value = const if token == CONST else float(token)
    return np.full(X.shape[0], value)


def node_values(program: Program, X: np.ndarray) -> list[np.ndarray]:
    """Every node's output z on X, indexed like ``program.tokens``; z[0] is y.

    Non-finite entries are left in place; :func:`is_finite` judges them.
    """
    toks, co = program.tokens, program.const_offsets
    if program.n_vars > X.shape[1]:
        raise ValueError(f"program uses x{program.n_vars} but X has {X.shape[1]} column(s)")
    z: list[np.ndarray | None] = [None] * len(toks)
    stack: list[np.ndarray] = []
    with np.errstate(all="ignore"):
        for i in range(len(toks) - 1, -1, -1):
            t = toks[i]
            op = OPERATORS.get(t)
            if op is None:
                v = leaf_value(t, X, program.consts[co[i]] if t == CONST else 1.0)
            elif op.arity == 1:
                v = op.numpy(stack.pop())
            else:
                a = stack.pop()
                v = op.numpy(a, stack.pop())
            z[i] = v
            stack.append(v)
    return z  # type: ignore[return-value]


def is_finite(values: Iterable[np.ndarray]) -> bool:
    return all(np.isfinite(v).all() for v in values)


def evaluate(program: Program, X: np.ndarray) -> np.ndarray:
    """y = g(φ, X) as float64 of shape (n,); non-finite values are left in place."""
    return node_values(program, X)[0]


def evaluate_many(programs: Sequence[Program], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outputs of many programs on one X: ``(Y (m, n), valid (m,))``.

    A program is valid when every node is finite on every row.
    """
    Y = np.full((len(programs), X.shape[0]), np.nan)
    valid = np.zeros(len(programs), dtype=bool)
    for k, p in enumerate(programs):
        z = node_values(p, X)
        Y[k] = z[0]
        valid[k] = is_finite(z)
    return Y, valid


def value_and_jacobian(
    program: Program, X: np.ndarray, consts: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """y = g(φ, X) and its Jacobian with respect to the constants, ``(k, n)``.

    Forward-mode differentiation through each operator's derivative record: one tree walk
    gives the exact Jacobian, which is what Levenberg-Marquardt needs to fit constants to
    machine precision without torch's per-operation overhead. ``consts`` defaults to the
    program's own values. Non-finite entries are left in place.
    """
    toks, co = program.tokens, program.const_offsets
    consts = np.asarray(program.consts if consts is None else consts, dtype=np.float64)
    k, n = len(consts), X.shape[0]
    stack: list[tuple[np.ndarray, np.ndarray | None]] = []  # (value, tangents); None: no constant below
    with np.errstate(all="ignore"):
        for i in range(len(toks) - 1, -1, -1):
            t = toks[i]
            op = OPERATORS.get(t)
            if op is None:
                v, d = leaf_value(t, X, consts[co[i]] if t == CONST else 1.0), None
                if t == CONST:
                    d = np.zeros((k, n))
                    d[co[i]] = 1.0
            elif op.arity == 1:
                a, da = stack.pop()
                v, d = op.numpy(a), None if da is None else op.derivative(a) * da
            else:
                a, da = stack.pop()
                b, db = stack.pop()
                v, d = op.numpy(a, b), None
                if da is not None or db is not None:
                    ga, gb = op.derivative(a, b)
                    d = (0.0 if da is None else ga * da) + (0.0 if db is None else gb * db)
            stack.append((v, d))
    y, d = stack.pop()
    return y, np.zeros((k, n)) if d is None else np.broadcast_to(d, (k, n))


def torch_forward(
    program: Program, X: torch.Tensor, consts: torch.Tensor | None = None
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """y and every node's z as torch tensors that carry gradients.

    ``X`` is (n, d); ``consts`` (one per const leaf) defaults to the program's values. Both
    may require grad: that is how constants are fitted and how Jacobians ∂L/∂z are taken
    (call ``retain_grad()`` on the z you want).
    """
    toks, co = program.tokens, program.const_offsets
    if consts is None:
        consts = torch.tensor(program.consts, dtype=X.dtype)
    n = X.shape[0]
    z: list[torch.Tensor | None] = [None] * len(toks)
    stack: list[torch.Tensor] = []
    for i in range(len(toks) - 1, -1, -1):
        t = toks[i]
        op = OPERATORS.get(t)
        if op is not None and op.arity == 1:
            v = op.torch(stack.pop())
        elif op is not None:
            a = stack.pop()
            v = op.torch(a, stack.pop())
        elif is_variable(t):
            v = X[:, variable_index(t)]
        elif t == CONST:
            v = consts[co[i]].expand(n)
        elif is_literal(t):
            v = torch.full((n,), float(t), dtype=X.dtype)
        else:  # pragma: no cover - Program already validated tokens
            raise ValueError(f"unknown token {t!r}")
        z[i] = v
        stack.append(v)
    return z[0], z  # type: ignore[return-value]
