"""What a newcomer meets first: CSV columns, the chosen law, the front, the printout."""

import json

import numpy as np
import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.search.selection import distinct, select
from simulator.execute import evaluate

FAST = ["--pipeline", "plain", "--calls", "3000", "--seconds", "600"]


@pytest.fixture
def line_frame():
    t = np.linspace(0.5, 8, 16)
    return pd.DataFrame({"t": t, "label": ["a"] * 16, "v": 2.5 * t + 0.7})


def test_a_csv_saved_with_its_pandas_index_is_refused_in_one_line(tmp_path, line_frame, capsys):
    path = tmp_path / "line.csv"
    line_frame[["t", "v"]].to_csv(path)  # the header reads ,t,v
    assert main(["solve", "--csv", str(path), "--target", "v", *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "no name" in err[-1] and "index=False" in err[-1]


def test_features_choose_the_inputs_and_leave_out_index_and_text(tmp_path, line_frame, capsys):
    path = tmp_path / "line.csv"
    line_frame.to_csv(path)  # an unnamed index and a text column beside t
    out = tmp_path / "out.json"
    argv = ["solve", "--csv", str(path), "--target", "v", "--features", "t", "--json", str(out)]
    assert main([*argv, *FAST]) == 0
    found = json.loads(out.read_text())
    assert found["variables"] == ["t"] and "t" in found["sympy"] and found["nmse_train"] < 1e-20


def test_an_index_like_column_gets_a_warning_and_drop_leaves_it_out(tmp_path, line_frame, capsys):
    path = tmp_path / "line.csv"
    line_frame.rename_axis("idx").to_csv(path)
    assert main(["solve", "--csv", str(path), "--target", "v", "--drop", "idx,label", *FAST]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["solve", "--csv", str(path), "--target", "v", "--drop", "label", *FAST]) == 0
    err = capsys.readouterr().err
    assert "warning: column 'idx'" in err and "--drop idx" in err


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--features", "tt"], "no column named 'tt'; did you mean t?"),
        (["--features", "v"], "is the target"),
        (["--features", "t", "--drop", "label"], "not both"),
        (["--drop", ","], "--drop is empty"),
        ([], "column 'label' is not numeric: 'a' (leave the column out with --drop label)"),
    ],
)
def test_bad_column_choices_get_one_line(tmp_path, line_frame, capsys, extra, fragment):
    path = tmp_path / "line.csv"
    line_frame.to_csv(path, index=False)
    assert main(["solve", "--csv", str(path), "--target", "v", *extra, *FAST]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and fragment in err[-1], err[-1]


def test_no_criterion_chooses_a_row_worse_than_the_mean():
    losses = [2.46, 0.44]  # few points: mdl's size term outweighs its loss term
    for criterion in ("mdl", "score", "accuracy", "validation"):
        assert select(criterion, np.array([-5.0, 30.0]), losses) == 1
    assert select("mdl", np.array([1.0, 3.0]), [1.5, 1.2]) == 1  # none beats the mean: the lowest loss


def test_when_nothing_beats_the_mean_the_printout_says_so(tmp_path, capsys):
    """Koza has no constants: decay from 1000 is out of its reach within a small budget."""
    t = np.linspace(0, 50, 40)
    path = tmp_path / "decay.csv"
    pd.DataFrame({"t": t, "N": 1000 * np.exp(-0.05 * t)}).to_csv(path, index=False)
    out = tmp_path / "out.json"
    argv = ["solve", "--csv", str(path), "--target", "N", "--function-set", "Koza", "--json", str(out)]
    assert main([*argv, "--pipeline", "plain", "--calls", "2000", "--seconds", "600"]) == 0
    found = json.loads(out.read_text())
    if not found["beats_mean"]:
        assert "beats the mean" in capsys.readouterr().out
    chosen = [row for row in found["front"] if row["chosen"]]
    better = [row for row in found["front"] if row["loss"] < 1]
    assert not better or chosen[0]["loss"] < 1


def test_the_front_shows_each_function_once():
    from pipelines.interface.estimator import ProgramRegressor

    rng = np.random.default_rng(1)
    t = np.linspace(0, 4, 30)
    X, y = t[:, None], 3.0 * np.exp(-0.7 * t) * (1 + 0.01 * rng.standard_normal(30))
    est = ProgramRegressor(calls=3000, seconds=600, pipeline="plain", random_state=0).fit(X, y)
    predictions = [evaluate(row.program, X) for row in est.result_.front]
    assert distinct(predictions, float(np.std(y))) == list(range(len(predictions)))
    assert any(row.program.key == est.program_.key for row in est.result_.front)


def test_distinct_keeps_the_smallest_of_equal_functions_or_the_chosen_one():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.5])
    same = [a, b, a * (1 + 1e-13), b + 1e-14]
    assert distinct(same, 1.0) == [0, 1]
    assert distinct(same, 1.0, keep=2) == [1, 2]


@pytest.fixture(scope="module")
def fitted():
    from pipelines.interface.estimator import ProgramRegressor

    t = np.linspace(0.5, 8, 16)
    est = ProgramRegressor(calls=3000, seconds=600, pipeline="plain", verbose=True)
    return est.fit(pd.DataFrame({"t": t}), 2.5 * t + 0.7), t


