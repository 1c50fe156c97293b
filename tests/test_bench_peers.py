"""The peers: their programs read back as sympy, and (when installed) a real short run of each."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import sympy as sp

from pipelines.bench import methods, peers
from pipelines.bench.record import RUN_FIELDS
from simulator.suites import get_task

x1, x2 = sp.symbols("x1 x2", real=True)


def hide(monkeypatch, package: str) -> None:
    """Make ``package`` fail to import for this test, as if it were not installed."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")] + [package]:
        monkeypatch.setitem(sys.modules, name, None)


def test_gplearn_programs_convert_to_sympy():
    got = peers.gplearn_to_sympy("add(mul(X0, X0), div(sin(x2), -0.5))", 2)
    assert sp.simplify(got - (x1**2 - 2 * sp.sin(x2))) == 0
    # our operators' meaning comes from the registry; gplearn's protected ones are its own
    assert peers.gplearn_to_sympy("inv(neg(tanh(cube(x1))))", 1) == -1 / sp.tanh(x1**3)
    assert peers.gplearn_to_sympy("log(x1)", 1) == sp.log(sp.Abs(x1))
    assert peers.gplearn_to_sympy("sqrt(x1)", 1) == sp.sqrt(sp.Abs(x1))
    assert peers.gplearn_to_sympy("max(x1, 2)", 1) == sp.Max(x1, 2)
    for bad in ("add(x1,", "add(x1, x3)", "frob(x1)", "x1 x1"):
        with pytest.raises(ValueError):
            peers.gplearn_to_sympy(bad, 2)


def test_a_missing_peer_says_how_to_install_it(monkeypatch):
    hide(monkeypatch, "gplearn")
    assert 'pip install -e ".[peers]"' in peers.why_not("gplearn")
    assert not methods.get("gplearn").available()
    with pytest.raises(ImportError, match="gplearn"):
        peers.run_peer("gplearn", np.zeros((3, 1)), np.zeros(3), "koza", 10, 1.0, 0)


@pytest.mark.parametrize("name", peers.PEERS)
def test_peer_reports_what_the_bench_needs(name):
    if peers.why_not(name):
        pytest.skip(peers.why_not(name))
    task = get_task("Nguyen-1")
    X, y = task.sample("train", 0)
    res = peers.run_peer(name, X, y, task.function_set, 2000, 3, 0, X_test=X)
    assert 0 < res["simulator_calls"] <= 2000 + 1000
    assert str(res["found_sympy"]) == res["found_sympy_str"]
    pred = np.array(res["y_test_pred"], dtype=float)
    assert res["nmse_train"] == pytest.approx(float(np.mean((pred - y) ** 2) / np.var(y)))
    rec = methods.get(name).run(task, 0, 1000, 3.0)  # the same, as one bench run's record
    assert list(rec) == list(RUN_FIELDS)
    assert rec["method"] == name and rec["error"] is None and rec["budget_calls"] == 1000
