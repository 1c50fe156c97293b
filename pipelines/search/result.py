"""What a solve returns: the best program, the Pareto front, exports, and the edit trace."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import sympy
import torch

from pipelines.search.selection import beats_mean
from pipelines.search.snap import Snapped
from simulator.edits import Edit, apply
from simulator.execute import evaluate, torch_forward
from simulator.program import Program, symbols, to_sympy, to_text

DIGITS = 6  # significant digits of a constant in the printout (the JSON keeps them all)
SPLIT_NAMES = {  # the planner's reasons, in the README's words ("Many variables")
    "a product of powers: ": "power split, y = ",
    "a sum split: ": "sum split, y = ",
    "a symmetry: ": "symmetry, y = ",
}
CRITERION_NOTES = {
    "mdl": "mdl: description length in nats, the fit's and the program's together; lower is better",
    "score": "score: PySR's, the drop of log loss per node from the row above; higher is better",
    "accuracy": "accuracy: the training loss itself; lower is better",
    "validation": "validation: the loss on the held-out points; lower is better",
}
NO_BETTER_THAN_MEAN = (
    "no program found beats the mean of the data (NMSE 1); more calls or seconds, "
    "or another function set, may find one"
)


@dataclass(frozen=True)
class TraceStep:
    """One edit on the way from the start program to the result, and why it was made."""

    edit: Edit
    stage: str
    reason: str
    loss_before: float
    loss_after: float

    def to_dict(self) -> dict:
        return {
            "edit": self.edit.to_dict(),
            "text": str(self.edit),
            "stage": self.stage,
            "reason": self.reason,
            "loss_before": self.loss_before,
            "loss_after": self.loss_after,
        }


@dataclass(frozen=True, eq=False)
class NamedProgram(Program):
    """A program that prints with the data's variable names (``t``, ``N``) for x1, x2, ...;
    it evaluates, compares and hashes as the program itself."""

    names: tuple[str, ...] | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Program) and (self.tokens, self.consts) == (other.tokens, other.consts)

    def __hash__(self) -> int:
        return hash((self.tokens, self.consts))

    def __str__(self) -> str:
        return to_text(self, self.names)

    def __repr__(self) -> str:
        return f"Program({str(self)!r})"

    def to_sympy(self) -> sympy.Expr:
        return to_sympy(self, symbols(self.n_vars, self.names))

    def latex(self) -> str:
        return sympy.latex(self.to_sympy())


@dataclass(frozen=True)
class FrontRow:
    """One row of the Pareto front: size, training loss, the program, the selection
    criterion's value (:mod:`pipelines.search.selection`) and the loss on a validation split."""

    complexity: int
    loss: float
    program: Program
    criterion: float | None = None
    validation_loss: float | None = None


class ProgramModule(torch.nn.Module):
    """A found program as a torch module; its constants are trainable parameters."""

    def __init__(self, program: Program):
        super().__init__()
        self.program = program
        self.consts = torch.nn.Parameter(torch.tensor(program.consts, dtype=torch.float64))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return torch_forward(self.program, X.to(torch.float64), self.consts)[0]


