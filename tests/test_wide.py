"""Throughput settings of the planner: wide expansions and the sub-goal stage's share of time."""

import numpy as np

from pipelines.search.budget import Budget
from pipelines.search.planner import SCORED_PER_CALL, Planner
from pipelines.search.problem import Problem
from pipelines.search.screen import NoScreen
from pipelines.search.stages import SubgoalOffer
from pipelines.search.types import Candidate, Node
from simulator.edits import apply, legal_edits
from simulator.execute import evaluate_many
from simulator.language import FunctionSet
from simulator.program import parse
from simulator.scoring import nmse


def _setup(planner: Planner, text: str = "sin(x1) + x1"):
    X = np.linspace(-2, 2, 30)[:, None]
    problem = Problem(X, np.sin(X[:, 0]) * X[:, 0] + X[:, 0] ** 2, FunctionSet.from_names("Koza"))
    state = planner.solve_state(problem, Budget(100_000, 600))
    parent = parse(text)
    node = Node(Candidate(parent, 1.0, (), "start", "a test"), None, 0.0)
    return problem, state, node


def test_a_wide_expansion_runs_every_legal_edit_and_keeps_the_best():
    planner = Planner(width=8, screen=NoScreen())
    problem, state, node = _setup(planner)
    edits = legal_edits(node.program, problem.function_set, planner.settings.max_size)
    children, _ = planner.edit_children(state, node)
    assert state.budget.calls == len(edits) > 40  # every edit is a call (no constants to fit here)
    assert 4 <= len(children) <= 8
    Y, ok = evaluate_many([apply(node.program, e) for e in edits], problem.X)
    losses = np.where(ok, nmse(Y, problem.y), np.inf)
    kept = np.sort([c.loss for c, _ in children])[:4]
    assert np.allclose(kept, np.sort(losses)[:4], rtol=1e-9)  # the width's lower half by loss

    narrow = Planner(width=8, screen=NoScreen(), verify_all=False)
    _, state, node = _setup(narrow)
    assert len(narrow.edit_children(state, node)[0]) <= 8 and state.budget.calls == 8


ASK = 200  # what one ask of the stub stage costs, in calls: its lookups at SCORED_PER_CALL


class _StubSession:
    """A sub-goal stage that offers nothing and reports ASK calls' worth of lookups."""

    def __init__(self):
        self.asked: list[str] = []

    def wants_call(self, budget) -> bool:
        return False

    def candidates(self, program, budget, location_scores=None) -> SubgoalOffer:
        self.asked.append(program.key)
        return SubgoalOffer(scored=ASK * SCORED_PER_CALL)


class _StubSubgoal:
    name = "stub"

    def __init__(self):
        self.session = _StubSession()

    def start(self, problem):
        return self.session


def _run(share: float):
    stage = _StubSubgoal()
    expanded: list[str] = []
    planner = Planner(subgoal=stage, width=8, subgoal_share=share, shapes=False, separate=False)
    X = np.linspace(0.1, 3, 20)[:, None]
    y = np.sin(X[:, 0]) * np.exp(X[:, 0]) / (X[:, 0] + 3.7)
    res = planner.search(
        Problem(X, y, FunctionSet.from_names("Koza")),
        5_000,
        600.0,
        on_expand=lambda e: expanded.append(e.parent.program.key),
    )
    return res, stage.session.asked, expanded


def test_the_subgoal_stage_keeps_to_its_share_of_the_work():
    res, asked, expanded = _run(0.25)
    assert res.stopped == "calls"
    assert 0 < len(asked) < len(expanded) / 2
    # its work is at most a third of the edits' (a share of 0.25), give or take one ask
    assert (len(asked) - 1) * ASK <= res.calls / 3
    assert set(asked) <= set(expanded)  # only expanded nodes wait for their sub-goals
    assert _run(0.25)[1] == asked  # counted, not timed: the same seed, the same search

    _, asked, expanded = _run(1.0)
    assert asked == expanded  # share 1: asked at every expansion, in order


class _OfferSession:
    """A sub-goal stage that offers fixed whole programs at its first ask."""

    def __init__(self, offers):
        self.offers = offers

    def wants_call(self, budget) -> bool:
        return False

    def candidates(self, program, budget, location_scores=None) -> SubgoalOffer:
        offers, self.offers = self.offers, []
        return SubgoalOffer([Candidate(p, np.inf, None, "subgoal", "a test offer") for p in offers])


class _OfferSubgoal:
    name = "offer"

    def __init__(self, offers):
        self.offers = offers

    def start(self, problem):
        return _OfferSession(list(self.offers))


def test_replacements_past_the_size_cap_join_only_when_exact():
    X = np.linspace(0.1, 3, 20)[:, None]
    y = X[:, 0] ** 5 + X[:, 0]
    bloat, exact = parse("x1 * x1 * x1 * x1 * x1 + sin(x1)"), parse("x1 * x1 * x1 * x1 * x1 + x1")
    assert min(bloat.complexity, exact.complexity) > 9  # past the cap
    expanded: list[str] = []
    planner = Planner(
        subgoal=_OfferSubgoal([bloat]), width=8, max_size=9, shapes=False, separate=False, linear=False
    )
    res = planner.search(
        Problem(X, y, FunctionSet.from_names("Koza")),
        3_000,
        600.0,
        on_expand=lambda e: expanded.append(e.parent.program.key),
    )
    assert bloat.key not in expanded and all(row.complexity <= 9 for row in res.front)

    planner = Planner(
        subgoal=_OfferSubgoal([bloat, exact]), width=8, max_size=9, shapes=False, separate=False, linear=False
    )
    res = planner.search(Problem(X, y, FunctionSet.from_names("Koza")), 3_000, 600.0)
    assert res.program.key == exact.key and res.loss <= 1e-12
