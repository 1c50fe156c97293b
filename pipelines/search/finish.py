"""The finisher: what a search hands back once it stops.

It chooses the law from the front (the exact program with the shortest description, or the
selection criterion's row), tidies an exact choice (constants absorbed, forms expanded) or
simplifies an inexact one while its description length drops, snaps the constants of the
choice and of the front to simple forms where the loss allows (:mod:`pipelines.search.snap`), and
builds the :class:`Result` with the Pareto front as the user sees it.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from pipelines.search.constants import fit_constants_many
from pipelines.search.noise import NoiseEstimate
from pipelines.search.result import FrontRow, Result, TraceStep
from pipelines.search.selection import beats_mean, criterion_values, distinct, select
from pipelines.search.snap import EXACT_WINDOW, WINDOW, Snapped, snap_constants
from pipelines.search.tidy import description_length, shorter_forms, simpler_forms
from pipelines.search.types import Candidate, Node
from simulator.edits import edit_path
from simulator.execute import evaluate, evaluate_many
from simulator.program import Program
from simulator.scoring import nmse

if TYPE_CHECKING:
    from pipelines.search.planner import SolveState
    from pipelines.search.problem import Problem

# Exact fits are told apart by how exact: on data that spans many orders of magnitude,
# dropping a real additive constant (2.1 - 2.1*exp(-0.5*x)) can cost less than the tolerance
# of the variance. A program counts as exact as another when its loss is within EXACT_SLACK
# of the other's (or below EXACT_FLOOR times the tolerance).
EXACT_SLACK = 1e4
EXACT_FLOOR = 1e-6
# Calls the search leaves to the finisher, so a search that spends its budget still has its
# front's constants refitted (one call a row) and snapped: 1% of a budget of RESERVE_FROM
# calls or more, at most FINISH_RESERVE; a smaller budget (a test's, a trace's) keeps all
# its calls for the search.
FINISH_RESERVE = 300
RESERVE_FROM = 10_000
# On noisy data a snap must also pass the nested-model F test at this level (pipelines.search.snap):
# the floor's estimate alone may be far too high on a few points.
NESTED_LEVEL = 0.01


def finish_reserve(max_calls: int) -> int:
    """The calls of a ``max_calls`` budget held back for the finisher."""
    return min(FINISH_RESERVE, max_calls // 100) if max_calls >= RESERVE_FROM else 0


def as_exact(loss: float, tol: float) -> float:
    """The loss up to which a program is as exact as one of ``loss`` (both within ``tol``)."""
    return min(tol, max(EXACT_SLACK * loss, EXACT_FLOOR * tol))


def finish(
    state: SolveState, criterion: str, stopped: str, estimate: NoiseEstimate | None, snap: bool = False
) -> Result:
    """The chosen program, tidied or simplified (its constants snapped with ``snap``), and
    the :class:`Result` around it."""
    warnings = []
    if state.best is None and state.unchecked:  # nothing consistent with the units: say so
        state.front = state.unchecked
        state.best = min(state.unchecked.values(), key=lambda n: n.score)
        state.problem = replace(state.problem, units=None)
        warnings.append(
            "no program consistent with the given units was found; the result ignores the units "
            "(check them, or give the search more calls)"
        )
    if state.best is None:
        raise RuntimeError("no valid program found on this data: every candidate was non-finite")
    state.budget.release()
    _refit_front(state)
    front, tol, budget = state.front, state.tol, state.budget
    exact = [n for n in front.values() if n.loss <= tol]
    if exact:  # only those as exact as the most exact
        exact_bar = as_exact(min(n.loss for n in exact), tol)
        exact = [n for n in exact if n.loss <= exact_bar]
    if criterion == "auto" and exact:  # the exact program with the shortest description
        chosen = min(exact, key=lambda n: description_length(n.program))
    else:
        chosen = _choose(state, criterion)
    if state.problem.function_set.has_const and chosen.loss <= tol:
        chosen = _tidy(state, chosen)
    elif chosen.loss > tol and criterion in ("auto", "mdl"):
        chosen = _simplify(state, chosen)
    snaps: dict[Program, Snapped] = {}
    if snap:
        chosen = _snap(state, chosen, snaps)
    start = chosen.root()
    return Result(
        program=chosen.program,
        loss=chosen.loss,
        front=front_rows(state, criterion, chosen.program),
        start=start.program,
        trace=_trace(chosen),
        calls=budget.calls,
        fit_passes=budget.fit_passes,
        candidates_scored=budget.scored,
        seconds=budget.elapsed,
        stopped=stopped,
        history=state.history,
        found_at=chosen.calls,
        noise_floor=state.floor,
        noise=estimate.to_dict() if estimate is not None else None,
        selection=criterion,
        split=start.cand.reason if start.cand.stage == "separate" else "",
        origin=start.cand.reason if start.cand.stage in ("linear", "shape") else "",
        snaps=snaps,
        warnings=warnings,
        units=state.problem.units.to_dict() if state.problem.units is not None else None,
        constant_units=_constant_units(state.problem, chosen.program),
    )


def _dimensioned(problem: Problem, program: Program) -> frozenset[int]:
    """The constants of ``program`` that carry physical units (none without units): they
    keep their fitted values, since a value in given units is no simple number of the law."""
    return frozenset(i for i, u in enumerate(_constant_units(problem, program) or ()) if u != "1")


def _constant_units(problem: Problem, program: Program) -> list[str] | None:
    """The units of each constant of ``program``, when the data have units."""
    if problem.units is None:
        return None
    found = problem.units.check(program)
    return found.describe() if found is not None else None


def snap_bar(state: SolveState, loss: float) -> float:
    """The loss a program of ``loss`` may reach when its constants snap: as exact as it was
    on exact data (:func:`as_exact`; an inexact fit may not get worse); on noisy data, what
    the planner counts as meeting the floor, or for a fit above it, its own loss plus the
    same slack over the floor. A fit that beats the mean of y still beats it snapped. An
    exact fit keeps the exact rule whatever the floor: it shows the data are exact."""
    if state.floor > 0 and loss > state.tol:
        bar = max(loss, state.floor) + state.noise_slack - state.floor
        return bar if not beats_mean(loss) or beats_mean(bar) else loss
    return as_exact(loss, state.tol) if loss <= state.tol else loss


def snap_gain(n: int) -> float:
    """How much an inexact fit's loss may grow for each constant snapped: by description
    length, a constant no longer fitted saves log(n)/2 nats, which pays for a loss n**(1/n)
    times as large (n/2 log of the ratio)."""
    return math.exp(math.log(max(n, 2)) / max(n, 2))


def _snap(state: SolveState, chosen: Node, snaps: dict[Program, Snapped]) -> Node:
    """The chosen node with its constants snapped (:mod:`pipelines.search.snap`), and every row of
    the Pareto front the same way, in place, smallest first; ``snaps`` gets each snapped
    program's record. A row whose snapped loss a smaller row beats keeps its fitted constants
    (it stays on the front, as the fit that it is); a row that joins the front because a
    smaller row's loss rose is snapped in turn. The chosen row of an inexact fit may also
    give up loss by description length (:func:`snap_gain`): it is the law as reported; the
    other rows stay the best fits of their sizes, within the noise's slack."""
    steps = getattr(state.verifier, "fit_steps", 30)

    def one(node: Node, on_front: bool = True) -> Node:
        if not node.program.consts or not beats_mean(node.loss):
            return node  # the mean is the best constant: snapped, it only fits worse
        bar = snap_bar(state, node.loss)
        noisy = node.loss > state.tol  # noisy data, whether or not the floor's estimate saw it
        window = WINDOW if noisy else EXACT_WINDOW  # an exact fit: only forms it could be
        gain = snap_gain(len(state.problem.y)) if noisy and node is chosen else 1.0
        frozen = _dimensioned(state.problem, node.program)
        level = NESTED_LEVEL if noisy else None
        out = snap_constants(
            node.program, node.loss, state.problem, state.budget, bar, steps, window, gain, frozen, level
        )
        if out is None:
            return node
        program, loss, record = out
        if not state.consistent(program):  # an exponent snapped to units the law cannot have
            return node
        size = program.complexity
        if on_front and loss >= min((n.loss for c, n in state.front.items() if c < size), default=math.inf):
            return node  # a smaller program fits better than the snapped one: keep the fit
        snaps[program] = record
        reason = "constants snapped to " + ", ".join(t for t in record.texts() if t is not None)
        cand = Candidate(program, loss, (), "snap", reason)
        return Node(cand, node, state.score(cand), node.calls)  # found when its fit was

    snapped, done = None, set()
    while todo := [n for n in pareto(state.front) if id(n) not in done]:
        node = todo[0]  # the smallest row not yet snapped: those below it are final
        new = one(node)
        snapped = new if node is chosen else snapped
        done.update((id(node), id(new)))
        state.front[node.program.complexity] = new
    return snapped if snapped is not None else one(chosen, on_front=False)