@dataclass
class Result:
    """The outcome of ``pipeline.solve``. ``program`` is the chosen law."""

    program: Program
    loss: float
    front: list[FrontRow]
    start: Program
    trace: list[TraceStep]
    calls: int
    fit_passes: int
    seconds: float
    stopped: str
    history: list[tuple[int, float]] = field(default_factory=list)  # (calls, best loss so far)
    found_at: int = 0  # simulator calls spent when ``program`` was found
    candidates_scored: int = 0  # candidates judged without a simulator call (library lookups)
    variable_names: tuple[str, ...] | None = None  # the data's names for x1, x2, ... (printing only)
    noise_floor: float = 0.0  # the NMSE the law itself would score (0: exact data)
    noise: dict | None = None  # the estimates behind the floor (pipelines/search/noise.py), when estimated
    selection: str = "auto"  # the criterion that chose ``program`` from the front
    split: str = ""  # how the task was split into smaller ones on the way to it ("": not split)
    origin: str = ""  # the fit the law grew from: a linear, rational or shape fit ("": the search)
    checkpoints: list[dict] = field(default_factory=list)  # model files used: path, sha256, shipped
    # the programs (chosen and front) whose constants snapped to simple forms (pipelines/search/snap.py)
    snaps: dict[Program, Snapped] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # what the data checks found (data_checks.py)
    outliers: list[int] = field(default_factory=list)  # rows that lie far from their neighbours
    outliers_dropped: bool = False  # whether those rows were left out of the search
    units: dict[str, str] | None = None  # the units given for the columns and the target
    constant_units: list[str] | None = None  # each constant's units in the chosen law ("free": any)

    def named(self, program: Program) -> sympy.Expr:
        """A program as sympy over the data's variable names (x1..xn when there are none),
        its snapped constants written exactly (3/2, pi)."""
        snapped = self.snaps.get(program)
        exact = snapped.forms(program) if snapped is not None else None
        return to_sympy(program, symbols(program.n_vars, self.variable_names), exact)

    def fitted(self, program: Program | None = None) -> Program:
        """A program (the chosen one by default) with its constants as fitted, before any snap."""
        p = self.program if program is None else program
        snapped = self.snaps.get(p)
        return p if snapped is None else p.with_consts(snapped.fitted)

    def constants(self, program: Program) -> dict:
        """The JSON's constants of a program: those it uses, those the fit gave, and the
        exact form of each snapped one (null where the constant is free)."""
        snapped = self.snaps.get(program)
        return {
            "constants": list(program.consts),
            "fitted_constants": list(program.consts if snapped is None else snapped.fitted),
            "snapped_constants": [None] * len(program.consts) if snapped is None else snapped.texts(),
        }

    def text(self, program: Program) -> str:
        return to_text(program, self.variable_names)

    def sympy(self) -> sympy.Expr:
        return self.named(self.program)

    def named_program(self, program: Program | None = None) -> Program:
        """A program (the chosen one by default) that prints with the data's variable names."""
        p = self.program if program is None else program
        return NamedProgram(p.tokens, p.consts, self.variable_names) if self.variable_names else p

    def latex(self) -> str:
        return sympy.latex(self.sympy())

    def torch_module(self) -> ProgramModule:
        return ProgramModule(self.program)

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return evaluate(self.program, X.reshape(len(X), -1))

    def replay(self) -> Program:
        """Apply the trace's edits to the start program (structure of the result)."""
        p = self.start
        for step in self.trace:
            p = apply(p, step.edit)
        return p

    @property
    def beats_mean(self) -> bool:
        """Whether the chosen program fits better than the mean of y (NMSE 1)."""
        return beats_mean(self.loss)

    @property
    def criterion_name(self) -> str:
        """The front's criterion column: ``auto`` shows its fallback, ``mdl``."""
        return "mdl" if self.selection == "auto" else self.selection

    def front_notes(self) -> str:
        """What the front table's columns mean, for a first reading."""
        return (
            "  loss: NMSE, the mean squared error over the variance of y; 1 is what the mean of y scores\n"
            f"  {CRITERION_NOTES[self.criterion_name]}\n"
            f"  *: the chosen row (chosen by {self.selection})"
        )

    def front_table(self) -> str:
        """The Pareto front as PySR prints it: complexity, loss, the selection criterion, and
        the equation; ``*`` marks the chosen program, a validation column shows when there is
        a validation split."""
        validation = any(r.validation_loss is not None for r in self.front)
        head = f"  {'complexity':>10}  {'loss (NMSE)':>12}"
        head += f"  {'validation':>12}" if validation else ""
        shown = self.criterion_name != "validation"  # else it is the validation column again
        head += f"  {self.criterion_name:>10}  equation" if shown else "  equation"
        lines = [head]
        for row in self.front:
            mark = "*" if row.program.key == self.program.key else " "
            line = f"{mark} {row.complexity:>10}  {row.loss:>12.4g}"
            if validation:
                line += f"  {row.validation_loss:>12.4g}" if row.validation_loss is not None else " " * 14
            if shown:
                line += f"  {row.criterion:>10.4g}" if row.criterion is not None else " " * 12
            lines.append(f"{line}  {rounded(self.named(row.program))}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "program": self.text(self.program),
            "sympy": str(self.sympy()),
            "latex": self.latex(),
            "nmse_train": self.loss,
            **self.constants(self.program),
            "nmse_fitted": self.snaps[self.program].fitted_loss if self.program in self.snaps else self.loss,
            "complexity": self.program.complexity,
            "simulator_calls": self.calls,
            "fit_forward_passes": self.fit_passes,
            "candidates_scored": self.candidates_scored,
            "seconds": round(self.seconds, 4),
            "stopped": self.stopped,
            "front": [
                {
                    "complexity": r.complexity,
                    "loss": r.loss,
                    "validation_loss": r.validation_loss,
                    self.criterion_name: r.criterion,
                    "program": self.text(r.program),
                    "sympy": str(self.named(r.program)),
                    **self.constants(r.program),
                    "chosen": r.program.key == self.program.key,
                }
                for r in self.front
            ],
            "beats_mean": self.beats_mean,
            "noise_floor": self.noise_floor,
            "noise_estimates": self.noise,
            "warnings": self.warnings,
            "outliers": {"rows": self.outliers, "dropped": self.outliers_dropped},
            "units": None if self.units is None else {"given": self.units, "constants": self.constant_units},
            "selection": self.selection,
            "split": self.named_split(),
            "origin": self.origin,
            "start": self.text(self.start),
            "variables": list(self.variable_names) if self.variable_names else None,
            "trace": [s.to_dict() for s in self.trace],
            "history": self.history,
            "found_at": self.found_at,
            "checkpoints": self.checkpoints,
        }

    def _fitted_line(self) -> str:
        """The chosen program as fitted, before its constants snapped ("" when none did)."""
        snapped = self.snaps.get(self.program)
        if snapped is None or snapped.fitted == self.program.consts:  # the fit was at the forms
            return ""
        fitted = rounded(self.named(self.fitted()))
        return f"fitted:   {fitted} (nmse {snapped.fitted_loss:.4g}), constants snapped to simple forms\n"

    def _units_line(self) -> str:
        """Each constant of the chosen law with its units, when units were given."""
        if not self.constant_units:
            return ""
        shown = [
            f"{v:.4g} [{'dimensionless' if u == '1' else u}]"
            for v, u in zip(self.program.consts, self.constant_units, strict=True)
        ]
        return f"units:    constants {', '.join(shown)}\n"

    def named_split(self) -> str:
        """:attr:`split` with the data's variable names for x1, x2, ..."""
        if not self.variable_names:
            return self.split
        names = self.variable_names
        return re.sub(r"\bx(\d+)\b", lambda m: names[int(m.group(1)) - 1], self.split)

    def models_line(self) -> str:
        """The checkpoint files the solve used: a shipped one by its file name, another by its
        path, each with the first 12 hex digits of its sha256."""
        files = [
            f"{c['shipped'] + '.pt' if c.get('shipped') else c['path']} {c.get('sha256') or '(gone)'}"
            for c in self.checkpoints
        ]
        return ", ".join(files) + " (sha256)"

    def split_words(self) -> str:
        """:meth:`named_split` in docs/search.md's words: power split, sum split, symmetry."""
        text = self.named_split()
        for reason, words in SPLIT_NAMES.items():
            if text.startswith(reason):
                return words + text[len(reason) :]
        return text

    def __str__(self) -> str:
        return (
            f"found:    {rounded(self.sympy())}\n"
            f"sympy:    {self.sympy()}\n"
            f"nmse:     {self.loss:.4g}"
            + (f" (noise floor estimated at {self.noise_floor:.2g})\n" if self.noise_floor else "\n")
            + self._fitted_line()
            + ("" if self.beats_mean else f"note:     {NO_BETTER_THAN_MEAN}\n")
            + "".join(f"warning:  {w}\n" for w in self.warnings)
            + self._units_line()
            + f"chosen:   by {self.selection} from the Pareto front\n"
            + (f"split:    {self.split_words()}\n" if self.split else "")
            + (f"from:     {self.origin}\n" if self.origin else "")
            + f"calls:    {self.calls:,} simulator calls, "
            f"{self.candidates_scored:,} candidates scored by lookup\n"
            f"seconds:  {self.seconds:.2f}\n"
            f"stopped:  {self.stopped}\n"
            + (f"models:   {self.models_line()}\n" if self.checkpoints else "")
            + f"\nPareto front\n{self.front_table()}\n{self.front_notes()}"
        )


def rounded(expr: sympy.Expr, digits: int = DIGITS) -> sympy.Expr:
    """``expr`` with every constant shown to ``digits`` significant digits (2.4999999999 is 2.5)."""

    def short(value: sympy.Float) -> sympy.Expr:
        text = f"{float(value):.{digits}g}"
        if float(text).is_integer() and abs(float(text)) < 10**digits:
            return sympy.Integer(int(float(text)))
        mantissa = text.split("e")[0].lstrip("-").replace(".", "").lstrip("0")
        return sympy.Float(text, max(len(mantissa), 1))

    return expr.xreplace({f: short(f) for f in expr.atoms(sympy.Float)})
