"""``induce bench`` end to end, through the real CLI: outputs, resume, failures, executors."""

from __future__ import annotations

import json
import sys

import pytest

from pipelines import cli
from pipelines.bench import methods, peers, runner
from pipelines.bench.record import RUN_FIELDS

QUICK = ["--seeds", "1", "--calls", "2000", "--seconds", "3"]

# One task the search solves at once, and one the learned models cannot take (12 variables):
# a real run that fails inside a method.
TASKS = """
tasks:
  - name: easy
    expression: "x1*x1 + x1"
    train: {distribution: uniform, low: 0, high: 1, points: 20}
    function_set: [add, mul]
  - name: wide
    expression: "x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11 + x12"
    train: {distribution: uniform, low: 0, high: 1, points: 30}
    function_set: [add, mul]
"""


def hide(monkeypatch, package: str) -> None:
    """Make ``package`` fail to import for this test, as if it were not installed."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")] + [package]:
        monkeypatch.setitem(sys.modules, name, None)


def bench(*argv: str) -> int:
    return cli.main(["bench", *argv])


def records(out) -> list[dict]:
    return [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]


@pytest.fixture
def task_file(tmp_path):
    path = tmp_path / "tasks.yaml"
    path.write_text(TASKS)
    return str(path)


def test_quick_bench_writes_every_output_and_resumes(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")  # the default; never the network from a test
    out = tmp_path / "bench"
    chosen = ["uniform", "plain"]  # quick to load; full runs below, a peer in test_bench_peers.py
    argv = ["--only", "Nguyen-1,Nguyen-6", "--methods", ",".join(chosen), "--seeds", "1"]
    argv += ["--calls", "2000", "--seconds", "1", "--workers", "2"]
    assert bench(*argv, "--out", str(out)) == 0
    runs = records(out)
    assert sorted((r["task"], r["method"]) for r in runs) == sorted(
        (t, m) for t in ("Nguyen-1", "Nguyen-6") for m in chosen
    )
    for r in runs:
        assert list(r) == list(RUN_FIELDS)  # the fields resume and old result folders rely on
        assert r["error"] is None, r["error"]
        assert r["seed"] == 0 and r["truth"] and r["found"]
        assert isinstance(r["recovered"], bool) and r["simulator_calls"] > 0 and r["seconds"] >= 0
        assert r["nmse_train"] is not None and r["complexity"] >= 1 and r["fit_forward_passes"] >= 0
        assert r["history"] and all(len(h) == 2 for h in r["history"])
        assert r["simulator_calls"] <= 2000 + 1000  # a search may finish its last batch
        assert r["budget_calls"] == 2000 and r["budget_seconds"] == 1.0 and r["wall_seconds"] > 0
    uniform = {r["task"]: r for r in runs if r["method"] == "uniform"}
    assert uniform["Nguyen-1"]["recovered"] and uniform["Nguyen-1"]["r2_test"] > 0.999
    assert 0 < uniform["Nguyen-1"]["calls_to_recovery"] <= uniform["Nguyen-1"]["simulator_calls"]

    summary = (out / "summary.md").read_text()
    assert "| task" in summary and "Nguyen-6" in summary and "mean over tasks" in summary
    assert "median calls to recovery" in summary and "quick mode" in summary
    assert "100% (1/1)" in summary
    assert (out / "recovery_vs_calls.png").stat().st_size > 5000
    assert (out / "wandb").is_dir()  # logged offline, next to the runs
    console = capsys.readouterr()
    assert "mean over tasks" in console.out  # the table goes to stdout
    assert "wandb" not in console.err.lower()  # W&B is silent
    assert len(console.err.strip().splitlines()) <= 3, console.err  # the plan line, the paths

    assert bench(*argv, "--out", str(out)) == 0  # resume: nothing left to run
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
    argv = ["--tasks", str(tasks), "--methods", "uniform", *QUICK, "--executor", "inline"]
    assert bench(*argv, "--out", str(out)) == 0
    (r,) = records(out)
    assert r["task"] == "ranges-grid-const" and r["error"] is None
    assert r["truth"] == "2.5*x1 + x2" and r["r2_test"] is not None
    assert r["recovered"], r["found"]


def test_failures_are_recorded_said_once_each_and_the_bench_finishes(
    tmp_path, task_file, capsys, monkeypatch
):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    hide(monkeypatch, "pyoperon")  # as if the peers extra were absent
    out = tmp_path / "bench"
    argv = ["--tasks", task_file, "--methods", "operon,full", *QUICK, "--executor", "inline"]
    assert bench(*argv, "--out", str(out)) == 0
    runs = {(r["task"], r["method"]): r for r in records(out)}
    assert len(runs) == 4
    assert 'pip install -e ".[peers]"' in runs[("easy", "operon")]["error"]
    assert not runs[("easy", "operon")]["recovered"] and runs[("easy", "full")]["error"] is None
    assert "at most" in runs[("wide", "full")]["error"]  # the models' variable limit
    err = capsys.readouterr().err
    assert err.count("operon: not available") == 1 and "failed: operon" not in err  # said once
    (line,) = [s for s in err.splitlines() if s.startswith("failed:")]
    assert line.startswith("failed: full on wide seed 0: ValueError:")
    summary = (out / "summary.md").read_text()
    assert "`operon` (not available: 2 of 2 runs)" in summary
    assert "`full` (some runs failed: 1 of 2 runs)" in summary

    assert bench(*argv, "--out", str(out), "--retry-errors") == 0  # the 3 failed runs go again
    assert len(records(out)) == 4 + 3


def test_a_run_past_its_hard_limit_is_killed_and_recorded(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    # uniform does not solve Nguyen-10 within seconds (Nguyen-12, a polynomial, now falls to the
    # linear starts at once); a hard limit of 0.5 s kills the run and its worker.
    monkeypatch.setattr(runner, "hard_limit", lambda seconds: 0.5)
    out = tmp_path / "bench"
    argv = ["--only", "Nguyen-10", "--methods", "uniform", "--seeds", "1", "--calls", "10000000"]
    assert bench(*argv, "--seconds", "10", "--out", str(out)) == 0
    (r,) = records(out)
    assert r["error"] == "ran past the hard limit of 0.5 s (budget 10 s); killed" and not r["recovered"]
    assert f"failed: uniform on Nguyen-10 seed 0: {r['error']}" in capsys.readouterr().err


def test_unknown_method_and_missing_ray_are_one_line_errors(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "bench")
    assert bench("--methods", "uniform,no-such", *QUICK, "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown method 'no-such'; methods: full, ") and "\n" not in err
    hide(monkeypatch, "ray")
    assert bench("--methods", "uniform", *QUICK, "--executor", "ray", "--out", out) == 2
    err = capsys.readouterr().err.strip()
    assert err == 'error: --executor ray needs Ray: pip install -e ".[ray]"'


def test_default_methods_are_the_presets_and_the_peers_that_import(monkeypatch):
    from pipelines.interface.pipeline import preset_stages

    assert {"full", "plain", "uniform", "no-subgoal"} <= set(methods.presets())
    for name in methods.presets():
        preset_stages(name)  # every one is a preset the pipeline knows
    installed = [p for p in peers.PEERS if peers.why_not(p) is None]
    assert methods.parse(None) == [*methods.presets(), *installed]
    hide(monkeypatch, "gplearn")
    assert "gplearn" not in methods.parse(None)
    assert methods.parse(" Uniform, full,uniform ") == ["uniform", "full"]


def test_a_pipeline_yaml_is_a_method(tmp_path, monkeypatch):
    """A round of ``induce improve`` (or any pipeline YAML) benches beside the presets."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    yaml_path = tmp_path / "Mine.yaml"
    yaml_path.write_text("preset: uniform\nname: mine\nplanner: {parsimony: 0.05}\n")
    out = tmp_path / "bench"
    argv = ["--only", "Nguyen-1", "--methods", f"plain,{yaml_path}", *QUICK, "--executor", "inline"]
    assert bench(*argv, "--out", str(out)) == 0
    assert {r["method"] for r in records(out)} == {"plain", str(yaml_path)}
    assert bench("--only", "Nguyen-1", "--methods", str(tmp_path / "no.yaml"), "--out", str(out)) == 2


