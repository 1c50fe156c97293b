"""The command line as a user runs it: real processes, exit codes, one-line errors."""

import json
import subprocess
import sys

import pytest

from pipelines.cli import main


def run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_solve_nguyen_1_with_uniform_search(tmp_path):
    out = tmp_path / "r.json"
    r = run(
        "solve", "Nguyen-1", "--pipeline", "uniform", "--json", str(out), "--plot", str(tmp_path / "p.png")
    )
    assert r.returncode == 0, r.stderr
    assert "recovered: True" in r.stdout
    res = json.loads(out.read_text())
    assert res["recovered"] and res["simulator_calls"] > 0 and "sympy" in res
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_bench_simulator_prints_figures():
    r = run("bench-simulator", "--parents", "4")
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("candidate_evaluations_per_second: ")
    assert int(last.split(": ")[1]) > 0


@pytest.fixture
def csv_files(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text("x,y\n" + "".join(f"{i / 10},{(i / 10) ** 2}\n" for i in range(10)))
    nan = tmp_path / "nan.csv"
    nan.write_text("x,y\n1,2\nnan,3\n2,4\n3,5\n")
    text = tmp_path / "text.csv"
    text.write_text("x,y\n1,a\n2,3\n")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("x,y\n1,2\n3\n")
    few = tmp_path / "few.csv"
    few.write_text("x,y\n1,2\n2,3\n")
    bad_task = tmp_path / "tasks.yaml"
    bad_task.write_text(
        "tasks:\n  - name: T\n    expression: 'x1 +'\n    train: {low: 0, high: 1, points: 5}\n"
    )
    return {"good": good, "nan": nan, "text": text, "ragged": ragged, "few": few, "bad_task": bad_task}


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["solve", "Nguyen-99"], "unknown task"),
        (["solve", "Nguyen-1", "--calls", "0"], "calls must be a positive integer"),
        (["solve", "Nguyen-1", "--seconds", "-1"], "seconds must be a positive number"),
        (["solve", "Nguyen-1", "--function-set", "add,frobnicate"], "unknown operator 'frobnicate'"),
        (["solve", "--csv", "{nan}", "--target", "y"], "NaN"),
        (["solve", "--csv", "{text}", "--target", "y"], "not numeric"),
        (["solve", "--csv", "{ragged}", "--target", "y"], "fields"),
        (["solve", "--csv", "{good}", "--target", "z"], "no column named 'z'"),
        (["solve", "--csv", "{few}", "--target", "y"], "too few points"),
        (["solve", "--csv", "{good}"], "--csv needs --target"),
        (["solve", "--csv", "missing.csv", "--target", "y"], "file not found"),
        (["solve", "--pipeline", "nonsense"], "unknown pipeline preset"),
        (["solve", "--tasks", "{bad_task}"], "task 'T'"),
    ],
)
def test_bad_input_gives_one_line_error(args, fragment, csv_files, capsys):
    args = [a.format(**csv_files) for a in args]
    code = main(args + ["--pipeline", "uniform"] if "--pipeline" not in args else args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert err[-1].startswith("error: ") and fragment in err[-1]
    assert not any("Traceback" in line for line in err)


def test_bad_input_through_a_real_process(csv_files):
    r = run("solve", "--csv", str(csv_files["nan"]), "--target", "y", "--pipeline", "uniform")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: ")
