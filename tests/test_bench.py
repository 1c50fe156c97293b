"""``induce bench``: a quick bench writes every output, resumes, reads task files, survives failures."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import sympy as sp

from pipelines import bench, peers
from simulator.suites import get_task

HAS_GPLEARN = peers.available("gplearn")
QUICK = ["--seeds", "1", "--calls", "2000", "--seconds", "3"]


def run_bench(*argv: str) -> int:
    """Through the real ``induce`` CLI once it has ``bench``; until then through bench's own parser."""
    from pipelines import cli

    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    if "bench" in sub.choices:
        return cli.main(["bench", *argv])
    parser = argparse.ArgumentParser(prog="induce")
    bench.add_parser(parser.add_subparsers())
    args = parser.parse_args(["bench", *argv])
    return args.func(args)


def records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]


def test_quick_bench_writes_every_output_and_resumes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")  # never the network from a test
    out = tmp_path / "bench"
    methods = "uniform,gplearn" if HAS_GPLEARN else "uniform"
    argv = [
        "--suite",
        "nguyen",
        "--only",
        "Nguyen-1,Nguyen-6",
        "--methods",
        methods,
        *QUICK,
        "--out",
        str(out),
    ]
    assert run_bench(*argv) == 0
    runs = records(out)
    n_methods = len(methods.split(","))
    assert len(runs) == 2 * n_methods
    assert [(r["task"], r["method"]) for r in runs[:n_methods]] == [
        ("Nguyen-1", m) for m in methods.split(",")
    ]
    for r in runs:
        assert set(bench.RUN_FIELDS) <= r.keys()
        assert r["error"] is None, r["error"]
        assert r["seed"] == 0 and r["truth"] and r["found"]
        assert isinstance(r["recovered"], bool) and r["simulator_calls"] > 0 and r["seconds"] >= 0
        assert r["nmse_train"] is not None and r["complexity"] >= 1 and r["fit_forward_passes"] >= 0
        assert r["history"] and all(len(h) == 2 for h in r["history"])
        assert r["simulator_calls"] <= 2000 + 1000  # a peer may finish its last generation
    uniform = {r["task"]: r for r in runs if r["method"] == "uniform"}
    assert uniform["Nguyen-1"]["recovered"] and uniform["Nguyen-1"]["r2_test"] > 0.999
    assert 0 < uniform["Nguyen-1"]["calls_to_recovery"] <= uniform["Nguyen-1"]["simulator_calls"]
    summary = (out / "summary.md").read_text()
    assert "| task" in summary and "Nguyen-6" in summary and "mean over tasks" in summary
    assert "median calls to recovery" in summary and "quick mode" in summary
    assert (out / "recovery_vs_calls.png").stat().st_size > 5000
    assert "mean over tasks" in capsys.readouterr().out  # the table goes to stdout too
    assert (out / "wandb").is_dir()  # logged offline, next to the runs

    assert run_bench(*argv) == 0  # resume: nothing left to run
    assert len(records(out)) == len(runs)
    assert f"{len(runs)} already in" in capsys.readouterr().err


def test_task_file_with_ranges_grid_and_constants_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(
        "tasks:\n"
        "  - name: ranges-grid-const\n"
        '    expression: "2.5*x1 + x2"\n'
        "    train: {distribution: grid, low: [0, 1], high: [1, 10], step: [0.25, 2.25]}\n"
        "    test: {distribution: uniform, low: [0, 1], high: [1, 10], points: 50}\n"
        "    function_set: [add, mul, const]\n"
    )
    out = tmp_path / "bench"
    assert run_bench("--tasks", str(tasks), "--methods", "uniform", *QUICK, "--out", str(out)) == 0
    (r,) = records(out)
    assert r["task"] == "ranges-grid-const" and r["error"] is None
    assert r["truth"] == "2.5*x1 + x2" and r["r2_test"] is not None
    assert r["recovered"], r["found"]


