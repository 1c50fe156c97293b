"""Recursive decomposition: labels from chains, the best-first search, and the learned order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from flows.decomposition_data import Chain, chain_example, found_chain, run_chains
from flows.decomposition_policy import DecompositionPolicy, decomposition_metrics
from pipelines.search.decompose import decompose, wrap
from pipelines.search.library import Library
from pipelines.search.problem import Problem
from pipelines.search.subgoal import LibrarySubgoal
from pipelines.shipped import checkpoint_path, config_path
from simulator.branches import branch_preimages
from simulator.decomposition_steps import decomposition_steps, sibling_library
from simulator.enumerate import enumerate_exhaustive
from simulator.execute import evaluate
from simulator.language import FunctionSet
from simulator.operators import OPERATORS
from simulator.program import Program, parse
from simulator.trace_store import program_record
from tests.fitting import fit_tiny

REPO = Path(__file__).resolve().parents[1]
CONFIG = config_path("decomposition_policy")
SHIPPED = checkpoint_path("decomposition_policy")
KOZA = FunctionSet.from_names("Koza")


def _x(n: int = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, 1))


def test_every_step_leaves_the_remainder_its_operator_undoes():
    X = _x()
    _, sib = sibling_library(KOZA, X)
    z = evaluate(parse("x1*x1*x1 + sin(x1)"), X)
    steps = decomposition_steps(z, sib, KOZA.binary)
    assert len(steps) > 20
    for op, left, k, rest in zip(steps.ops, steps.sibling_left, steps.siblings, steps.remainders):
        f = OPERATORS[op].numpy
        back = f(sib[k], rest) if left else f(rest, sib[k])
        assert np.allclose(back, z, rtol=1e-9, atol=1e-9)
    assert len({r.round(6).tobytes() for r in steps.remainders}) == len(steps)  # each rest once


def test_chain_labels_mark_the_steps_that_peel_a_wrap():
    """z = x1 * (sin(x1) - x1): at level 2 the right steps leave sin(x1) - x1, at level 1 sin(x1)."""
    X = _x()
    programs, sib = sibling_library(KOZA, X)
    x = X[:, 0]
    values = [np.sin(x), np.sin(x) - x, x * (np.sin(x) - x)]
    chain = Chain(X, KOZA, sib, values)
    top = chain_example(chain, 2)
    steps = decomposition_steps(values[2], sib, KOZA.binary)
    right = {(steps.ops[c], str(programs[steps.siblings[c]])) for c in np.flatnonzero(top.positive)}
    assert ("mul", "x1") in right  # peel the outer x1 * ...
    assert ("div", "x1") not in right
    inner = chain_example(chain, 1)
    steps1 = decomposition_steps(values[1], sib, KOZA.binary)
    assert {steps1.ops[c] for c in np.flatnonzero(inner.positive)} == {"sub"}


def _solved_task(found: Program, X: np.ndarray) -> dict:
    """A traced run's task record, solved by ``found``."""
    return {
        "function_set": ",".join(KOZA.to_names()),
        "n_vars": 1,
        "X": torch.as_tensor(X),
        "y": torch.as_tensor(evaluate(found, X)),
        "found": program_record(found),
        "solved": True,
    }


def test_a_found_program_gives_the_chain_of_its_decomposition():
    """The traces' hindsight label: x1 * (sin(x1)*cos(x1) - x1) peels x1, x1 and sin(x1)."""
    X = _x()
    found = parse("x1 * (sin(x1) * cos(x1) - x1)")
    chain = found_chain(found, KOZA, X)
    x = X[:, 0]
    assert len(chain.values) == 4
    sc = np.sin(x) * np.cos(x)
    for got, want in zip(chain.values, [np.cos(x), sc, sc - x, evaluate(found, X)]):
        np.testing.assert_allclose(got, want)
    assert all(chain_example(chain, level).positive.any() for level in (1, 2, 3))
    assert found_chain(parse("sin(x1 * x1 * x1)"), KOZA, X) is None  # nothing peels at the root
    # a solved traced run gives its chain; an unsolved one gives none
    task = _solved_task(found, X)
    assert len(run_chains([{"task": task}])) == 1
    assert run_chains([{"task": {**task, "solved": False}}]) == []
    # with ``missed``, an unsolved run gives its drawn target's chain, not the program it found
    missed = {**task, "solved": False, "target": task["found"], "found": program_record(parse("x1"))}
    (chain_of_target,) = run_chains([{"task": missed}], missed=True)
    np.testing.assert_allclose(chain_of_target.values[-1], evaluate(found, X))