def _refit_front(state: SolveState) -> None:
    """Fit the constants of the front's inexact rows on all the points, smallest first, as
    far as the budget allows. The search fits only the best few children of each expansion,
    so a row may carry constants its parent left (6.2785 where 6.2808 fits): compared with a
    fitted larger row, it would lose the choice by a fit it never had."""
    budget, problem = state.budget, state.problem
    rows = [n for n in pareto(state.front) if n.program.consts and n.loss > state.tol]
    rows = rows[: budget.remaining]
    if not rows:
        return
    steps = getattr(state.verifier, "fit_steps", 30)
    fitted, walks = fit_constants_many([n.program for n in rows], problem.X, problem.y, steps)
    budget.charge(len(rows), walks)
    Y, ok = evaluate_many(fitted, problem.X)
    for node, program, loss, valid in zip(rows, fitted, problem.nmse(Y), ok, strict=True):
        if valid and loss < node.loss and state.consistent(program):
            cand = Candidate(program, float(loss), (), "refit", "constants fitted on all the points")
            state.front[program.complexity] = Node(cand, node, state.score(cand), node.calls)


def _tidy(state: SolveState, node: Node) -> Node:
    """Rewrite the chosen exact program while its description length drops and it stays
    exact; each rewrite also takes its size's place on the Pareto front.
    Exact means as exact as the program was (:func:`as_exact`), not only within the bar.
    """
    budget = state.budget
    while budget.remaining > 0:
        bar = as_exact(node.loss, state.tol)
        forms = [
            Candidate(p, math.inf, (), "tidy", "a constant absorbed or the form expanded")
            for p in shorter_forms(node.program, state.problem.function_set)
            if state.consistent(p)
        ]
        better = [
            (c, stamp)
            for c, stamp in state.verify(forms)
            if c.loss <= bar and description_length(c.program) < description_length(node.program)
        ]
        if not better:
            break
        cand, stamp = min(better, key=lambda cs: description_length(cs[0].program))
        node = Node(cand, node, state.score(cand), stamp)
        state.front[cand.program.complexity] = node  # shorter to write than any exact one there
    return node


