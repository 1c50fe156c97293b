"""The recognition model and the library it orders: token costs, costed enumeration, the cap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flows.checkpoint import save_checkpoint
from flows.recognition import Recognition, recognition_metrics, token_costs
from pipelines.search.budget import Budget
from pipelines.search.problem import Problem
from pipelines.search.subgoal import LibrarySubgoal
from pipelines.shipped import checkpoint_path, config_path
from simulator.enumerate import enumerate_exhaustive, output_signature
from simulator.language import FunctionSet
from tests.fitting import fit_tiny

REPO = Path(__file__).resolve().parents[1]
CONFIG = config_path("recognition")
SHIPPED = checkpoint_path("recognition")
FULL3 = FunctionSet.from_names("full").with_vars(3)


def test_token_costs_grow_by_one_per_factor_of_four():
    costs = token_costs({"mul": 0.8, "x1": 0.5, "sin": 0.05, "exp": 0.01, "log": 1e-9})
    assert costs == {"mul": 1, "x1": 1, "sin": 3, "exp": 4, "log": 4}


def test_uniform_costs_enumerate_smallest_first():
    X = np.linspace(0.5, 2, 12)[:, None]
    fs = FunctionSet.from_names("koza")
    plain, _ = enumerate_exhaustive(fs, X, 5, 5_000)
    ones, _ = enumerate_exhaustive(fs, X, 5, 5_000, {t: 1 for t in fs.tokens})
    assert [p.tokens for p in plain] == [p.tokens for p in ones]
    sizes = [len(p.tokens) for p in plain]
    assert sizes == sorted(sizes)


def test_cheap_tokens_keep_a_law_that_the_cap_cuts_by_size():
    """x1*x2/(x2 - x1) has 7 nodes; under a cap of 3,000 entries over the full set with
    three variables, smallest first never reaches it, and costs that make the unused
    operators and variable dearer do."""
    rng = np.random.default_rng(0)
    X = rng.uniform(0.5, 3, (30, 3))
    y = X[:, 0] * X[:, 1] / (X[:, 1] - X[:, 0])
    sig = output_signature(y)
    plain, out = enumerate_exhaustive(FULL3, X, 7, 3_000)
    assert not any(output_signature(o) == sig for o in out)
    costs = {t: 3 for t in FULL3.tokens}
    costs.update({"mul": 1, "div": 1, "sub": 1, "x1": 1, "x2": 1})
    kept, out = enumerate_exhaustive(FULL3, X, 7, 3_000, costs)
    assert len(kept) == len(plain) == 3_000  # the same cap, the same calls
    assert any(output_signature(o) == sig for o in out)
    assert all(len(p.tokens) <= 7 for p in kept)


def test_the_library_session_keeps_its_cap_and_lists_entries_smallest_first(tmp_path: Path):
    model = Recognition(hidden=8)
    path = save_checkpoint(model, tmp_path / "recognition.pt", dict(model.hparams))
    X = np.random.default_rng(1).uniform(0.5, 3, (40, 3))
    problem = Problem(X, X[:, 0] * X[:, 1], FULL3)
    session = LibrarySubgoal(max_entries=2_000, first_entries=5_000, recognizer=str(path)).start(problem)
    budget = Budget(200_000, 60)
    assert session.grow(budget) == 2_000  # the cap: the same calls as smallest first
    assert min(session._costs.values()) == 1
    sizes = [len(p.tokens) for p in session.library.programs]
    assert sizes == sorted(sizes)


def test_tiny_fit_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = fit_tiny(
        tmp_path, monkeypatch, CONFIG, "--data.val_size=8", "--data.batch_size=4", "--data.num_workers=0",
        "--model.metric_tasks=4",
    )  # fmt: skip
    model = Recognition.from_pretrained(out)
    assert "val/auc" in model.checkpoint_metrics and "val/mean_rank" in model.checkpoint_metrics


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped recognition.pt")
def test_shipped_model_ranks_a_laws_tokens_above_chance():
    """pipelines/checkpoints/recognition.md records the held-out figures; the model must keep its lead."""
    model = Recognition.from_pretrained()
    assert SHIPPED.stat().st_size < 0.5e6
    m = recognition_metrics(model, n=100, seed=0)
    assert m["auc"] > 0.7 and m["mean_rank"] < recognition_metrics(None, n=100, seed=0)["mean_rank"] - 0.1
    X = np.random.default_rng(2).uniform(0.5, 3, (40, 4))
    p = model.probabilities(FunctionSet.from_names("full").with_vars(4), X, X[:, 0] * X[:, 1])
    assert min(p["x1"], p["x2"]) > max(p["x3"], p["x4"])  # the variables the law reads
