"""The bench's statistics and reports, on hand-written records (no runs)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

from pipelines import cli
from pipelines.bench import report
from pipelines.bench.plan import plan
from pipelines.bench.stats import recovery_curve, summarize
from simulator.suites import get_task

META = {"source": "t", "seeds": 1, "calls": 2000, "seconds": 1.0, "workers": 1, "executor": "inline"}


def rec(task, method, calls, seed=0, error=None):
    return {"task": task, "method": method, "seed": seed, "recovered": calls is not None,
            "calls_to_recovery": calls, "seconds": 1.0, "error": error}  # fmt: skip


def test_summary_table_ratio_and_recovery_curve():
    runs = [
        rec("A", "uniform", 1000),
        rec("A", "full", 100),
        rec("B", "uniform", 900),
        rec("B", "full", None),
    ]
    s = summarize(runs, ["A", "B"], ["full", "uniform"])
    assert s.mean_rate == {"full": 0.5, "uniform": 1.0}
    assert s.median_calls == {"full": 100.0, "uniform": 950.0}
    assert s.ratios["full"] == {"A": 10.0} and s.ratios["uniform"] == {"A": 1.0, "B": 1.0}
    text, table = report.markdown(s, META), report.table(s)
    assert "**10.00× fewer calls** for full than `uniform` (A 10.00× fewer)" in text
    assert "**50.0%**" in table and "**100.0%**" in table
    assert "| A " in table and "100% (1/1)" in table and "0% (0/1)" in table
    assert "10.00x (1)" in table  # calls uniform/method, full's column
    ratios = report.table_frame(s).loc["calls uniform/method (tasks both recover)"]
    assert ratios.tolist() == ["10.00x (1)", "–"]  # uniform is not paired against itself
    curve = recovery_curve(runs, "full", np.array([10, 100, 1000]))
    assert curve.tolist() == [0.0, 0.5, 0.5]
    assert np.isnan(recovery_curve(runs, "operon", np.array([10]))).all()


def test_censored_call_ratio_counts_failed_runs_as_never():
    # uniform recovers A once in three seeds, cheaply; full every time
    runs = [rec("A", "uniform", 100, 0), rec("A", "uniform", None, 1), rec("A", "uniform", None, 2)]
    runs += [rec("A", "full", 200, s) for s in range(3)]
    s = summarize(runs, ["A"], ["uniform", "full"])
    assert s.ratios["full"] == {"A": 0.5}
    assert s.censored["full"] == {}
    runs[1] = rec("A", "uniform", 4000, 1)  # now two of three: the lower median is finite
    assert summarize(runs, ["A"], ["uniform", "full"]).censored["full"] == {"A": 20.0}
    runs.append(rec("A", "uniform", None, 3))  # four seeds, two recovered: the lower median, 4000
    assert summarize(runs, ["A"], ["uniform", "full"]).censored["full"] == {"A": 20.0}


def test_failed_and_missing_methods_show_as_such():
    runs = [rec("A", "uniform", 50), rec("A", "operon", None, error="ImportError: no pyoperon")]
    runs.append(rec("B", "uniform", None, error="ValueError: boom"))
    s = summarize(runs, ["A", "B"], ["uniform", "operon", "full"])
    cells = report.table_frame(s)
    assert cells.loc["A"].tolist() == ["100% (1/1)", "error", "–"]
    assert cells.loc["B"].tolist() == ["error", "–", "–"]
    assert cells.loc["**mean over tasks**"].tolist() == ["**50.0%**", "n/a", "n/a"]
    assert s.unavailable == {"operon", "full"}
    text = report.markdown(s, META)
    assert "- `uniform` (some runs failed: 1 of 2 runs): ValueError: boom" in text
    assert "- `operon` (not available: 1 of 1 runs): ImportError: no pyoperon" in text
    assert "Not available: `full` failed on every run" in text


def test_plan_interleaves_seed_then_task_then_method():
    tasks = [get_task("Nguyen-1"), get_task("Nguyen-2")]
    keys = [j.key for j in plan(tasks, 2, ["full", "uniform"], 100, 1.0)]
    assert keys[:4] == [("Nguyen-1", 0, "full"), ("Nguyen-1", 0, "uniform"),
                        ("Nguyen-2", 0, "full"), ("Nguyen-2", 0, "uniform")]  # fmt: skip
    assert keys[4] == ("Nguyen-1", 1, "full") and len(keys) == 8


def test_a_committed_result_folder_resumes_and_summarizes_as_it_was(tmp_path, capsys, monkeypatch):
    """benchmarks/headline/before/nguyen (an earlier headline, with uniform and Operon): nothing is
    rerun, and its table and ratios come out as committed."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    folder = Path(__file__).resolve().parents[1] / "benchmarks" / "headline" / "before" / "nguyen"
    out = tmp_path / "headline"
    shutil.copytree(folder, out)
    argv = ["bench", "--suite", "all", "--methods", "full,uniform,operon", "--seeds", "10"]
    assert cli.main([*argv, "--calls", "200000", "--seconds", "60", "--out", str(out)]) == 0
    assert "540 already in" in capsys.readouterr().err

    def tables(text: str) -> list[str]:  # table rows, spacing aside
        keep = [s for s in text.splitlines() if s.startswith("| ")]
        # uniform's own ratio, 1.00x, was uniform paired against itself: now left empty
        return [re.sub(r"\| 1\.00x \(\d+\) \| –", "| – | –", re.sub(r"\s+", " ", s)) for s in keep]

    # every committed row comes out again; newer rows (throughput) may be added
    written = (out / "summary.md").read_text()
    new = tables(written)
    assert all(row in new for row in tables((folder / "summary.md").read_text()))
    # the committed ratios, 1.46x and 1.54x with per-task 0.33x, in words
    assert "**1.46× fewer calls** for full than `uniform` (Nguyen-1 3.01× more, Nguyen-2" in written
    assert "**1.54× fewer calls** for full" in written and "x** fewer" not in written