def _simplify(state: SolveState, node: Node) -> Node:
    """On data no program fits exactly: replace the chosen program by a one-step simpler
    form (a subtree hoisted or collapsed, a constant absorbed) while that lowers its
    description length; each step takes its size's place on the front if it fits better.
    """
    problem, budget = state.problem, state.budget
    n, tokens = len(problem.y), len(problem.function_set.tokens)

    def mdl(cand: Candidate) -> float:
        p = cand.program
        return float(
            criterion_values("mdl", [p.complexity], [cand.loss], n, tokens, [len(p.consts)], state.tol)[0]
        )

    current = mdl(node.cand)
    while budget.remaining > 0:
        forms = [
            Candidate(p, math.inf, (), "simplify", "a subtree hoisted or collapsed")
            for p in simpler_forms(node.program, problem.function_set)
            if state.consistent(p)
        ]
        verified = [
            (mdl(c), c, stamp)
            for c, stamp in state.verify(forms)
            if math.isfinite(c.loss) and (beats_mean(c.loss) or not beats_mean(node.loss))
        ]
        if not verified:
            break
        value, cand, stamp = min(verified, key=lambda v: v[0])
        if value >= current:
            break
        node, current = Node(cand, node, state.score(cand), stamp), value
        c = cand.program.complexity
        if c not in state.front or cand.loss < state.front[c].loss:
            state.front[c] = node
    return node


def _choose(state: SolveState, criterion: str) -> Node:
    """The Pareto row that the selection criterion prefers."""
    rows = front_rows(state, criterion)
    nodes = {n.program.key: n for n in pareto(state.front)}
    values = np.array([r.criterion for r in rows])
    return nodes[rows[select(criterion, values, [r.loss for r in rows])].program.key]


def front_rows(state: SolveState, criterion: str, keep: Program | None = None) -> list[FrontRow]:
    """The Pareto front as the result reports it: each function once, at its smallest
    complexity (``keep``, the chosen program, stands for its own), with its criterion value
    and its loss on the validation split, if there is one."""
    rows, problem = pareto(state.front), state.problem
    with np.errstate(all="ignore"):
        predictions = [np.broadcast_to(evaluate(n.program, problem.X), problem.y.shape) for n in rows]
    keys = [n.program.key for n in rows]
    kept = keys.index(keep.key) if keep is not None and keep.key in keys else None
    rows = [rows[i] for i in distinct(predictions, float(np.std(problem.y)), kept)]
    validation = [_validation_loss(problem, n.program) for n in rows] if problem.validation else None
    values = criterion_values(
        criterion,
        [n.program.complexity for n in rows],
        [n.loss for n in rows],
        len(problem.y),
        len(problem.function_set.tokens),
        [len(n.program.consts) for n in rows],
        state.tol,
        validation,
    )
    return [
        FrontRow(n.program.complexity, n.loss, n.program, float(v), None if validation is None else val)
        for n, v, val in zip(rows, values, validation or [None] * len(rows), strict=True)
    ]


def pareto(front: dict[int, Node]) -> list[Node]:
    """Nodes of the front where a larger program must have a strictly lower loss."""
    rows, best = [], math.inf
    for c in sorted(front):
        n = front[c]
        if n.loss < best:
            rows.append(n)
            best = n.loss
    return rows


def _trace(node: Node) -> list[TraceStep]:
    """The edits from the start to ``node``, each with the stage that asked and the losses."""
    path = []
    while node.parent is not None:
        path.append(node)
        node = node.parent
    steps: list[TraceStep] = []
    for n in reversed(path):
        edits = n.cand.edits
        if edits is None:  # a whole-subtree replacement: its edits are derived now
            edits = tuple(edit_path(n.parent.program, n.program))
        for k, e in enumerate(edits):
            after = n.loss if k == len(edits) - 1 else math.nan
            steps.append(TraceStep(e, n.cand.stage, n.cand.reason, n.parent.loss, after))
    return steps


def _validation_loss(problem: Problem, program: Program) -> float:
    """NMSE on the held-out split (inf where the program is not finite there)."""
    X, y = problem.validation
    with np.errstate(all="ignore"):
        loss = float(nmse(np.broadcast_to(evaluate(program, X), y.shape), y)[0])
    return loss if math.isfinite(loss) else math.inf