def test_failing_methods_are_recorded_and_the_bench_finishes(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setattr(peers, "available", lambda name: False)  # as if the peers extra were absent
    out = tmp_path / "bench"
    argv = ["--only", "Nguyen-1", "--methods", "no-such-method,operon,uniform", *QUICK, "--out", str(out)]
    assert run_bench(*argv) == 0
    runs = {r["method"]: r for r in records(out)}
    assert "unknown pipeline preset" in runs["no-such-method"]["error"]
    assert 'pip install -e ".[peers]"' in runs["operon"]["error"]
    assert not runs["operon"]["recovered"] and runs["uniform"]["error"] is None
    summary = (out / "summary.md").read_text()
    assert "`no-such-method` (not available" in summary and "`operon` (not available" in summary


def test_summary_ratio_and_recovery_curve():
    def rec(task, method, calls):
        return {"task": task, "method": method, "seed": 0, "recovered": calls is not None,
                "calls_to_recovery": calls, "seconds": 1.0, "error": None}  # fmt: skip

    runs = [
        rec("A", "uniform", 1000),
        rec("A", "full", 100),
        rec("B", "uniform", 900),
        rec("B", "full", None),
    ]
    meta = {"source": "t", "tasks": ["A", "B"], "methods": ["full", "uniform"], "seeds": 1, "calls": 2000,
            "seconds": 1.0, "workers": 1}  # fmt: skip
    text, table = bench.summarize(runs, meta)
    assert "**10.00x**" in text and "50.0%" in table and "100.0%" in table
    curve = bench.recovery_curve(runs, "full", np.array([10, 100, 1000]))
    assert curve.tolist() == [0.0, 0.5, 0.5]


def test_peer_programs_convert_to_sympy():
    x1, x2 = sp.symbols("x1 x2", real=True)
    got = peers.gplearn_to_sympy("add(mul(X0, X0), div(sin(x2), -0.5))", 2)
    assert sp.simplify(got - (x1**2 - 2 * sp.sin(x2))) == 0
    assert peers.gplearn_to_sympy("log(x1)", 1) == sp.log(sp.Abs(x1))  # gplearn's log is protected
    with pytest.raises(ValueError):
        peers.gplearn_to_sympy("add(x1,", 1)


@pytest.mark.skipif(not HAS_GPLEARN, reason="gplearn (the peers extra) is not installed")
def test_gplearn_peer_reports_what_the_bench_needs():
    task = get_task("Nguyen-1")
    X, y = task.sample("train", 0)
    res = peers.run_peer("gplearn", X, y, task.function_set, 1000, 3, 0, X_test=X)
    assert res["simulator_calls"] == 1000 and res["seconds"] < 3 + 10
    assert res["nmse_train"] == pytest.approx(
        float(np.mean((np.array(res["y_test_pred"]) - y) ** 2) / np.var(y))
    )
    assert str(res["found_sympy"]) == res["found_sympy_str"]


def test_a_pool_of_workers_records_every_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    out = tmp_path / "bench"
    argv = ["--only", "Nguyen-1", "--methods", "uniform,no-such-method", *QUICK, "--workers", "2"]
    assert run_bench(*argv, "--out", str(out)) == 0
    runs = {r["method"]: r for r in records(out)}
    assert runs.keys() == {"uniform", "no-such-method"}
    assert runs["uniform"]["recovered"] and runs["no-such-method"]["error"]


def test_censored_call_ratio_counts_failed_runs_as_never():
    def rec(seed, method, calls):
        return {"task": "A", "method": method, "seed": seed, "recovered": calls is not None,
                "calls_to_recovery": calls}  # fmt: skip

    # uniform recovers A once in three seeds, cheaply; full every time
    runs = [rec(0, "uniform", 100), rec(1, "uniform", None), rec(2, "uniform", None)]
    runs += [rec(s, "full", 200) for s in range(3)]
    assert bench.task_call_ratios(runs, ["A"], "uniform", "full") == {"A": 0.5}
    assert bench.task_call_ratios(runs, ["A"], "uniform", "full", censored=True) == {}
    runs[1] = rec(1, "uniform", 4000)  # now two of three: the median is finite
    assert bench.task_call_ratios(runs, ["A"], "uniform", "full", censored=True) == {"A": 20.0}