def test_paired_against_plain_and_throughput():
    runs = []
    for seed in range(8):  # full wins on A in every seed; plain wins B once; both recover C
        runs += [rec("A", "full", 50, seed), rec("A", "plain", None, seed)]
        runs += [rec("B", "full", None if seed == 0 else 100, seed), rec("B", "plain", 400, seed)]
        runs += [rec("C", "full", 10, seed), rec("C", "plain", 90, seed)]
    for r in runs:
        r["simulator_calls"], r["candidates_scored"] = 2000, 10_000
        if r["method"] == "plain" and r["task"] != "C":
            r["seconds"] = 4.0  # full runs 4x plain's calls per second on A and B, the same on C
    s = summarize(runs, ["A", "B", "C"], ["full", "plain"])
    d = s.paired["full"]
    assert d["speed_ratio"] == 4.0  # the median over the 24 task-seeds
    assert (d["pairs"], d["wins"], d["losses"]) == (24, 8, 1)
    assert d["p"] < 0.05 and d["censored_ratio"] == 6.5 and d["ratio_tasks"] == 2  # C 9x, B 4x
    assert s.calls_per_second["full"] == 2000.0 and s.scored_per_second["plain"] == 240_000 / 72
    text = report.markdown(s, META)
    assert "| full | 24 | 8 | 1 |" in text and "6.50× fewer calls (2) | 4.00 |" in text
    assert report.paired_sentences(s) == [
        "full against plain: 8 wins, 1 loss over 24 task-seeds (sign test p 0.0391); "
        "6.50× fewer calls to recovery (median over 2 tasks); 4.00× plain's calls per second"
    ]
    assert "simulator calls per second" in report.table(s)


def test_paired_against_a_named_stand_in():
    """``--reference`` pairs every method against another stand-in than plain."""
    runs = []
    for seed in range(6):
        runs += [rec("A", "full", 50, seed), rec("A", "order.yaml", None, seed)]
    s = summarize(runs, ["A"], ["full", "order.yaml"], reference="order.yaml")
    assert (s.paired["full"]["wins"], s.paired["full"]["losses"]) == (6, 0)
    assert "## Paired against order.yaml" in report.markdown(s, META)
    assert not summarize(runs, ["A"], ["full", "order.yaml"]).paired  # plain did not run


def test_reference_must_be_a_method(tmp_path, capsys):
    argv = ["bench", "--only", "Nguyen-1", "--methods", "full", "--seeds", "1", "--reference", "nope"]
    assert cli.main([*argv, "--out", str(tmp_path)]) == 2
    assert "--reference 'nope' is not one of --methods (full)" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # refused before anything ran