def test_the_estimator_speaks_pysr(fitted):
    import sympy

    est, t = fitted
    eq = est.equations_
    assert isinstance(eq, pd.DataFrame) and len(eq) >= 2
    assert {"complexity", "loss", "equation", "sympy_format", "lambda_format"} <= set(eq.columns)
    best = est.get_best()
    assert best["chosen"] and best["loss"] < 1e-20
    # (t + 0.28)/0.4: 0.4 snaps to 2/5; 0.28 (7/25) is no simple form, and prints as the fit's
    assert str(est.sympy()) == "5*t/2 + 0.7"
    assert est.sympy(0) == eq["sympy_format"][0] and est.latex(0) == sympy.latex(eq["sympy_format"][0])
    assert np.allclose(best["lambda_format"](t[:, None]), 2.5 * t + 0.7)
    assert "t" in str(est.program_) and "x1" not in str(est.program_)
    assert "law: 5*t/2 + 0.7" in repr(est)
    with pytest.raises(IndexError, match="no row 99"):
        est.sympy(99)


def test_verbose_shows_a_progress_line(capfd):
    from pipelines.interface.estimator import ProgramRegressor

    t = np.linspace(0.5, 8, 16)
    ProgramRegressor(calls=500, seconds=600, pipeline="plain", verbose=True).fit(
        pd.DataFrame({"t": t}), t * t
    )
    assert "call" in capfd.readouterr().err


def test_solve_on_a_dataframe_names_the_variables():
    from pipelines.interface.pipeline import InductionPipeline

    t = np.linspace(0.5, 8, 16)
    result = InductionPipeline.preset("plain").solve(
        pd.DataFrame({"t": t}), pd.Series(2.5 * t), function_set="ckoza", calls=1000, seconds=600
    )
    assert "t" in str(result.sympy()) and "x1" not in str(result)


