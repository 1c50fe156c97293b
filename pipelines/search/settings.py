"""The planner's settings: one frozen, validated object, built the same way everywhere.

A pipeline YAML's ``planner:`` mapping, the CLI's flags and ``ProgramRegressor``'s keyword
arguments all become a :class:`PlannerSettings` through :meth:`PlannerSettings.from_mapping`
or :meth:`PlannerSettings.replace`, so every route runs the same checks, and a setting is
never changed after it was checked.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from pipelines.search.noise import NOISE_CAP, check_noise_floor
from pipelines.search.selection import check_criterion

OUTLIER_CHOICES = ("keep", "drop")


class SettingsError(ValueError):
    """A planner setting that is unknown or out of range (a one-line message)."""


def _positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        extra = " or null" if allow_none else ""
        raise SettingsError(f"{name} must be a positive integer{extra}, got {value!r}")


def _number(name: str, value: Any, low: float = 0.0, high: float = math.inf, open_low: bool = False) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and value <= high
    if not ok:
        bounds = f"{'>' if open_low else '>='} {low:g}" + ("" if high == math.inf else f" and <= {high:g}")
        raise SettingsError(f"{name} must be a number {bounds}, got {value!r}")


@dataclass(frozen=True)
class PlannerSettings:
    """How the planner searches (see :class:`pipelines.search.planner.Planner` for what each does).

    ``width``: edits of one parent kept (None: all); ``max_size``: the largest program
    searched; ``parsimony``: weight of size in the search score; ``tol`` and ``const_tol``:
    the exact-fit bars without and with fitted constants; ``similarity_weight``: weight of
    the learned distance to the goal in the score; ``polish_calls``/``polish_seconds``: the
    search after a hit for a smaller program; ``noise_floor``: ``"auto"`` or an NMSE;
    ``noise_cap``: the largest estimated floor taken as noise (above it, the data are taken
    as exact: the estimate explained too little to rest a stop on);
    ``select``: the criterion that chooses from the front; ``separate``, ``shapes``,
    ``linear``: the start providers; ``verify_all``: run every legal edit of a node;
    ``subgoal_share``: the sub-goal stage's share of the work; ``snap``: after the choice,
    snap fitted constants to simple forms (3/2, pi) where the loss allows
    (:mod:`pipelines.search.snap`); ``outliers``: ``"keep"`` the points that lie far from their
    neighbours (a warning names them) or ``"drop"`` them before the search
    (:mod:`pipelines.interface.data_checks`); ``use_units``: when the data come with physical units, choose
    only dimensionally consistent programs (:mod:`simulator.units`); false ignores them.
    """

    width: int | None = None
    max_size: int = 30
    parsimony: float = 0.02
    tol: float = 1e-12
    similarity_weight: float = 0.5
    const_tol: float = 1e-20
    polish_calls: int = 1_000
    polish_seconds: float = 5.0
    noise_floor: float | str = "auto"
    noise_cap: float = NOISE_CAP
    select: str = "auto"
    separate: bool = True
    shapes: bool = True
    linear: bool = True
    verify_all: bool = True
    subgoal_share: float = 0.5
    snap: bool = True
    outliers: str = "keep"
    use_units: bool = True

    def __post_init__(self) -> None:
        _positive_int("width", self.width, allow_none=True)
        _positive_int("max_size", self.max_size)
        _positive_int("polish_calls", self.polish_calls)
        _number("parsimony", self.parsimony)
        _number("similarity_weight", self.similarity_weight)
        _number("tol", self.tol, open_low=True, high=1.0)
        _number("const_tol", self.const_tol, open_low=True, high=1.0)
        _number("polish_seconds", self.polish_seconds)
        _number("subgoal_share", self.subgoal_share, open_low=True, high=1.0)
        _number("noise_cap", self.noise_cap, open_low=True, high=1.0)
        for name in ("separate", "shapes", "linear", "verify_all", "snap", "use_units"):
            if not isinstance(getattr(self, name), bool):
                raise SettingsError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.outliers not in OUTLIER_CHOICES:
            raise SettingsError(f"outliers must be keep or drop, got {self.outliers!r}")
        try:
            object.__setattr__(self, "noise_floor", check_noise_floor(self.noise_floor))
            object.__setattr__(self, "select", check_criterion(self.select))
        except ValueError as err:
            raise SettingsError(str(err)) from None
        floats = (
            "parsimony",
            "similarity_weight",
            "tol",
            "const_tol",
            "polish_seconds",
            "subgoal_share",
            "noise_cap",
        )
        for name in floats:
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every setting's name, in the order of the fields."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[str, Any] | None, base: PlannerSettings | None = None
    ) -> PlannerSettings:
        """Settings from a mapping (a YAML ``planner:`` block, keyword arguments) on top of
        ``base`` (the defaults when None); an unknown name is a one-line error."""
        return (base or cls()).replace(**dict(mapping or {}))

    def replace(self, **changes: Any) -> PlannerSettings:
        """A copy with ``changes``, checked like any new settings."""
        unknown = sorted(set(changes) - set(self.names()))
        if unknown:
            close = difflib.get_close_matches(unknown[0], self.names(), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise SettingsError(
                f"unknown planner setting(s) {unknown}{hint}; settings: {', '.join(self.names())}"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain mapping (a pipeline YAML's ``planner:`` block)."""
        return dataclasses.asdict(self)
