"""Traces: hindsight labels are right, shards are reproducible and safe, on-policy metrics run."""

import json

import numpy as np
import pytest
import torch

from pipelines.cli import main
from pipelines.learning.on_policy import metric_metrics, on_policy_metrics, random_topk_hit
from pipelines.learning.traces import StateRecord, TraceConfig, hindsight, path_keys, run_task
from simulator.edits import Edit, apply, edit_distance, legal_edits
from simulator.execute import evaluate
from simulator.language import FunctionSet
from simulator.program import parse
from simulator.trace_store import (
    TraceError,
    load_traces,
    program_from,
    program_record,
    read_shard,
    state_edits,
)

KOZA = FunctionSet.from_names("Koza")
X = np.linspace(0.2, 2.0, 20)[:, None]


def _labelled_x1_record() -> tuple[StateRecord, list[Edit], np.ndarray]:
    """The expanded state x1 on data from sin(x1), labelled in hindsight by sin(x1)."""
    state = parse("x1")
    edits = legal_edits(state, KOZA, 30)
    record = StateRecord(
        state, 1.0, 10, edits, np.zeros(len(edits)), np.ones(len(edits), bool), np.ones(len(edits), bool)
    )
    y = evaluate(parse("sin(x1)"), X)
    hindsight(record, parse("sin(x1)"), KOZA, X, y, 30)
    return record, edits, y


def test_hindsight_labels_on_a_hand_made_state():
    record, edits, y = _labelled_x1_record()
    toward = [e for e, t in zip(edits, record.labels["toward"]) if t]
    assert record.labels["distance"] == 1 and toward == [Edit("wrap_unary", 0, "sin")]
    loss = record.labels["child_loss"]
    assert loss[edits.index(Edit("wrap_unary", 0, "sin"))] == 0.0
    log_edit = edits.index(Edit("wrap_unary", 0, "log"))
    expected = np.mean((np.log(X[:, 0]) - y) ** 2) / np.var(y)
    assert loss[log_edit] == pytest.approx(expected)


def test_metric_figures_measure_the_distance_to_the_found_program():
    """Hindsight's goal: an unsolved run's states are ranked against the program it found."""
    found = parse("x1*x1 + sin(x1)")
    states = ["x1*x1 + sin(x1)", "x1*x1 + x1", "x1*x1", "x1", "sin(sin(x1))"]
    run = {
        "task": {
            "X": torch.as_tensor(X),
            "y": torch.as_tensor(evaluate(parse("exp(x1*x1*x1)"), X)),  # the task, not solved
            "found": program_record(found),
            "solved": False,
        },
        "states": [
            {"program": program_record(parse(s)), "distance": edit_distance(parse(s), found)} for s in states
        ],
    }
    assert [st["distance"] for st in run["states"]] == [0, 1, 2, 3, 3]
    figures = metric_metrics([run], None)
    assert figures["nmse_spearman"] == pytest.approx(0.9747, abs=1e-3)  # NMSE to the found output
    assert np.isnan(figures["nmse_spearman_solved"]) and figures["metric_runs"] == 1


def test_path_keys_follow_the_trace():
    start = parse("x1")
    e1 = Edit("wrap_unary", 0, "sin")
    keys = path_keys(start, [e1])
    assert keys == {start.key, apply(start, e1).key}


def test_a_run_is_reproducible_from_its_seed():
    cfg = TraceConfig(pipeline="plain", calls=1_500, seconds=600, states_per_run=8)
    a, b = run_task(3, 7, cfg), run_task(3, 7, cfg)
    assert a["task"]["target"] == b["task"]["target"] and a["task"]["found"] == b["task"]["found"]
    assert [s["program"] for s in a["states"]] == [s["program"] for s in b["states"]]
    assert all(torch.equal(s["child_loss"], t["child_loss"]) for s, t in zip(a["states"], b["states"]))
    other = run_task(4, 7, cfg)
    assert other["task"]["target"] != a["task"]["target"]


