"""The command line as a user runs it: real processes, exit codes, one-line errors."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

from pipelines import cli
from pipelines.cli import main


def run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def test_solve_nguyen_1_with_uniform_search(tmp_path):
    out = tmp_path / "r.json"
    budget = ["--calls", "20000", "--seconds", "600"]  # the call budget binds; the clock never should
    r = run(
        "solve",
        "Nguyen-1",
        "--pipeline",
        "uniform",
        *budget,
        "--json",
        str(out),
        "--plot",
        str(tmp_path / "p.png"),
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
    blank = tmp_path / "blank.csv"  # blank lines still count: the NaN is on the file's line 5
    blank.write_text("x,y\n\n1,2\n\ninf,3\n2,4\n")
    bad_task = tmp_path / "tasks.yaml"
    bad_task.write_text(
        "tasks:\n  - name: T\n    expression: 'x1 +'\n    train: {low: 0, high: 1, points: 5}\n"
    )
    return {
        "good": good,
        "nan": nan,
        "text": text,
        "ragged": ragged,
        "few": few,
        "blank": blank,
        "bad_task": bad_task,
    }


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["solve", "Nguyen-99"], "unknown task"),
        (["solve", "Nguyen-1", "--calls", "0"], "calls must be a positive integer"),
        (["solve", "Nguyen-1", "--seconds", "-1"], "seconds must be a positive number"),
        (["solve", "Nguyen-1", "--function-set", "add,frobnicate"], "unknown operator 'frobnicate'"),
        (["solve", "Nguyen-1", "--function-set", ""], "--function-set is empty"),
        (["solve", "Nguyen-1", "--function-set", " , "], "--function-set is empty"),
        (["solve", "--csv", "{nan}", "--target", "y"], "line 3, column 'x' is NaN"),
        (["solve", "--csv", "{blank}", "--target", "y"], "line 5, column 'x' is infinite"),
        (["solve", "--csv", "{text}", "--target", "y"], "line 2, column 'y' is not numeric: 'a'"),
        (["solve", "--csv", "{ragged}", "--target", "y"], "line 3 has 1 fields, the header has 2"),
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


def test_a_closed_pipe_ends_quietly():
    """``induce solve ... | head -1``: the reader leaves early; no error, no traceback."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "solve",
            "Nguyen-1",
            "--pipeline",
            "uniform",
            "--calls",
            "3000",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stdout.readline()
    proc.stdout.close()  # what head does after its line
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141, err
    assert first.startswith("found:") and "error" not in err and "Traceback" not in err


def test_broken_pipe_in_any_command_is_quiet(monkeypatch, capsys):
    def writes_to_a_closed_pipe(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "cmd_solve", writes_to_a_closed_pipe)
    assert main(["solve", "Nguyen-1"]) == 141
    assert capsys.readouterr().err == ""


class _Found:
    """What plot_result reads from a result."""

    history = [(1, 1.0), (50, 0.1), (400, 1e-12)]
    variable_names = None

    def predict(self, X):
        return X.sum(axis=1)

    def sympy(self):
        return "x1 + x2"


@pytest.mark.parametrize("d", [1, 2])
def test_plot_without_warnings(tmp_path, d):
    X = np.random.default_rng(0).uniform(-1, 1, size=(20, d))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "No artists with labels found to put in legend"
        cli.plot_result(_Found(), X, X.sum(axis=1), str(tmp_path / "p.png"), "t")
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_csv_default_function_set_has_constants_like_the_estimator(tmp_path, capsys):
    """Data without a named set: the CLI and ProgramRegressor agree (CKoza, fitted constants)."""
    import inspect
    import json

    from pipelines.cli import DATA_FUNCTION_SET
    from pipelines.interface.estimator import ProgramRegressor

    assert inspect.signature(ProgramRegressor).parameters["function_set"].default == DATA_FUNCTION_SET
    data = tmp_path / "line.csv"
    data.write_text("a,b\n" + "".join(f"{i / 10},{2.5 * i / 10 + 0.7}\n" for i in range(1, 15)))
    out = tmp_path / "out.json"
    argv = ["solve", "--csv", str(data), "--target", "b", "--pipeline", "plain"]
    assert main([*argv, "--calls", "3000", "--seconds", "600", "--json", str(out)]) == 0
    found = json.loads(out.read_text())
    assert found["nmse_train"] < 1e-20, found["program"]  # exact only with fitted constants


def test_csv_column_names_reach_text_sympy_latex_json_and_front(tmp_path, capsys):
    import json

    data = tmp_path / "gas.csv"
    rows = [(n, t, 8.314 * n * t) for n in (1.0, 2.0, 3.5) for t in (250.0, 300.0, 350.0, 400.0)]
    data.write_text("moles,temp,pv\n" + "".join(f"{n},{t},{v}\n" for n, t, v in rows))
    out = tmp_path / "gas.json"
    argv = ["solve", "--csv", str(data), "--target", "pv", "--pipeline", "plain", "--calls", "3000"]
    assert main([*argv, "--seconds", "600", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    found = json.loads(out.read_text())
    assert found["variables"] == ["moles", "temp"]
    for text in (found["program"], found["sympy"], found["latex"], printed):
        assert "moles" in text and "temp" in text and "x1" not in text, text
    assert all("x1" not in row["sympy"] and "x2" not in row["sympy"] for row in found["front"])


def test_estimator_names_variables_from_a_dataframe():
    import pandas as pd

    from pipelines.interface.estimator import ProgramRegressor

    X = pd.DataFrame({"radius": np.linspace(0.5, 2, 20)})
    est = ProgramRegressor(function_set="koza", calls=2000, seconds=600, pipeline="plain")
    est.fit(X, X["radius"] ** 2 + X["radius"])
    assert "radius" in str(est.sympy()) and "radius" in est.latex()
    assert all("x1" not in text for text in est.equations_["equation"])