class Recorder:
    """An executor that runs nothing and keeps the jobs it was handed."""

    name = "recorder"

    def __init__(self):
        self.jobs = []

    def run(self, jobs, on_record):
        self.jobs += jobs


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    fake = Recorder()
    monkeypatch.setattr(runner, "make_runner", lambda *args: fake)
    return fake


def test_no_flags_plan_a_quick_bench_and_say_its_time(tmp_path, capsys, monkeypatch, recorder):
    monkeypatch.chdir(tmp_path)
    assert bench() == 0
    jobs = recorder.jobs
    assert {j.method for j in jobs} == {"full", "plain"} and {j.seed for j in jobs} == {0, 1}
    assert len({j.task.name for j in jobs}) == 5 and {(j.calls, j.seconds) for j in jobs} == {(50_000, 10.0)}
    err = capsys.readouterr().err
    assert "this is the quick bench" in err
    assert "planned time: at most 3 min 20 s (20 runs x 10 s / 1 worker(s)" in err
    assert (tmp_path / "runs" / "bench-quick" / "summary.md").is_file()

    # a flag that says what to run: the protocol's defaults for every other, as always
    recorder.jobs = []
    assert bench("--methods", "plain", "--workers", "2", "--out", "protocol") == 0
    assert len(recorder.jobs) == 13 * 10  # the nguyen suite, 10 seeds
    assert {(j.calls, j.seconds) for j in recorder.jobs} == {(200_000, 60.0)}
    err = capsys.readouterr().err
    assert "quick" not in err and "planned time: at most 1 h 5 min (130 runs x 60 s / 2 worker(s)" in err


