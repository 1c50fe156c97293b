"""What one run reports: the fields of a runs.jsonl line, and how a method's answer is judged.

Every method, pipeline preset or peer, hands back an :class:`Outcome`; :func:`score` judges
it the same way for all (exact recovery, test R², calls to recovery) and fills in the run's
identity and budget. A run that produced nothing is :func:`failure`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import sympy as sp

    from pipelines.bench.plan import Job
    from simulator.suites import Task

# The fields of a runs.jsonl line, in order. Resuming reads task, seed, method and error;
# the summary reads recovered, calls_to_recovery and seconds. (candidates_scored and
# noise_kind are newer than the result folders in benchmarks/; a line without them reads as
# before, its noise additive.)
RUN_FIELDS = (
    "task",
    "seed",
    "method",
    "recovered",
    "found",
    "truth",
    "nmse_train",
    "r2_test",
    "simulator_calls",
    "seconds",
    "complexity",
    "fit_forward_passes",
    "candidates_scored",
    "error",
    "history",
    "calls_to_recovery",
    "noise",
    "noise_kind",
    "on_front",
    "budget_calls",
    "budget_seconds",
    "wall_seconds",
    "peak_mib",
)


@dataclass
class Outcome:
    """What a method found, in its own terms, before it is judged."""

    found: sp.Expr | str  # the expression (sympy, or text the recovery check parses)
    nmse_train: float | None
    calls: int  # simulator calls spent
    seconds: float  # the method's own search time
    complexity: int | None
    fit_passes: int = 0  # forward passes spent fitting constants (reported apart from calls)
    scored: int = 0  # candidates judged without a call (library lookups), reported apart
    history: list = field(default_factory=list)  # [(calls, best NMSE so far)]
    found_at: int | None = None  # calls spent when ``found`` was first reached, when known
    test_pred: np.ndarray | None = None  # predictions on the test inputs
    front: list | None = None  # the Pareto front's expressions, when the method has one


def score(task: Task, seed: int, method: str, calls: int, seconds: float, outcome: Outcome) -> dict:
    """The run's record: the outcome judged against the task's truth and test split."""
    truth = task.truth_sympy()
    _, y_test = task.sample("test", seed)
    recovered = recovers(task, outcome.found, truth)
    on_front = (
        None if outcome.front is None else recovered or any(recovers(task, e, truth) for e in outcome.front)
    )
    rec = {
        "task": task.name,
        "seed": seed,
        "method": method,
        "recovered": recovered,
        "found": str(outcome.found),
        "truth": str(truth),
        "nmse_train": outcome.nmse_train,
        "r2_test": r2_score(y_test, outcome.test_pred),
        "simulator_calls": outcome.calls,
        "seconds": outcome.seconds,
        "complexity": outcome.complexity,
        "fit_forward_passes": outcome.fit_passes,
        "candidates_scored": outcome.scored,
        "error": None,
        "history": [list(h) for h in outcome.history],
        "calls_to_recovery": calls_to_recovery(outcome, recovered),
        "noise": task.noise,
        "noise_kind": task.noise_kind,
        "on_front": on_front,
        "budget_calls": calls,
        "budget_seconds": seconds,
    }
    return {k: rec.get(k) for k in RUN_FIELDS}


def recovers(task: Task, found: sp.Expr | str, truth: sp.Expr | None = None) -> bool:
    """Whether ``found`` is the task's law, by the bench's one check: symbolic equivalence on
    the task's range, with constants within 5% on noisy data, which cannot pin them to 3
    decimals (``truth``: the task's, when already at hand)."""
    from simulator.recovery import NOISY_RTOL, is_recovered

    truth = task.truth_sympy() if truth is None else truth
    rtol = NOISY_RTOL if task.noise > 0 else 0.0
    return bool(is_recovered(found, truth, domain=task.domain(), rtol=rtol))


def failure(job: Job, error: str) -> dict:
    """The record of a run that produced nothing: not recovered, with its one-line error."""
    try:
        truth = str(job.task.truth_sympy())
    except Exception:  # noqa: BLE001 - a truth that does not parse is itself the error
        truth = job.task.expression
    rec = dict.fromkeys(RUN_FIELDS)
    rec.update(
        task=job.task.name,
        seed=job.seed,
        method=job.method,
        recovered=False,
        truth=truth,
        simulator_calls=0,
        fit_forward_passes=0,
        candidates_scored=0,
        error=error,
        noise=job.task.noise,
        noise_kind=job.task.noise_kind,
        history=[],
        budget_calls=job.calls,
        budget_seconds=job.seconds,
    )
    return rec


def calls_to_recovery(outcome: Outcome, recovered: bool) -> int | None:
    """Calls spent when the found program was first reached (the search may go on a little)."""
    if not recovered:
        return None
    if outcome.found_at:
        return int(outcome.found_at)
    loss = outcome.nmse_train
    for calls, best in outcome.history:
        if loss is not None and best is not None and best <= loss * (1 + 1e-6) + 1e-300:
            return int(calls)
    return int(outcome.calls or 0)


def r2_score(y: np.ndarray, pred: np.ndarray | None) -> float | None:
    """Coefficient of determination on the test split; None when the prediction is not finite."""
    if pred is None:
        return None
    pred = np.array([np.nan if v is None else v for v in np.ravel(pred)], dtype=np.float64)
    if pred.size not in (1, y.size) or not np.all(np.isfinite(pred)):
        return None
    pred = np.broadcast_to(pred, y.shape)
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    ss_res = float(np.sum((y - pred) ** 2))
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else None
    value = 1.0 - ss_res / ss_tot
    return value if math.isfinite(value) else None


def one_line(err: BaseException) -> str:
    """An error as one line: its type and the first line of its message."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def clean(obj: Any) -> Any:
    """JSON-safe: numpy scalars to Python, non-finite floats to null, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [clean(v) for v in obj]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)