def test_trace_decisions_mix_with_random_chains_and_an_empty_trace_folder_warns(tmp_path: Path):
    from flows.decomposition_data import DecompositionData
    from simulator.trace_store import shard_path, write_shard

    X = _x()
    found = parse("x1 * (sin(x1) * cos(x1) - x1)")
    task = _solved_task(found, X)
    (tmp_path / "solved").mkdir()
    write_shard(shard_path(tmp_path / "solved", 0), [{"task": task, "states": []}], {}, 0)
    data = DecompositionData(traces=str(tmp_path / "solved"), trace_share=1.0)
    rng = np.random.default_rng(0)
    examples = [data.make_example(rng) for _ in range(6)]
    assert len(data.chains) == 1 and all(e is not None and e.positive.any() for e in examples)
    (tmp_path / "unsolved").mkdir()
    unsolved = [{"task": {**task, "solved": False}, "states": []}]
    write_shard(shard_path(tmp_path / "unsolved", 0), unsolved, {}, 0)
    empty = DecompositionData(traces=str(tmp_path / "unsolved"), trace_share=1.0)
    with pytest.warns(UserWarning, match="random chains only"):
        empty.make_example(rng)
    with pytest.raises(ValueError, match="trace_share"):
        DecompositionData(trace_share=1.5)


def test_wrap_puts_the_rest_back_inside_the_steps():
    rest = parse("sin(x1)")
    wraps = (("mul", ("x1",), True), ("sub", ("x1",), False))
    assert str(wrap(rest, wraps)) == str(parse("x1 * (sin(x1) - x1)"))


def _library(X: np.ndarray, fs: FunctionSet = KOZA) -> Library:
    programs, outputs = enumerate_exhaustive(fs, X, 5, 2_000)
    return Library(programs, outputs, X)


def test_three_levels_deep_recovers_a_hand_built_target_and_counts_its_lookups():
    """Three steps that peel x1 off, then a split: out of reach of one level, found at three."""
    X = _x()
    lib = _library(X)
    truth = parse("x1 * (x1 + x1 * (sin(x1) * cos(x1) + x1 * x1))")
    y = evaluate(truth, X)
    fs = ("add", "mul")
    shallow = decompose(lib, y, fs, depth=1, siblings=1, pops=100)
    assert not shallow.programs
    before = lib.scored
    deep = decompose(lib, y, fs, depth=3, siblings=1, pops=100, limit=1)
    assert deep.programs and 0 < deep.pops <= 100
    assert np.allclose(evaluate(deep.programs[0], X), y)
    assert lib.scored - before >= deep.pops * len(lib)  # every popped remainder's lookups counted


def test_the_smoothest_branches_undo_square_and_cos_where_the_principal_branch_cannot():
    X = np.linspace(-1.45, 1.45, 20)[::-1, None]  # x1**3 - x1 changes sign three times
    x = X[:, 0]
    for u, inner in (("square", x**3 - x), ("cos", x * x + x), ("sin", x * x + 2 * x)):
        z = OPERATORS[u].numpy(inner)
        principal = OPERATORS[u].inverse(z)[0]
        assert not np.allclose(principal, inner) and not np.allclose(-principal, inner)
        found = branch_preimages(u, X, z)
        assert any(np.allclose(v, inner) for v in found), u
    # two variables have no order along x: only the principal branch is offered
    X2 = np.random.default_rng(1).uniform(-1.5, 1.5, (20, 2))
    z2 = np.square(X2[:, 0] - X2[:, 1])
    assert len(branch_preimages("square", X2, z2)) == 1


def test_branch_figures_count_held_out_targets_the_principal_branch_gets_wrong():
    from simulator.branches import branch_metrics

    figures = branch_metrics(None, n=20, seed=0)
    assert figures["branch_targets"] == 20 and "flow_branch_hit" not in figures
    assert 0.2 <= figures["operator_branch_hit"] <= 1.0


def test_a_unary_step_with_its_branch_recovers_a_target_inside_abs():
    """x1 + abs(x1*x1*x1 - x1) (9 nodes): peel x1, then abs on its right branch, then a lookup."""
    X = np.linspace(-1.45, 1.45, 20)[::-1, None]
    fs = FunctionSet.from_names("add,sub,mul,abs")
    programs, outputs = enumerate_exhaustive(fs, X, 7, 3_000)
    lib = Library(programs, outputs, X)
    y = evaluate(parse("x1 + abs(x1*x1*x1 - x1)"), X)
    assert not lib.split(y, fs.binary, fs.unary, 600)
    binary_only = decompose(lib, y, fs.binary, depth=2, siblings=2, pops=100, limit=1)
    assert not binary_only.programs
    for branches, expect in (("principal", False), ("operator", True)):
        found = decompose(
            lib, y, fs.binary, depth=2, siblings=2, pops=100, limit=1, unary=fs.unary, branches=branches
        )
        assert bool(found.programs) == expect, branches
    assert np.allclose(evaluate(found.programs[0], X), y)
    with pytest.raises(ValueError, match="branches must be one of"):
        decompose(lib, y, fs.binary, unary=fs.unary, branches="sideways")


