"""Benchmark tasks: the built-in Nguyen suites and the YAML task-file format of docs/task-files.md.

A task is a ground-truth expression, a function set, and how to sample its inputs. Built-in
suites and task files produce the same :class:`Task`, so ``induce bench`` treats them alike.
Task files are validated once, here, and every problem is reported as a one-line
:class:`TaskError` naming the file, the task and the field.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp
import yaml

from simulator.execute import evaluate
from simulator.language import FUNCTION_SETS, FunctionSet, LanguageError, variables
from simulator.program import ParseError, Program, parse
from simulator.truth import parse_truth, truth_n_vars, truth_values
from simulator.units import Units, UnitsError

DISTRIBUTIONS = ("uniform", "grid")
TEST_POINTS = 1000
MAX_POINTS = 10_000_000
TASK_KEYS = (
    "name",
    "expression",
    "variables",
    "train",
    "test",
    "function_set",
    "noise",
    "noise_kind",
    "units",
)
UNITS_TARGET = "target"  # the target's key in a task's units
MAX_NOISE = 10.0  # noise beyond 10x the signal's RMS is not a regression task
# additive: y + noise * RMS(y) * eps; multiplicative: y * (1 + noise * eps), eps standard normal
NOISE_KINDS = ("additive", "multiplicative")
SAMPLING_KEYS = ("distribution", "low", "high", "points", "step")


class TaskError(ValueError):
    """A task that does not exist or a task file that cannot be used."""


def _floats(value: Any, what: str) -> tuple[float, ...]:
    """A scalar or a list of numbers as a tuple of finite floats (YAML may give '1e-3' as text)."""
    items = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    if not items:
        raise TaskError(f"{what} must be a number or a non-empty list of numbers, got []")
    out = []
    for item in items:
        if isinstance(item, bool):
            raise TaskError(f"{what} must be a number or a list of numbers, got {value!r}")
        try:
            number = float(item)
        except (TypeError, ValueError):
            raise TaskError(f"{what} must be a number or a list of numbers, got {value!r}") from None
        if not math.isfinite(number):
            raise TaskError(f"{what} must be finite, got {value!r}")
        out.append(number)
    return tuple(out)


@dataclass(frozen=True)
class Sampling:
    """How one split's inputs are drawn: ``uniform`` (``points`` per split) or a ``grid`` (``step``).

    ``low``, ``high`` and ``step`` hold one value per variable, or one value for all of them.
    """

    distribution: str = "uniform"
    low: tuple[float, ...] | float = (-1.0,)
    high: tuple[float, ...] | float = (1.0,)
    points: int = 20
    step: tuple[float, ...] | float | None = None

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise TaskError(
                f"distribution must be one of {', '.join(DISTRIBUTIONS)}, got {self.distribution!r}"
            )
        object.__setattr__(self, "low", _floats(self.low, "low"))
        object.__setattr__(self, "high", _floats(self.high, "high"))
        if self.distribution == "uniform":
            if (
                isinstance(self.points, bool)
                or not isinstance(self.points, (int, np.integer))
                or self.points < 1
            ):
                raise TaskError(f"points must be a positive integer, got {self.points!r}")
            if self.points > MAX_POINTS:
                raise TaskError(f"points must be at most {MAX_POINTS}, got {self.points}")
            object.__setattr__(self, "points", int(self.points))
        else:
            if self.step is None:
                raise TaskError("step is required for a grid")
            step = _floats(self.step, "step")
            if any(s <= 0 for s in step):
                raise TaskError(f"step must be positive, got {self.step!r}")
            object.__setattr__(self, "step", step)
        lengths = {len(v) for v in (self.low, self.high, self.step or ()) if len(v) > 1}
        if len(lengths) > 1:
            raise TaskError(f"low, high and step give different numbers of variables: {sorted(lengths)}")
        n = max(lengths, default=1)
        low, high = self._broadcast(self.low, n), self._broadcast(self.high, n)
        for i, (lo, hi) in enumerate(zip(low, high, strict=True)):
            if lo >= hi:
                which = f" for x{i + 1}" if n > 1 else ""
                raise TaskError(f"low must be below high{which}, got low={lo:g}, high={hi:g}")

    @staticmethod
    def _broadcast(values: tuple[float, ...], n_vars: int) -> np.ndarray:
        return np.full(n_vars, values[0]) if len(values) == 1 else np.asarray(values, dtype=np.float64)

    def check_vars(self, n_vars: int) -> None:
        """Raise unless every per-variable list has one value or exactly ``n_vars``, and a grid fits."""
        for name in ("low", "high", "step"):
            values = getattr(self, name)
            if values is not None and len(values) not in (1, n_vars):
                raise TaskError(f"{name} has {len(values)} values but the task has {n_vars} variables")
        if self.size(n_vars) > MAX_POINTS:
            raise TaskError(f"step gives a grid of {self.size(n_vars)} points, more than {MAX_POINTS}")

    def bounds(self, n_vars: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-variable (low, high) arrays of length ``n_vars``."""
        self.check_vars(n_vars)
        return self._broadcast(self.low, n_vars), self._broadcast(self.high, n_vars)

    def _axes(self, n_vars: int) -> list[np.ndarray]:
        low, high = self._broadcast(self.low, n_vars), self._broadcast(self.high, n_vars)
        step = self._broadcast(self.step, n_vars)
        counts = np.floor((high - low) / step + 1e-9).astype(np.int64) + 1  # inclusive of high
        return [lo + st * np.arange(k) for lo, st, k in zip(low, step, counts, strict=True)]

    def size(self, n_vars: int) -> int:
        """Number of points one split holds."""
        if self.distribution == "uniform":
            return self.points
        if any(len(v) not in (1, n_vars) for v in (self.low, self.high, self.step)):
            raise TaskError(f"low, high and step must have one value or {n_vars}, one per variable")
        low, high = self._broadcast(self.low, n_vars), self._broadcast(self.high, n_vars)
        step = self._broadcast(self.step, n_vars)
        return math.prod(
            math.floor((h - lo) / s + 1e-9) + 1 for lo, h, s in zip(low, high, step, strict=True)
        )

    def sample(self, n_vars: int, rng: np.random.Generator) -> np.ndarray:
        """Inputs of shape (n, n_vars); a grid is the cartesian product and ignores ``rng``."""
        self.check_vars(n_vars)
        if self.distribution == "uniform":
            low, high = self.bounds(n_vars)
            return rng.uniform(low, high, size=(self.points, n_vars))
        mesh = np.meshgrid(*self._axes(n_vars), indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)

    def to_dict(self) -> dict[str, Any]:
        """The task-file form: scalars when one value serves all variables."""
        one = lambda v: v[0] if len(v) == 1 else list(v)  # noqa: E731
        out: dict[str, Any] = {
            "distribution": self.distribution,
            "low": one(self.low),
            "high": one(self.high),
        }
        if self.distribution == "uniform":
            out["points"] = self.points
        else:
            out["step"] = one(self.step)
        return out


