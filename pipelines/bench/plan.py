"""What a bench runs: one :class:`Job` per (task, seed, method), in an interleaved order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the suites pull in torch; ``induce --help`` should not wait for it
    from simulator.suites import Task

HEADLINE_SEEDS = 10  # the protocol's seeds per task and calls per run (docs/benchmarks.md)
HEADLINE_CALLS = 200_000

Key = tuple[str, int, str]  # (task name, seed, method name): one run, one line of runs.jsonl


@dataclass(frozen=True)
class Job:
    """One run: a task, a seed, a method, and the budget it gets."""

    task: Task
    seed: int
    method: str
    calls: int
    seconds: float

    @property
    def key(self) -> Key:
        return (self.task.name, self.seed, self.method)


def plan(tasks: list[Task], seeds: int, methods: list[str], calls: int, seconds: float) -> list[Job]:
    """Every run, interleaved: for each seed, each task, each method.

    Runs that compare with each other sit next to each other, so a slow or busy stretch of a
    shared machine falls on every method alike and ratios between methods hold.
    """
    return [Job(t, s, m, calls, seconds) for s in range(seeds) for t in tasks for m in methods]