def test_a_grown_library_decomposes_again_from_the_memo_with_the_same_result():
    """The steps and their scores are kept; a second search on a larger library asks the policy
    nothing new for the remainders it saw, and finds what a fresh search finds."""
    X = _x()
    truth = parse("x1 * (x1 + x1 * (sin(x1) * cos(x1) + x1 * x1))")
    y = evaluate(truth, X)

    class CountingPolicy:
        calls = 0

        def log_probs_many(self, X, targets, sibling_outputs, steps):
            CountingPolicy.calls += len(steps)
            return [-np.arange(len(s), dtype=float) for s in steps]  # library order, as scores

    small = Library(*enumerate_exhaustive(KOZA, X, 5, 300), X)
    large = _library(X)
    assert [p.tokens for p in small.programs[:1]] == [p.tokens for p in large.programs[:1]]
    memo: dict = {}
    args = dict(depth=3, siblings=1, pops=100, limit=1)
    first = decompose(small, y, ("add", "mul"), CountingPolicy(), memo=memo, **args)
    asked = CountingPolicy.calls
    again = decompose(large, y, ("add", "mul"), CountingPolicy(), memo=memo, **args)
    asked_again = CountingPolicy.calls - asked
    fresh = decompose(large, y, ("add", "mul"), CountingPolicy(), **args)
    asked_fresh = CountingPolicy.calls - asked - asked_again
    assert [str(p) for p in again.programs] == [str(p) for p in fresh.programs] and again.programs
    assert again.pops == fresh.pops
    assert asked_again < asked_fresh  # the remainders the small library's search saw were not scored again
    assert first.pops > 0


def test_the_library_session_is_built_on_its_own_tasks_x():
    """Two solves through one stage never share a library: each is enumerated on its own X."""
    stage = LibrarySubgoal(foothold_entries=10**9)
    a, b = (Problem(_x(seed=s), _x(seed=s)[:, 0] ** 3, KOZA) for s in (0, 1))
    from pipelines.search.budget import Budget

    sa, sb = stage.start(a), stage.start(b)
    sa.grow(Budget(1000, 10, calls=10)), sb.grow(Budget(1000, 10, calls=10))
    assert np.array_equal(sa.library.X, a.X) and np.array_equal(sb.library.X, b.X)
    assert not np.array_equal(sa.library.outputs, sb.library.outputs)


def test_tiny_fit_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = fit_tiny(
        tmp_path, monkeypatch, CONFIG, "--data.val_size=8", "--data.batch_size=4", "--data.num_workers=0",
        "--model.metric_chains=4",
    )  # fmt: skip
    model = DecompositionPolicy.from_pretrained(out)
    assert "val/top5" in model.checkpoint_metrics and "val/plain_top5" in model.checkpoint_metrics


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped decomposition_policy.pt")
def test_shipped_policy_beats_library_order_on_held_out_chains():
    """pipelines/checkpoints/decomposition_policy.md records n=100, seed 0; the policy must keep its lead."""
    model = DecompositionPolicy.from_pretrained()
    assert SHIPPED.stat().st_size < 0.5e6
    m = decomposition_metrics(model, n=100, seed=0)
    assert m["top5"] >= m["plain_top5"] + 0.2
    assert m["top1"] > m["plain_top1"]


def test_one_level_returns_programs_equal_to_the_target():
    X = _x()
    lib = _library(X)
    y = evaluate(parse("x1 + sin(x1) * x1"), X)
    out = decompose(lib, y, KOZA.binary, depth=1, pops=20)
    assert out.programs and all(isinstance(p, Program) for p in out.programs)
    assert all(np.allclose(evaluate(p, X), y) for p in out.programs)


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped decomposition_policy.pt")
def test_the_policy_reads_at_most_the_model_rows_of_a_large_task():
    """A task with more points than the models read (Problem.model_rows) decomposes all the same."""
    X = np.random.default_rng(3).uniform(-1, 1, (100, 1))
    truth = parse("x1 * (x1 + x1 * (sin(x1) * cos(x1) + x1 * x1))")
    y = evaluate(truth, X)
    stage = LibrarySubgoal(first_entries=20_000, max_size=5, decomposer=str(SHIPPED))
    session = stage.start(Problem(X, y, KOZA))
    from pipelines.search.budget import Budget

    offer = session.candidates(Program(("x1",)), Budget(200_000, 60, calls=10))
    assert any(np.allclose(evaluate(c.program, X), y) for c in offer.candidates)