@dataclass(frozen=True)
class Task:
    """One benchmark problem: ground truth, function set, and train/test sampling."""

    name: str
    expression: str
    n_vars: int
    train: Sampling
    test: Sampling | None = None
    function_set: FunctionSet = field(default_factory=lambda: FunctionSet.from_names("Koza"))
    # Gaussian noise on the training targets, with standard deviation noise * RMS(y): the
    # SRBench convention. The test split and the recovery check use the noiseless truth.
    noise: float = 0.0
    # the task file's names for x1, x2, ... (``variables: [m, v]``), for printing only
    variable_names: tuple[str, ...] | None = None
    # "additive" (above), or "multiplicative": y * (1 + noise * eps), each point's noise in
    # proportion to |y| (measurement error of a fixed relative size)
    noise_kind: str = "additive"
    # physical units, (name, units string) for each variable and for "target" (``units:`` in
    # a task file); the search may use them (simulator/units.py)
    units: tuple[tuple[str, str], ...] | None = None

    def __post_init__(self) -> None:
        if self.n_vars < 1:
            raise TaskError(f"task {self.name!r}: needs at least one variable, got {self.n_vars}")
        noise = self.noise
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise <= MAX_NOISE:
            raise TaskError(
                f"task {self.name!r}: noise must be a number from 0 to {MAX_NOISE:g} (x RMS of y), "
                f"got {noise!r}"
            )
        object.__setattr__(self, "noise", float(self.noise))
        if self.noise_kind not in NOISE_KINDS:
            raise TaskError(
                f"task {self.name!r}: noise_kind must be {' or '.join(NOISE_KINDS)}, got {self.noise_kind!r}"
            )
        if self.function_set.n_vars != self.n_vars:
            object.__setattr__(self, "function_set", self.function_set.with_vars(self.n_vars))
        if self.units is not None:
            try:
                self.dimensions()
            except UnitsError as error:
                raise TaskError(f"task {self.name!r}: {error}") from None

    def column_names(self) -> list[str]:
        """The variables' names: the task file's, else x1, x2, ..."""
        return list(self.variable_names or variables(self.n_vars))

    def dimensions(self) -> Units | None:
        """The task's units as the search takes them (None when the task has none)."""
        if self.units is None:
            return None
        return Units.parse(dict(self.units), self.column_names(), UNITS_TARGET)

    def program(self) -> Program:
        """The truth as a program of the language (a ParseError when it uses other functions)."""
        return parse(self.expression)

    def truth_sympy(self) -> sp.Expr:
        """The truth as sympy; it may use functions outside the search's language (``sinh``)."""
        try:
            return self.program().to_sympy()
        except (ParseError, LanguageError):
            return parse_truth(self.expression)

    def sampling(self, split: str = "train") -> Sampling:
        """The split's sampling; a missing test split is the train range with 1000 uniform points."""
        if split == "train":
            return self.train
        if split != "test":
            raise TaskError(f"split must be 'train' or 'test', got {split!r}")
        if self.test is not None:
            return self.test
        return replace(self.train, points=TEST_POINTS) if self.train.distribution == "uniform" else self.train

    def sample(self, split: str = "train", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Inputs X (n, n_vars) and targets y (n,); train and test draw from different streams.

        With ``noise``, the train targets carry Gaussian noise from a third stream: of standard
        deviation ``noise * RMS(y)`` (additive), or ``y * (1 + noise * eps)`` with ``eps``
        standard normal (multiplicative). The test targets are always the truth.
        """
        rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        X = self.sampling(split).sample(self.n_vars, rng)
        y = self.truth(X)
        if split == "train" and self.noise > 0:
            noise_rng = np.random.default_rng([seed, 2])
            if self.noise_kind == "multiplicative":
                y = y * (1.0 + self.noise * noise_rng.standard_normal(len(y)))
            else:
                sd = self.noise * float(np.sqrt(np.mean(y**2)))
                y = y + noise_rng.normal(0.0, sd, size=len(y))
        return X, y

    def truth(self, X: np.ndarray) -> np.ndarray:
        """The noiseless truth on inputs X."""
        try:  # the language's own simulator where the truth is a program: the same numbers as ever
            return evaluate(self.program(), X)
        except (ParseError, LanguageError):
            return truth_values(parse_truth(self.expression), X)

    def domain(self) -> list[tuple[float, float]]:
        """Per-variable (low, high) of the train range, as :func:`simulator.recovery.is_recovered` takes."""
        low, high = self.train.bounds(self.n_vars)
        return [(float(lo), float(hi)) for lo, hi in zip(low, high, strict=True)]

    def to_dict(self) -> dict[str, Any]:
        """The task-file form; :func:`task_from_dict` reads it back."""
        fs = self.function_set
        out: dict[str, Any] = {
            "name": self.name,
            "expression": self.expression,
            "variables": list(self.variable_names) if self.variable_names else self.n_vars,
            "train": self.train.to_dict(),
        }
        if self.test is not None:
            out["test"] = self.test.to_dict()
        out["function_set"] = fs.name if fs.name.lower() in FUNCTION_SETS else fs.to_names()
        if self.noise:
            out["noise"] = self.noise
        if self.noise_kind != "additive":
            out["noise_kind"] = self.noise_kind
        if self.units is not None:
            out["units"] = dict(self.units)
        return out

    def with_noise(self, noise: float, kind: str | None = None) -> Task:
        """The same task at another noise level and kind (None: the task's own), named
        ``<name> noise=<level>`` (additive), ``<name> noise=<level>x`` (multiplicative), or
        ``<name>`` when noiseless."""
        kind = self.noise_kind if kind is None else kind
        base = self.name.split(" noise=")[0]
        suffix = "x" if kind == "multiplicative" else ""
        name = base if noise == 0 else f"{base} noise={noise:g}{suffix}"
        return replace(self, name=name, noise=noise, noise_kind=kind)


# --- built-in suites ------------------------------------------------------------------------------

_U11 = Sampling("uniform", -1.0, 1.0, 20)
_U02 = Sampling("uniform", 0.0, 2.0, 20)
_U04 = Sampling("uniform", 0.0, 4.0, 20)
_U01 = Sampling("uniform", 0.0, 1.0, 20)
_U010 = Sampling("uniform", 0.0, 10.0, 20)

# name, expression (x1, x2), variables, train range, function set, as in DSO's benchmarks.csv.
_BUILTIN: list[tuple[str, str, int, Sampling, str]] = [
    ("Nguyen-1", "x1**3 + x1**2 + x1", 1, _U11, "Koza"),
    ("Nguyen-2", "x1**4 + x1**3 + x1**2 + x1", 1, _U11, "Koza"),
    ("Nguyen-3", "x1**5 + x1**4 + x1**3 + x1**2 + x1", 1, _U11, "Koza"),
    ("Nguyen-4", "x1**6 + x1**5 + x1**4 + x1**3 + x1**2 + x1", 1, _U11, "Koza"),
    ("Nguyen-5", "sin(x1**2)*cos(x1) - 1", 1, _U11, "Koza"),
    ("Nguyen-6", "sin(x1) + sin(x1 + x1**2)", 1, _U11, "Koza"),
    ("Nguyen-7", "log(x1 + 1) + log(x1**2 + 1)", 1, _U02, "Koza"),
    ("Nguyen-8", "sqrt(x1)", 1, _U04, "Koza"),
    ("Nguyen-9", "sin(x1) + sin(x2**2)", 2, _U01, "Koza"),
    ("Nguyen-10", "2*sin(x1)*cos(x2)", 2, _U01, "Koza"),
    ("Nguyen-11", "x1**x2", 2, _U01, "Koza"),
    ("Nguyen-12", "x1**4 - x1**3 + x2**2/2 - x2", 2, _U01, "Koza"),
    ("Nguyen-12a", "x1**4 - x1**3 + x2**2/2 - x2", 2, _U010, "Koza"),
    ("Nguyen-1c", "3.39*x1**3 + 2.12*x1**2 + 1.78*x1", 1, _U11, "CKoza"),
    ("Nguyen-5c", "sin(x1**2)*cos(x1) - 0.75", 1, _U11, "CKoza"),
    ("Nguyen-7c", "log(x1 + 1.4) + log(x1**2 + 1.3)", 1, _U02, "CKoza"),
    ("Nguyen-8c", "sqrt(1.23*x1)", 1, _U04, "CKoza"),
    ("Nguyen-10c", "sin(1.5*x1)*cos(0.5*x2)", 2, _U01, "CKoza"),
]

TASKS: dict[str, Task] = {
    name: Task(
        name,
        expression,
        n_vars,
        train,
        replace(train, points=TEST_POINTS),
        FunctionSet.from_names(fs, n_vars),
    )
    for name, expression, n_vars, train, fs in _BUILTIN
}

SUITES: dict[str, list[str]] = {
    "nguyen": [f"Nguyen-{i}" for i in range(1, 13)] + ["Nguyen-12a"],
    "nguyen-c": ["Nguyen-1c", "Nguyen-5c", "Nguyen-7c", "Nguyen-8c", "Nguyen-10c"],
}
SUITES["all"] = SUITES["nguyen"] + SUITES["nguyen-c"]


def _key(name: str) -> str:
    """Case and punctuation do not matter: 'nguyen_1', 'NGUYEN-1' and 'Nguyen 1' are one task."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


_BY_KEY = {_key(name): task for name, task in TASKS.items()}


def _unknown(kind: str, name: str, known: list[str], where: str = "") -> TaskError:
    by_lower = {k.lower(): k for k in known}
    close = [by_lower[c] for c in difflib.get_close_matches(name.lower(), list(by_lower), n=5, cutoff=0.5)]
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"
    return TaskError(f"unknown {kind} {name!r}{f' in {where}' if where else ''}{hint}")


def find_task(tasks: list[Task], name: str, where: str = "") -> Task:
    """The task called ``name`` among ``tasks`` (a suite's or a task file's), matched as
    :func:`get_task` matches a built-in one: its exact name first, else ignoring case and
    punctuation; an unknown name gets a did-you-mean naming ``where``."""
    for task in tasks:
        if task.name == name:
            return task
    matches = [t for t in tasks if _key(t.name) == _key(name)]
    if len(matches) > 1:
        raise TaskError(
            f"task {name!r} is ambiguous{f' in {where}' if where else ''}: "
            f"{', '.join(t.name for t in matches)}; give the exact name"
        )
    if not matches:
        raise _unknown("task", name, [t.name for t in tasks], where)
    return matches[0]


def get_task(name: str) -> Task:
    """A built-in task by name, case-insensitively."""
    task = _BY_KEY.get(_key(name))
    if task is None:
        raise _unknown("task", name, list(TASKS))
    return task


def get_suite(name: str) -> list[Task]:
    """The tasks of a built-in suite ('nguyen', 'nguyen-c', 'all'), case-insensitively."""
    names = {_key(k): v for k, v in SUITES.items()}.get(_key(name))
    if names is None:
        raise _unknown("suite", name, list(SUITES))
    return [TASKS[n] for n in names]


# --- task files -----------------------------------------------------------------------------------


def load_tasks(path: str | Path) -> list[Task]:
    """Read a YAML task file (docs/task-files.md): a ``tasks:`` list, or a bare list of tasks."""
    label = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaskError(f"{label}: no such task file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise TaskError(f"{label}: cannot read the task file: {error}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise TaskError(f"{label}: not valid YAML{where}: {problem}") from None
    if isinstance(data, dict):
        extra = [k for k in data if k != "tasks"]
        if extra:
            raise TaskError(f"{label}: unknown top-level key {extra[0]!r}; a task file holds 'tasks:'")
        if "tasks" not in data:
            raise TaskError(f"{label}: missing 'tasks:' list")
        data = data["tasks"]
    if not isinstance(data, list) or not data:
        got = "nothing" if data is None else type(data).__name__
        raise TaskError(f"{label}: expected a non-empty list of tasks, got {got}")
    tasks = [task_from_dict(entry, index=i, source=label) for i, entry in enumerate(data)]
    seen: set[str] = set()
    for task in tasks:
        if task.name in seen:
            raise TaskError(f"{label}: task {task.name!r}: name is used twice")
        seen.add(task.name)
    return tasks


def _variable_names(names: list, where: str) -> tuple[str, ...]:
    """``variables: [m, v]``: distinct identifiers, or a one-line error."""
    if not names:
        raise TaskError(f"{where}: variables is an empty list; give names such as [m, v] or a count")
    for name in names:
        if not isinstance(name, str) or not name.isidentifier():
            raise TaskError(f"{where}: variables: {name!r} is not a name (letters, digits, _)")
    if len(set(names)) < len(names):
        raise TaskError(f"{where}: variables: a name is given twice in {names}")
    return tuple(names)


def task_from_dict(entry: Any, *, index: int = 0, source: str = "<tasks>") -> Task:
    """Build and validate one task from its task-file mapping; errors name source, task and field."""
    where = f"{source}: task #{index + 1}"
    if not isinstance(entry, dict):
        raise TaskError(f"{where}: expected a mapping with name, expression, train, ..., got {entry!r}")
    name = entry.get("name", f"task{index + 1}")
    if not isinstance(name, (str, int)) or isinstance(name, bool) or not str(name).strip():
        raise TaskError(f"{where}: name must be a non-empty string, got {name!r}")
    name = str(name).strip()
    if "name" in entry:
        where = f"{source}: task {name!r}"
    for key in entry:
        if key not in TASK_KEYS:
            raise TaskError(f"{where}: unknown key {key!r}; allowed: {', '.join(TASK_KEYS)}")

    expression = entry.get("expression")
    if (
        not isinstance(expression, (str, int, float))
        or isinstance(expression, bool)
        or not str(expression).strip()
    ):
        raise TaskError(f"{where}: expression is missing or not a string, got {expression!r}")
    expression = str(expression).strip()
    var_names = None
    if isinstance(entry.get("variables"), list):  # names: the expression may use them for x1, x2, ...
        var_names = _variable_names(entry["variables"], where)
        expression = re.sub(
            r"[A-Za-z_][A-Za-z0-9_]*",
            lambda m: f"x{var_names.index(m.group(0)) + 1}" if m.group(0) in var_names else m.group(0),
            expression,
        )
    try:  # a truth is sympy text, read apart from the function set (docs/task-files.md)
        used = truth_n_vars(parse_truth(expression))
    except (ParseError, LanguageError, ValueError, SyntaxError) as error:
        raise TaskError(f"{where}: expression {expression!r} cannot be parsed: {_one_line(error)}") from None

    n_vars = len(var_names) if var_names else entry.get("variables", max(used, 1))
    if isinstance(n_vars, bool) or not isinstance(n_vars, int) or n_vars < 1:
        raise TaskError(f"{where}: variables must be a positive integer or a list of names, got {n_vars!r}")
    if n_vars < used:
        raise TaskError(f"{where}: variables is {n_vars} but the expression uses x{used}")

    if "function_set" not in entry:
        raise TaskError(f"{where}: function_set is missing (a set name such as Koza, or a list of operators)")
    names = entry["function_set"]
    if not isinstance(names, (str, list)) or (isinstance(names, list) and not names):
        raise TaskError(f"{where}: function_set must be a set name or a non-empty list, got {names!r}")
    try:
        function_set = FunctionSet.from_names(names, n_vars)
    except LanguageError as error:
        raise TaskError(f"{where}: function_set: {_one_line(error)}") from None

    if "train" not in entry:
        raise TaskError(
            f"{where}: train is missing (e.g. {{distribution: uniform, low: -1, high: 1, points: 20}})"
        )
    train = _sampling(entry["train"], n_vars, f"{where}: train")
    test = _sampling(entry["test"], n_vars, f"{where}: test") if entry.get("test") is not None else None
    noise = entry.get("noise", 0.0)
    if isinstance(noise, str):  # YAML's quoted numbers ("1e-3"), as for the sampling's
        try:
            noise = float(noise)
        except ValueError:
            pass  # Task rejects it in one line
    noise_kind = entry.get("noise_kind", "additive")
    units = entry.get("units")
    if units is not None:
        if not isinstance(units, dict):
            raise TaskError(f"{where}: units must be a mapping such as {{x1: m, target: s}}, got {units!r}")
        units = tuple((str(k), str(v)) for k, v in units.items())
    try:
        task = Task(name, expression, n_vars, train, test, function_set, noise, var_names, noise_kind, units)
    except TaskError as error:
        raise TaskError(f"{source}: {error}") from None

    for split in ("train", "test"):
        X = task.sampling(split).sample(n_vars, np.random.default_rng([0, 0 if split == "train" else 1]))
        y = task.truth(X)
        bad = ~np.isfinite(y)
        if bad.any():
            point = ", ".join(f"x{i + 1}={v:.4g}" for i, v in enumerate(X[np.argmax(bad)]))
            raise TaskError(
                f"{where}: the ground truth is not finite on the {split} range "
                f"({int(bad.sum())} of {len(y)} points, e.g. at {point})"
            )
    return task


def _sampling(spec: Any, n_vars: int, where: str) -> Sampling:
    if not isinstance(spec, dict):
        raise TaskError(f"{where}: expected a mapping such as {{distribution: uniform, low, high, points}}")
    for key in spec:
        if key not in SAMPLING_KEYS:
            raise TaskError(f"{where}.{key}: unknown key; allowed: {', '.join(SAMPLING_KEYS)}")
    distribution = spec.get("distribution", "uniform")
    for key in ("low", "high"):
        if key not in spec:
            raise TaskError(f"{where}.{key} is missing")
    if distribution == "uniform" and "step" in spec:
        raise TaskError(f"{where}.step applies to a grid only; set distribution: grid or give points")
    if distribution == "grid" and "points" in spec:
        raise TaskError(f"{where}.points applies to uniform sampling only; a grid takes step")
    if distribution == "uniform" and "points" not in spec:
        raise TaskError(f"{where}.points is missing")
    try:
        points = spec["points"] if distribution == "uniform" else 0
        sampling = Sampling(distribution, spec["low"], spec["high"], points, spec.get("step"))
        sampling.check_vars(n_vars)
    except TaskError as error:
        raise TaskError(f"{where}.{error}") from None
    return sampling


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@lru_cache(maxsize=1)
def benchmark_keys() -> frozenset[str]:
    """Canonical keys of every built-in task's formula: training data must never contain them."""
    return frozenset(task.program().key for task in TASKS.values())