def test_traces_through_the_cli_resume_and_measure(tmp_path, capsys):
    out = tmp_path / "tr"
    args = ["traces", "--out", str(out), "--tasks", "3", "--pipeline", "plain", "--calls", "800"]
    args += ["--seconds", "600", "--states", "6", "--shard-size", "2"]
    assert main(args) == 0
    assert "3 runs (2 shards new)" in capsys.readouterr().out
    assert main(args) == 0  # a rerun finds every shard made and makes none
    assert "(0 shards new)" in capsys.readouterr().out
    runs = load_traces(out)
    assert len(runs) == 3 and read_shard(out / "shard-00000.pt")["format"] == 1
    row = next(r["states"][0] for r in runs if r["states"])  # a split may solve a run unexpanded
    edits = state_edits(row)
    assert len(edits) == len(row["child_loss"]) == len(row["toward"])
    program = program_from(row["program"])
    assert all(apply(program, e) is not None for e in edits[:5])
    figures = on_policy_metrics(runs)
    assert figures["runs"] == 3 and "nmse_spearman" in figures
    assert main(args[:-4] + ["--calls", "900", "--seconds", "600", "--states", "6", "--shard-size", "2"]) == 2
    assert "another configuration" in capsys.readouterr().err


def test_bad_trace_input_is_one_line(tmp_path, capsys):
    assert main(["traces", "--out", str(tmp_path / "t"), "--function-sets", "kozza"]) == 2
    assert "unknown function set" in capsys.readouterr().err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "shard-00000.pt").write_bytes(b"not a shard")
    with pytest.raises(TraceError, match="not a readable trace shard"):
        load_traces(tmp_path / "bad")
    with pytest.raises(TraceError, match="no trace shards"):
        load_traces(tmp_path)
    for flag, value in (("--listwise", "-1"), ("--loss-temperature", "-0.1"), ("--best-child-share", "2")):
        assert main(["improve", "--out", str(tmp_path / "i"), flag, value]) == 2
        assert flag in capsys.readouterr().err


def test_heldout_recovery_per_task_is_paired_and_bound_by_calls():
    from pipelines.learning.improve import heldout_recovery

    cfg = TraceConfig(calls=300)
    first = heldout_recovery("plain", cfg, 2, per_task=True)
    again = heldout_recovery("plain", cfg, 2, reference=first["per_task_solved"], per_task=True)
    assert len(first["per_task_solved"]) == len(first["per_task_calls"]) == 2
    assert again["per_task_calls"] == first["per_task_calls"]  # calls alone bound a run
    assert again["wins_vs_plain"] == again["losses_vs_plain"] == 0
    for solved, calls in zip(first["per_task_solved"], first["per_task_calls"]):
        assert (calls is not None) == solved and (calls is None or calls <= 300)


def test_random_topk_hit_is_the_exact_chance():
    assert random_topk_hit(10, 1, 10) == 1.0
    assert random_topk_hit(10, 1, 1) == pytest.approx(0.1)
    assert random_topk_hit(4, 2, 2) == pytest.approx(1 - 1 / 6)


