"""``induce bench --executor ray`` on a local Ray instance with 2 CPUs (slow: Ray takes a while to start)."""

from __future__ import annotations

import json

import pytest

from pipelines import cli

ray = pytest.importorskip("ray", reason='Ray is an optional extra: pip install -e ".[ray]"')


@pytest.mark.slow
def test_ray_executor_runs_and_records_every_job(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(
        "tasks:\n"
        "  - {name: easy, expression: 'x1*x1 + x1', function_set: [add, mul],\n"
        "     train: {distribution: uniform, low: 0, high: 1, points: 20}}\n"
        "  - {name: wide, expression: 'x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10 + x11 + x12',\n"
        "     function_set: [add, mul], train: {distribution: uniform, low: 0, high: 1, points: 30}}\n"
    )
    out = tmp_path / "bench"
    argv = ["bench", "--tasks", str(tasks), "--methods", "uniform,full", "--seeds", "1", "--calls", "2000"]
    argv += ["--seconds", "3", "--executor", "ray", "--workers", "2", "--out", str(out)]
    assert cli.main(argv) == 0  # a local instance: ray.init(num_cpus=2)
    runs = {
        (r["task"], r["method"]): r for r in map(json.loads, (out / "runs.jsonl").read_text().splitlines())
    }
    assert runs.keys() == {(t, m) for t in ("easy", "wide") for m in ("uniform", "full")}
    assert runs[("easy", "uniform")]["recovered"] and runs[("easy", "full")]["recovered"]
    assert "at most" in runs[("wide", "full")]["error"]  # a failed run is recorded, the rest go on
    err = capsys.readouterr().err
    assert "executor ray" in err and "failed: full on wide seed 0" in err
    assert not ray.is_initialized()  # the bench shut down the instance it started

    assert cli.main(argv) == 0  # resume: nothing to run, and Ray is not started
    assert "4 already in" in capsys.readouterr().err
