"""The scientist's loop, measured: ``induce bench-loop``, its shared noise and its paired count."""

import json
import math

import numpy as np
import pytest

from pipelines.bench.loop import measure, random_points, rounds_needed, summarize
from pipelines.cli import main
from simulator.suites import find_task, load_tasks

LAWS = "benchmarks/physics/laws.yaml"


def _law(name: str = "Free fall", noise: float = 0.01):
    return find_task(load_tasks(LAWS), name).with_noise(noise)


def test_the_kth_point_measured_gets_the_kth_noise_draw_whichever_arm_measured_it():
    task = _law()
    X = random_points(task, 5, seed=0, round_=1)
    y = measure(task, X, 10, seed=0)
    assert np.allclose(measure(task, X[2:], 12, seed=0), y[2:])  # the same draws by position
    assert not np.allclose(measure(task, X, 11, seed=0), y)  # other positions, other draws
    assert np.allclose(measure(_law(noise=0.0), X, 10, seed=0), task.truth(X))
    low, high = np.array(task.domain()).T
    assert np.all((X >= low) & (X <= high))


def _record(suggested, random, rounds=3):
    arm = lambda r: {"rounds": r, "history": [], "fallbacks": 0}  # noqa: E731
    return {
        "task": "t",
        "seed": 0,
        "start": 8,
        "add": 3,
        "max_rounds": rounds,
        "suggested": arm(suggested),
        "random": arm(random),
    }


def test_summary_pairs_rounds_to_recovery_and_draws_the_curve():
    records = [_record(1, 3), _record(2, None), _record(0, 0), _record(None, 1), _record(None, None)]
    records.append({"task": "t", "seed": 1, "error": "boom"})
    s = summarize(records)
    assert (s["wins"], s["losses"], s["ties"], s["failed"], s["round0"]) == (2, 1, 2, 1, 1)
    assert s["points"] == [8, 11, 14, 17]
    assert s["suggested"]["curve"] == [0.2, 0.4, 0.6, 0.6] and s["random"]["curve"] == [0.2, 0.4, 0.4, 0.6]
    assert math.isinf(rounds_needed(records[1], "random")) and rounds_needed(records[0], "random") == 3


def test_bench_loop_runs_both_arms_resumes_and_reports(tmp_path, capsys):
    out = tmp_path / "loop"
    argv = ["bench-loop", "--tasks", LAWS, "--only", "Damped oscillation", "--seeds", "1", "--start", "6",
            "--rounds", "1", "--method", "plain", "--calls", "1500", "--seconds", "600",
            "--executor", "inline", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "sign test" in captured.out and "bench-loop:" in captured.err
    (rec,) = [json.loads(line) for line in (out / "runs.jsonl").read_text().splitlines()]
    assert rec["task"] == "Damped oscillation noise=0.01" and rec["error"] is None
    for arm in ("suggested", "random"):
        history = rec[arm]["history"]
        assert history[0] == rec["suggested"]["history"][0]  # round 0 is one solve, shared
        assert [h["points"] for h in history] == [6, 9][: 1 if history[0]["recovered"] else 2]
    assert (out / "summary.md").read_text().startswith("# The scientist's loop")
    assert (out / "recovery_vs_points.png").stat().st_size > 0
    assert main(argv) == 0 and "1 already in" in capsys.readouterr().err  # resumed: nothing rerun


@pytest.mark.parametrize(
    "flag, fragment",
    [("--rounds=0", "--rounds must be at least 1"), ("--noise=-1", "--noise must be between")],
)
def test_bench_loop_bad_numbers_are_one_line(tmp_path, capsys, flag, fragment):
    assert main(["bench-loop", flag, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1