def test_one_round_of_expert_iteration_through_the_cli(tmp_path, capsys):
    """traces -> fit -> evaluate, for real: each round leaves models, a pipeline, metrics, a curve."""
    out = tmp_path / "improve"
    args = ["improve", "--out", str(out), "--rounds", "1", "--tasks", "3", "--heldout", "2"]
    args += ["--calls", "500", "--seconds", "600", "--steps", "2", "--gate", "2"]
    assert main(args) == 0
    models = ("edit_flow.pt", "similarity.pt", "decomposition_policy.pt")
    for name in (*models, "gate.json", "pipeline.yaml", "metrics.json"):
        assert (out / "round-1" / name).exists(), name
    assert (out / "learning_curve.png").exists()
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert len(lines) == 2 and '"edit_flow_spearman"' in lines[1]
    figures = json.loads((out / "round-1" / "metrics.json").read_text())
    assert {"plain_solved", "wins_vs_plain", "losses_vs_plain", "sign_test_p"} <= set(figures)
    from pipelines.interface.pipeline import InductionPipeline

    gate = json.loads((out / "round-1" / "gate.json").read_text())
    for module, decision in gate.items():  # a fit replaces the shipped model only if it gates higher
        fitted, current, margin = decision["fitted"], decision["current"], decision["margin"]
        better = fitted is not None and (
            current is None or (margin is not None and fitted - current > margin)
        )
        if better:  # and then through the planner, on the same gate targets
            better = decision["planner"]["no_worse"]
        assert decision["kept"].endswith(f"round-1/{module}.pt") if better else decision["kept"] == module
        assert figures["models"][module] == decision["kept"]
    pipe = InductionPipeline.from_config(out / "round-1" / "pipeline.yaml")
    assert pipe.planner.propose.checkpoint == gate["edit_flow"]["kept"]
    assert pipe.planner.subgoal.decomposer == gate["decomposition_policy"]["kept"]
    assert main(args) == 0  # a rerun finds every round done
    assert main([*args[:-2], "--gate", "-1"]) == 2


def test_the_gate_keeps_a_fit_only_when_it_clearly_raises_the_figure(monkeypatch):
    from pipelines.learning import improve

    rng = np.random.default_rng(0)
    old = rng.normal(0.4, 0.2, 200)
    units = {
        "old": old,
        "better": old + 0.1 + rng.normal(0, 0.05, 200),  # a gain far above its standard error
        "noise": old + 0.005 + rng.normal(0, 0.2, 200),  # higher on average, inside the noise
        "worse": old - 0.1,
        "broken": np.full(200, np.nan),
    }
    monkeypatch.setattr(improve, "gate_units", lambda module, checkpoint, runs: units[checkpoint])
    current = {"edit_flow": "old", "similarity": "old", "decomposition_policy": "old"}
    fitted = {"edit_flow": "better", "similarity": "noise", "decomposition_policy": "broken"}
    decisions = improve.gate(current, fitted, runs=[])
    assert units["noise"].mean() > old.mean()
    assert {m: d["kept"] for m, d in decisions.items()} == {
        "edit_flow": "better",
        "similarity": "old",
        "decomposition_policy": "old",
    }
    assert 0 < decisions["similarity"]["margin"] < 0.1 and decisions["decomposition_policy"]["fitted"] is None
    assert improve.gate(current, {"edit_flow": "worse"}, runs=[])["edit_flow"]["kept"] == "old"
    # no gate, or a current model the gate cannot score: the fit is kept
    assert {m: d["kept"] for m, d in improve.gate(current, fitted, runs=None).items()} == fitted
    assert (
        improve.gate({"edit_flow": "broken"}, {"edit_flow": "worse"}, runs=[])["edit_flow"]["kept"] == "worse"
    )


