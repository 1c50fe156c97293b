"""One function-set sampler for every training stream, each stream keeping its distribution.

The three samplers it replaced are copied here as they were, so that the streams the shipped
checkpoints were trained on stay checkable: the pair (similarity) and setting (forward and
reverse flow) streams draw exactly what they drew before, the edit-flow stream the same
distribution.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from flows.edit_data import EDIT_FUNCTION_SETS
from similarity.pair_data import PAIR_FUNCTION_SETS
from simulator.enumerate import SETTING_FUNCTION_SETS, FunctionSetPrior, random_setting, sample_inputs
from simulator.language import BINARY, CONST, FUNCTION_SETS, KOZA, UNARY, FunctionSet


# ----- the samplers FunctionSetPrior replaced, as they were ---------------------------------
def old_edit_sets(rng: np.random.Generator, max_vars: int = 3) -> FunctionSet:
    w = np.array([0.5, 0.3, 0.2, 0.1, 0.1][:max_vars] + [0.1] * max(0, max_vars - 5))
    n_vars = int(rng.choice(np.arange(1, max_vars + 1), p=w / w.sum()))
    r = rng.random()
    if r < 0.25:
        names: list[str] = list(KOZA)
    elif r < 0.4:
        names = list(KOZA) + [CONST]
    else:
        binary = [b for b in BINARY if rng.random() < 0.55] or [str(rng.choice(BINARY))]
        unary = [u for u in UNARY if rng.random() < 0.35]
        names = binary + unary
        if rng.random() < 0.4:
            names.append(CONST)
    if rng.random() < 0.3:
        names += [str(v) for v in rng.choice(np.arange(1, 7), size=int(rng.integers(1, 4)), replace=False)]
    return FunctionSet.from_names(names, n_vars)


def old_pair_sets(rng: np.random.Generator, n_vars: int) -> FunctionSet:
    if rng.random() < 0.6:
        name = ("koza", "ckoza", "arith", "full")[int(rng.choice(4, p=[0.45, 0.3, 0.1, 0.15]))]
        return FunctionSet.from_names(name, n_vars)
    binary = [b for b in BINARY if rng.random() < (0.8 if b != "pow" else 0.15)] or ["add", "mul"]
    unary = [u for u in UNARY if rng.random() < 0.3]
    leaves = [CONST] if rng.random() < 0.5 else []
    leaves += [lit for lit in ("1", "2") if rng.random() < 0.2]
    return FunctionSet.from_names(binary + unary + leaves, n_vars)


def old_setting(rng: np.random.Generator, max_vars: int = 3) -> tuple[FunctionSet, np.ndarray]:
    names = ("koza", "ckoza", "arith", "full")
    name = names[int(rng.integers(len(names)))]
    weights = np.array([0.5, 0.3, 0.2, 0.1, 0.05][:max_vars])
    n_vars = 1 + int(rng.choice(max_vars, p=weights / weights.sum()))
    X = sample_inputs(n_vars, int(rng.integers(12, 31)), rng)
    return FunctionSet.from_names(name, n_vars), X


# ----- the streams ---------------------------------------------------------------------------
def test_pair_stream_draws_what_it_drew() -> None:
    old, new = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(2000):
        n_old, n_new = int(old.integers(1, 4)), int(new.integers(1, 4))
        a, b = old_pair_sets(old, n_old), PAIR_FUNCTION_SETS.sample(new, n_vars=n_new)
        assert a == b
    assert old.random() == new.random()  # and the stream is at the same place


@pytest.mark.parametrize("max_vars", [1, 3, 5])
def test_setting_stream_draws_what_it_drew(max_vars: int) -> None:
    old, new = np.random.default_rng(11), np.random.default_rng(11)
    for _ in range(1000):
        (a, Xa), (b, Xb) = old_setting(old, max_vars), random_setting(new, max_vars=max_vars)
        assert a == b and np.array_equal(Xa, Xb)


def _frequencies(draw, n: int = 20_000) -> tuple[Counter, Counter]:
    rng = np.random.default_rng(3)
    tokens: Counter = Counter()
    n_vars: Counter = Counter()
    for _ in range(n):
        fs = draw(rng)
        tokens.update(t for t in fs.tokens if not t.startswith("x"))
        n_vars[fs.n_vars] += 1
    return Counter({k: v / n for k, v in tokens.items()}), Counter({k: v / n for k, v in n_vars.items()})


def test_edit_stream_keeps_its_distribution() -> None:
    old_tokens, old_vars = _frequencies(old_edit_sets)
    new_tokens, new_vars = _frequencies(lambda rng: EDIT_FUNCTION_SETS.sample(rng, 3))
    assert set(old_tokens) == set(new_tokens)
    assert max(abs(old_tokens[t] - new_tokens[t]) for t in old_tokens) < 0.02
    assert max(abs(old_vars[k] - new_vars[k]) for k in (1, 2, 3)) < 0.02


# ----- the sampler itself ----------------------------------------------------------------------
def test_named_sets_only_by_default() -> None:
    rng = np.random.default_rng(0)
    seen = Counter()
    for _ in range(400):
        fs = SETTING_FUNCTION_SETS.sample(rng, max_vars=2)
        assert fs.name in FUNCTION_SETS and 1 <= fs.n_vars <= 2
        seen[fs.name] += 1
    assert set(seen) == set(FUNCTION_SETS)


def test_subsets_fallback_literals_and_given_variables() -> None:
    rng = np.random.default_rng(0)
    never = FunctionSetPrior(p_named=0.0, p_binary=0.0, fallback=("add",), p_unary=0.0, p_const=1.0)
    fs = never.sample(rng, n_vars=4)
    assert fs.binary == ("add",) and fs.unary == () and fs.leaves == ("x1", "x2", "x3", "x4", CONST)
    always = FunctionSetPrior(
        named=("koza",), literals=("1", "2", "3"), p_literals=1.0, max_literals=2, literals_on_named=True
    )
    for _ in range(50):
        fs = always.sample(rng)
        literals = [t for t in fs.leaves if t.isdigit()]
        assert 1 <= len(literals) <= 2 and len(set(literals)) == len(literals) and fs.name == ""
    one_random = FunctionSetPrior(p_named=0.0, p_binary=0.0, p_unary=0.0, var_weights=())
    assert {len(one_random.sample(rng).binary) for _ in range(20)} == {1}


def test_same_seed_same_sets() -> None:
    draws = [
        [EDIT_FUNCTION_SETS.sample(np.random.default_rng(5), 3) for _ in range(3)],
        [EDIT_FUNCTION_SETS.sample(np.random.default_rng(5), 3) for _ in range(3)],
    ]
    assert draws[0] == draws[1]