def test_a_method_is_not_paired_against_itself(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    out = tmp_path / "bench"
    argv = ["--only", "Nguyen-1", "--methods", "plain,PLAIN", "--reference", "Plain", "--seeds", "1"]
    assert bench(*argv, "--calls", "300", "--seconds", "5", "--executor", "inline", "--out", str(out)) == 0
    assert [r["method"] for r in records(out)] == ["plain"]
    summary = (out / "summary.md").read_text()
    assert "`plain` is the only method; a method is not paired against itself" in summary
    assert "plain against plain" not in capsys.readouterr().out
    yaml_path = tmp_path / "mine.yaml"
    yaml_path.write_text("preset: plain\n")
    assert methods.parse(f"{yaml_path},{tmp_path}/./mine.yaml,full") == [str(yaml_path), "full"]


def test_task_file_names_match_as_built_in_ones_do(task_file, tmp_path, capsys, recorder):
    out = str(tmp_path / "bench")
    assert bench("--tasks", task_file, "--only", "EASY,Wide", "--methods", "plain", "--out", out) == 0
    assert {j.task.name for j in recorder.jobs} == {"easy", "wide"}
    assert bench("--tasks", task_file, "--only", "eazy", "--methods", "plain", "--out", out) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"error: --only: unknown task 'eazy' in task file {task_file}; did you mean easy?"
    assert bench("--suite", "nguyen", "--only", "nguyen_1", "--methods", "plain", "--out", out) == 0
    assert cli.main(["solve", "--tasks", task_file, "Eazy", "--calls", "10"]) == 2
    assert "unknown task 'Eazy' in task file" in capsys.readouterr().err


def test_noise_kind_names_the_tasks_reaches_the_records_and_splits_the_noise_table(
    task_file, tmp_path, capsys, recorder
):
    from pipelines.bench import report
    from pipelines.bench.cli import BenchError, select_tasks
    from pipelines.bench.plan import plan
    from pipelines.bench.record import failure
    from pipelines.bench.stats import summarize

    out = str(tmp_path / "bench")
    argv = ["--tasks", task_file, "--only", "easy", "--methods", "plain", "--seeds", "1", "--out", out]
    assert bench(*argv, "--noise", "0,0.01", "--noise-kind", "multiplicative") == 0
    assert [(j.task.name, j.task.noise_kind) for j in recorder.jobs] == [
        ("easy", "multiplicative"),
        ("easy noise=0.01x", "multiplicative"),
    ]
    assert "at noise 0, 0.01 (multiplicative)" in capsys.readouterr().err
    recorder.jobs = []
    assert bench(*argv, "--noise", "0.01") == 0  # additive by default, named as ever
    assert [(j.task.name, j.task.noise_kind) for j in recorder.jobs] == [("easy noise=0.01", "additive")]
    assert bench(*argv, "--noise-kind", "multiplicative") == 2
    assert "--noise-kind goes with --noise" in capsys.readouterr().err
    with pytest.raises(BenchError, match="--noise-kind must be additive or multiplicative"):
        select_tasks(None, task_file, None, "0.1", "relative")

    tasks, _ = select_tasks(None, task_file, "easy", "0.01", "multiplicative")
    (job,) = plan(tasks, 1, ["plain"], 100, 1.0)
    loud = {**failure(job, "x"), "error": None, "recovered": True}
    assert list(loud) == list(RUN_FIELDS) and loud["noise_kind"] == "multiplicative"
    old = {k: v for k, v in failure(job, "x").items() if k != "noise_kind"}  # a record older than kinds
    old.update(task="easy noise=0.01", error=None)
    s = summarize([loud, old], ["easy noise=0.01x", "easy noise=0.01"], ["plain"])
    rows = s.by_noise[["noise_kind", "noise", "selected"]].values.tolist()
    assert rows == [["additive", 0.01, 0.0], ["multiplicative", 0.01, 100.0]]
    meta = {"source": "t", "seeds": 1, "calls": 100, "seconds": 1.0, "workers": 1, "executor": "inline"}
    text = report.markdown(s, meta)
    assert "| kind " in text and "| additive " in text and "| multiplicative " in text