def test_a_fit_that_gates_higher_must_still_solve_no_worse_through_the_planner(monkeypatch):
    from pipelines.learning import improve

    old = np.linspace(0.0, 1.0, 50)
    units = {"old": old, "better": old + 0.2}
    monkeypatch.setattr(improve, "gate_units", lambda module, checkpoint, runs: units[checkpoint])

    def outcome(solved, median):
        return {
            "per_task_solved": solved,
            "heldout_solved": float(np.mean(solved)),
            "heldout_median_calls": median,
        }

    outcomes = {  # the policy's fit loses a target the current models solve; the flow's wins one
        "old": outcome([True, True, False], 200.0),
        "policy": outcome([True, False, False], 300.0),
        "flow": outcome([True, True, True], 150.0),
    }

    def planner(models):
        fitted = [m for m, c in models.items() if c == "better"]
        return outcomes[
            {"decomposition_policy": "policy", "edit_flow": "flow"}[fitted[0]] if fitted else "old"
        ]

    current = {"edit_flow": "old", "decomposition_policy": "old"}
    fitted = {"edit_flow": "better", "decomposition_policy": "better"}
    decisions = improve.gate(current, fitted, runs=[], planner=planner)
    assert {m: d["kept"] for m, d in decisions.items()} == {
        "edit_flow": "better",
        "decomposition_policy": "old",
    }
    assert decisions["decomposition_policy"]["planner"] == {
        "fitted_solved": pytest.approx(1 / 3),
        "current_solved": pytest.approx(2 / 3),
        "wins": 0,
        "losses": 1,
        "fitted_median_calls": 300.0,
        "current_median_calls": 200.0,
        "no_worse": False,
    }
    # at equal recovery the median calls decide; a run that failed in most counts as never recovering
    same = outcome([True, True, False], 200.0)
    assert improve.planner_rule(same, outcome([True, True, False], 250.0))["no_worse"] is False
    assert improve.planner_rule(same, outcome([True, True, False], 200.0))["no_worse"] is True
    assert improve.planner_rule(outcome([True, False, False], None), outcome([True, False, False], None))[
        "no_worse"
    ]


def _traced_x1_state():
    """The state x1 on data from sin(x1), labelled and read back as the edit flow's data sees it."""
    from flows.trace_edit_data import traced_state
    from pipelines.learning.traces import _state_row

    record, _, y = _labelled_x1_record()
    return traced_state(_state_row(record, set()), X, y, KOZA, parse("sin(x1)")), record.labels["child_loss"]


def test_loss_ranked_labels_and_listwise_targets():
    from flows.trace_edit_data import listwise_targets, loss_label, rank_weights

    st, loss = _traced_x1_state()
    finite = np.isfinite(loss)
    assert len(st.by_loss) == finite.sum() and st.best == 1
    assert st.by_loss[0] == Edit("wrap_unary", 0, "sin")  # the only child with loss 0
    w = rank_weights(st, 0.1)
    assert w[0] == 1.0 and np.all(np.diff(w) < 0)
    rng = np.random.default_rng(0)
    assert loss_label(st, 0.0, rng) == Edit("wrap_unary", 0, "sin")
    candidates, q = listwise_targets(st, 8, 0.1, rng)
    assert len(candidates) == 8 and candidates[0] == st.by_loss[0]
    assert q.sum() == pytest.approx(1.0) and q[0] == q.max()
    ranks = [st.by_loss.index(c) for c in candidates]
    assert ranks == sorted(ranks)  # kept in rank order, weights from the full ranking


def test_the_listwise_loss_teaches_the_flow_a_states_ranking():
    """A few steps on one traced state's list move the flow's scores toward the children's ranking."""
    from flows.edit_data import EditExample, collate_edit_examples
    from flows.edit_flow import EditFlow
    from flows.encoders import encode_state
    from flows.trace_edit_data import listwise_targets
    from simulator.scoring import spearman

    torch.manual_seed(0)
    st, _ = _traced_x1_state()
    candidates, q = listwise_targets(st, 64, 0.2, np.random.default_rng(0))
    example = EditExample(
        st.X, st.y, st.program, st.found, KOZA, candidates[0], encode_state(st.program, st.X, st.y), 1,
        candidates[:1], candidates, q,
    )  # fmt: skip
    model = EditFlow(hidden=16, encoder_layers=1, heads=2, context_features=16, flow_hidden=16)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = collate_edit_examples([example])

    def agreement() -> float:
        scores = model.score_edits(st.program, st.X, st.y, list(candidates))
        return spearman(scores, np.log(q))

    before = agreement()
    losses = []
    for _ in range(60):
        model.train()
        loss = model._list_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5
    assert agreement() > max(before, 0.0) + 0.3