def test_the_plot_axes_carry_the_csv_names(tmp_path, line_frame, monkeypatch):
    from matplotlib.figure import Figure

    labels = []
    monkeypatch.setattr(
        Figure,
        "savefig",
        lambda fig, *a, **k: labels.extend((ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes),
    )
    path = tmp_path / "line.csv"
    line_frame.to_csv(path, index=False)
    argv = [
        "solve",
        "--csv",
        str(path),
        "--target",
        "v",
        "--drop",
        "label",
        "--plot",
        str(tmp_path / "p.png"),
    ]
    assert main([*argv, *FAST]) == 0
    assert ("t", "v") in labels


def test_the_printout_reads_easily(tmp_path, capsys):
    t = np.linspace(0.5, 8, 16)
    path = tmp_path / "decay.csv"
    pd.DataFrame({"t": t, "N": 1000 * np.exp(-0.3 * t)}).to_csv(path, index=False)
    out = tmp_path / "out.json"
    argv = ["solve", "--csv", str(path), "--target", "N", "--json", str(out), *FAST]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    lines = dict(line.split(":", 1) for line in printed.splitlines() if line[:1].isalpha() and ":" in line)
    found = json.loads(out.read_text())
    assert found["nmse_train"] < 1e-20
    assert lines["found"].strip() == "1000*exp(-3*t/10)"  # the fit's constants, snapped exactly
    assert found["sympy"] == "1000*exp(-3*t/10)" and len(found["fitted_constants"]) == 2
    assert f"{found['simulator_calls']:,} simulator calls" in lines["calls"]
    notes = printed.rstrip().splitlines()[-3:]
    assert "1 is what the mean of y scores" in notes[0] and "lower is better" in notes[1]
    assert notes[2].strip().startswith("*: the chosen row")


def test_the_split_line_uses_the_readme_words():
    from pipelines.search.result import Result

    result = Result(None, 0.0, [], None, [], 0, 0, 0.0, "", split="a product of powers: x1^2 · R(x2)")
    result.variable_names = ("r", "h")
    assert result.split_words() == "power split, y = r^2 · R(h)"


def test_a_task_file_names_its_variables(tmp_path, capsys):
    from simulator.suites import load_tasks

    path = tmp_path / "tasks.yaml"
    path.write_text(
        "tasks:\n  - name: Kinetic\n    expression: m*v**2/2\n    variables: [m, v]\n"
        "    function_set: Koza\n    train: {low: 0.5, high: 2, points: 20}\n"
    )
    task = load_tasks(path)[0]
    assert (
        task.n_vars == 2 and task.variable_names == ("m", "v") and task.to_dict()["variables"] == ["m", "v"]
    )
    out = tmp_path / "out.json"
    assert main(["solve", "--tasks", str(path), "--json", str(out), *FAST]) == 0
    found = json.loads(out.read_text())
    assert found["variables"] == ["m", "v"] and "m" in found["truth"] and "x1" not in found["truth"]
    assert found["recovered"] and "x1" not in found["sympy"] and "x1" not in capsys.readouterr().out


def test_task_variable_names_are_checked(tmp_path, capsys):
    path = tmp_path / "tasks.yaml"
    path.write_text(
        "tasks:\n  - name: K\n    expression: m*v\n    variables: [m, m]\n"
        "    function_set: Koza\n    train: {low: 0.5, high: 2, points: 20}\n"
    )
    assert main(["solve", "--tasks", str(path), *FAST]) == 2
    assert "a name is given twice" in capsys.readouterr().err


def _readme_python() -> str:
    from pathlib import Path

    text = (Path(__file__).parents[1] / "README.md").read_text()
    start = text.index("```python\nimport pandas as pd")
    return text[start + len("```python\n") : text.index("```", start + 10)]


def _noisy_decay(path) -> None:
    rng = np.random.default_rng(0)
    t = np.linspace(0, 50, 60)
    N = 1000 * np.exp(-0.05 * t) * (1 + 0.01 * rng.standard_normal(60))
    pd.DataFrame({"t": t, "N": N}).to_csv(path, index=False)


def _is_decay(result) -> bool:
    from simulator.recovery import NOISY_RTOL, is_recovered
    from simulator.truth import parse_truth

    truth = parse_truth("1000*exp(-0.05*x1)")
    return bool(is_recovered(result.program.to_sympy(), truth, domain=[(0.0, 50.0)], rtol=NOISY_RTOL))


def test_the_readme_example_on_a_small_budget(tmp_path, monkeypatch):
    """The README's Python example, with the plain pipeline and a small budget."""
    monkeypatch.chdir(tmp_path)
    _noisy_decay(tmp_path / "decay.csv")
    code = _readme_python().split("\nfrom pipelines.interface.estimator")[0]
    code = code.replace('preset("full")', 'preset("plain")').replace("calls=50_000", "calls=3000")
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    assert _is_decay(scope["result"]), scope["result"].sympy()
    assert "t" in str(scope["result"].sympy())


@pytest.mark.slow
def test_the_readme_example_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _noisy_decay(tmp_path / "decay.csv")
    scope: dict = {}
    exec(compile(_readme_python(), "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    assert _is_decay(scope["result"]), scope["result"].sympy()
    assert "t" in str(scope["est"].sympy())


def test_pandas_input_reaches_torch_as_writable_float64():
    """torch warns on read-only arrays, which pandas hands out: the data checks copy them."""
    import warnings

    import torch

    from simulator.data import check_xy

    t = pd.Series(np.linspace(0.5, 4, 20))
    X, y = check_xy(pd.DataFrame({"t": t}), t * 2)
    assert X.flags.writeable and y.flags.writeable and X.dtype == y.dtype == np.float64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.as_tensor(y)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--function-set", "ckozza"], "did you mean ckoza"),
        (["--pipeline", "ful"], "did you mean full?"),
        (["--config", "fulll"], "nor a shipped config"),
        (["--select", "validation"], "add --validation 0.2"),
        (["--features", "t"], "they go with --csv"),
    ],
)
def test_messages_suggest_and_speak_cli(args, fragment, capsys):
    assert main(["solve", "Nguyen-1", *args, "--calls", "10"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and fragment in err[-1], err[-1]


def test_help_lists_every_preset_and_the_seed(capsys):
    from pipelines.interface.pipeline import PRESETS

    with pytest.raises(SystemExit):
        main(["solve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in PRESETS) and "--seed SEED seeds" in text


def test_a_solve_records_the_checkpoint_files_it_used(tmp_path, capsys):
    import hashlib

    from pipelines.shipped import checkpoint_path

    def sha(path) -> str:
        return hashlib.sha256(open(path, "rb").read()).hexdigest()[:12]

    out = tmp_path / "full.json"
    assert main(["solve", "Nguyen-1", "--pipeline", "full", "--calls", "2000", "--json", str(out)]) == 0
    used = json.loads(out.read_text())["checkpoints"]
    assert used and {"edit_flow", "similarity"} <= {c["shipped"] for c in used}
    for c in used:
        assert c["path"] == str(checkpoint_path(c["shipped"]).resolve()) and c["sha256"] == sha(c["path"])
    (line,) = [s for s in capsys.readouterr().out.splitlines() if s.startswith("models:")]
    assert all(f"{c['shipped']}.pt {c['sha256']}" in line for c in used)

    # a user's own file by its path; a plain solve reads none and prints no models line
    mine = tmp_path / "my_similarity.pt"
    mine.write_bytes(checkpoint_path("similarity").read_bytes())
    config = tmp_path / "mine.yaml"
    config.write_text(
        "preset: plain\n"
        f"verify: {{class_path: pipelines.search.verify.Verify, init_args: {{similarity: {mine}}}}}\n"
    )
    for args, files in (
        (["--config", str(config)], [{"path": str(mine.resolve()), "sha256": sha(mine), "shipped": None}]),
        (["--pipeline", "plain"], []),
    ):
        assert main(["solve", "Nguyen-1", *args, "--calls", "2000", "--json", str(out)]) == 0
        assert json.loads(out.read_text())["checkpoints"] == files
        assert ("models:" in capsys.readouterr().out) == bool(files)
