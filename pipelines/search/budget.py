"""The budget of one solve: simulator calls and seconds, spent only by the planner.

Stages report what they spent (:class:`pipelines.search.verify.Verified`, a sub-goal offer's
``calls``) and the planner charges it here, so every count has one owner per solve.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Budget:
    """Limits and what has been spent.

    ``calls`` counts simulator calls: one per candidate evaluated on the training inputs,
    one per candidate whose constants are fitted, one per library program enumerated.
    ``fit_passes`` counts the forward passes spent inside constant fits (reported apart).
    ``scored`` counts candidates whose error became known without running them (a library
    lookup compares a target with stored outputs): reported beside the calls, honestly.
    """

    max_calls: int
    max_seconds: float
    calls: int = 0
    fit_passes: int = 0
    scored: int = 0
    started: float = field(default_factory=time.perf_counter)
    reserve: int = 0  # calls held back from the search for the finisher (release() frees them)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def remaining(self) -> int:
        """Simulator calls still allowed (less the reserve, until it is released)."""
        return max(self.max_calls - self.reserve - self.calls, 0)

    def release(self) -> None:
        """Free the reserve: the search is over, and the finisher may spend it."""
        self.reserve = 0

    def charge(self, calls: int, fit_passes: int = 0, scored: int = 0) -> None:
        self.calls += int(calls)
        self.fit_passes += int(fit_passes)
        self.scored += int(scored)

    def exhausted(self) -> str | None:
        """Why the budget is spent ("calls" or "seconds"), or None while some is left."""
        if self.calls >= self.max_calls - self.reserve:
            return "calls"
        if self.elapsed >= self.max_seconds:
            return "seconds"
        return None
