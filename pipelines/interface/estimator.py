"""ProgramRegressor: the pipeline behind scikit-learn's estimator interface.

``__init__`` only stores its arguments; ``fit`` validates X and y, runs the pipeline, and
sets the learned attributes (ending in ``_``), as scikit-learn's rules ask.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import sympy
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from pipelines.interface.pipeline import PLANNER_SETTINGS, STAGE_KEYS, InductionPipeline
from pipelines.search.progress import progress_bar
from simulator.data import check_xy
from simulator.execute import evaluate


class ProgramRegressor(RegressorMixin, BaseEstimator):
    """Find a short program y = φ(X) and predict with it.

    ``function_set``, ``calls``, ``seconds`` and ``random_state`` mirror
    ``InductionPipeline.solve``. ``pipeline`` is a preset name (``full``, ``uniform``,
    ``no-<stage>``) or a pipeline YAML path. Each stage (``locate``, ``propose``, ``screen``,
    ``subgoal``, ``verify``) may be replaced by an object, and each planner setting
    (``width``, ``max_size``, ``parsimony``, ``tol``, ``similarity_weight``, ``const_tol``,
    ``polish_calls``, ``polish_seconds``, ``noise_floor``, ``select``, ``separate``,
    ``shapes``, ``linear``, ``verify_all``, ``subgoal_share``, ``snap``, ``outliers``,
    ``use_units``) overridden; None
    keeps the pipeline's own. ``snap=False`` keeps fitted constants as fitted; by default each
    snaps to a simple form (3/2, pi) where the loss allows (:mod:`pipelines.search.snap`).
    ``outliers="drop"`` leaves out of the search the points that lie far from their
    neighbours; by default they stay and a warning names them. What the data checks find
    (:mod:`pipelines.interface.data_checks`) is raised as ``UserWarning`` and kept in ``result_.warnings``.
    ``units`` gives the physical units of the columns and the target, as ``"a=m,T=s"`` or
    ``{"a": "m", "T": "s"}``, the target named as y's Series is (``y`` otherwise): only
    dimensionally consistent laws are chosen, and ``result_.constant_units`` says each
    constant's units (:mod:`simulator.units`).
    ``select`` chooses the law from the front (``auto``, ``mdl``, ``score``, ``accuracy``,
    ``validation``; :mod:`pipelines.search.selection`), and ``validation`` holds that fraction of
    the points out of the search to report (and select) on.
    ``verbose`` shows a progress line (calls, best loss, program) while fitting.
    After ``fit``, as in PySR: ``program_`` (the law, printed with the data's column names),
    ``equations_`` (the front as a DataFrame with ``sympy_format`` and ``lambda_format``
    columns), ``get_best()``, ``sympy(i)`` and ``latex(i)``; also ``result_`` (Pareto front,
    trace, exports) and ``n_features_in_``; ``suggest(n)`` proposes the inputs to measure next.
    """

    def __init__(
        self,
        function_set: str | list = "ckoza",
        calls: int = 200_000,
        seconds: float = 60.0,
        pipeline: str = "full",
        random_state: int | None = None,
        locate=None,
        propose=None,
        screen=None,
        subgoal=None,
        verify=None,
        width: int | None = None,
        max_size: int | None = None,
        parsimony: float | None = None,
        tol: float | None = None,
        similarity_weight: float | None = None,
        const_tol: float | None = None,
        polish_calls: int | None = None,
        polish_seconds: float | None = None,
        noise_floor: float | str | None = None,
        noise_cap: float | None = None,
        select: str | None = None,
        separate: bool | None = None,
        shapes: bool | None = None,
        linear: bool | None = None,
        verify_all: bool | None = None,
        subgoal_share: float | None = None,
        snap: bool | None = None,
        outliers: str | None = None,
        use_units: bool | None = None,
        units: str | dict | None = None,
        validation: float = 0.0,
        verbose: bool = False,
    ):
        self.function_set = function_set
        self.calls = calls
        self.seconds = seconds
        self.pipeline = pipeline
        self.random_state = random_state
        self.locate = locate
        self.propose = propose
        self.screen = screen
        self.subgoal = subgoal
        self.verify = verify
        self.width = width
        self.max_size = max_size
        self.parsimony = parsimony
        self.tol = tol
        self.similarity_weight = similarity_weight
        self.const_tol = const_tol
        self.polish_calls = polish_calls
        self.polish_seconds = polish_seconds
        self.noise_floor = noise_floor
        self.noise_cap = noise_cap
        self.select = select
        self.separate = separate
        self.shapes = shapes
        self.linear = linear
        self.verify_all = verify_all
        self.subgoal_share = subgoal_share
        self.snap = snap
        self.outliers = outliers
        self.use_units = use_units
        self.units = units
        self.validation = validation
        self.verbose = verbose

    def _build_pipeline(self) -> InductionPipeline:
        """The named pipeline with this estimator's stages and settings (None keeps its own)."""
        changes = {
            k: getattr(self, k) for k in (*STAGE_KEYS, *PLANNER_SETTINGS) if getattr(self, k) is not None
        }
        return InductionPipeline.load(self.pipeline).replace(**changes)

    def fit(self, X, y) -> ProgramRegressor:
        target = str(y.name) if getattr(y, "name", None) is not None else "y"
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        check_xy(X, y)
        seed = 0 if self.random_state is None else int(self.random_state)
        names = [str(c) for c in getattr(self, "feature_names_in_", [])] or None
        bar, progress = progress_bar(self.calls, True, names) if self.verbose else (None, None)
        try:
            self.result_ = self._build_pipeline().solve(
                X,
                y,
                function_set=self.function_set,
                calls=self.calls,
                seconds=self.seconds,
                seed=seed,
                validation=self.validation,
                progress=progress,
                names=names,
                units=self.units,
                target=target,
            )
        finally:
            if bar is not None:
                bar.close()
        if hasattr(self, "feature_names_in_"):  # a DataFrame's column names name the variables
            self.result_.variable_names = tuple(str(c) for c in self.feature_names_in_)
        for message in self.result_.warnings:
            warnings.warn(message, UserWarning, stacklevel=2)
        self.program_ = self.result_.named_program()
        self.equations_ = self._equations()
        self._fit_data = (X, y)  # for suggest: the data's range and y's spread
        return self

    def _equations(self) -> pd.DataFrame:
        """The front as PySR's ``equations_``: one row per program, smallest first."""
        result = self.result_
        rows = []
        for r in result.front:
            named = result.named_program(r.program)
            rows.append(
                {
                    "complexity": r.complexity,
                    "loss": r.loss,
                    "validation_loss": r.validation_loss,
                    result.criterion_name: r.criterion,
                    "equation": str(named),
                    "sympy_format": result.named(r.program),
                    "lambda_format": ProgramFunction(named),
                    "chosen": r.program.key == result.program.key,
                }
            )
        return pd.DataFrame(rows)

    def _row(self, i: int | None) -> pd.Series:
        check_is_fitted(self, "program_")
        if i is None:
            return self.get_best()
        if (
            isinstance(i, bool)
            or not isinstance(i, (int, np.integer))
            or not -len(self.equations_) <= i < len(self.equations_)
        ):
            raise IndexError(f"no row {i!r}; equations_ has rows 0 to {len(self.equations_) - 1}")
        return self.equations_.iloc[int(i)]

    def get_best(self) -> pd.Series:
        """The chosen row of ``equations_`` (the law the estimator predicts with)."""
        check_is_fitted(self, "program_")
        chosen = self.equations_[self.equations_["chosen"]]
        if len(chosen):
            return chosen.iloc[0]
        named = self.program_  # a simplified law that the front does not hold
        return pd.Series(
            {
                "complexity": named.complexity,
                "loss": self.result_.loss,
                "equation": str(named),
                "sympy_format": self.result_.sympy(),
                "lambda_format": ProgramFunction(named),
                "chosen": True,
            }
        )

    def suggest(
        self, n: int = 5, bounds: dict | None = None, seed: int | None = None, gaps: int = 0
    ) -> pd.DataFrame:
        """The ``n`` inputs to measure next: where the front's leading laws disagree most, and
        ``gaps`` of them (default none) in the widest gaps of the data
        (:mod:`pipelines.interface.suggest`). ``bounds`` is {name: (low, high)}, by the names the law
        prints with (a DataFrame's columns, else x1, x2, ...); a column not named keeps the
        training data's range. The columns are those names too. ``seed`` defaults to
        ``random_state``."""
        from pipelines.interface.suggest import suggest

        check_is_fitted(self, "program_")
        X, y = self._fit_data
        seed = self.random_state if seed is None else seed
        return suggest(X, y, self.result_, bounds, n, seed, gaps=gaps).frame()

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "program_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.result_.predict(X)

    def sympy(self, i: int | None = None):
        """Row ``i`` of ``equations_`` as sympy (default: the chosen law)."""
        return self._row(i)["sympy_format"]

    def latex(self, i: int | None = None) -> str:
        """Row ``i`` of ``equations_`` as LaTeX (default: the chosen law)."""
        return sympy.latex(self.sympy(i))

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        text = super().__repr__(N_CHAR_MAX)
        if not hasattr(self, "program_"):
            return text
        return f"{text}\nlaw: {self.sympy()}  (NMSE {self.result_.loss:.3g})"


class ProgramFunction:
    """A found program as a function of X (PySR's ``lambda_format``)."""

    def __init__(self, program):
        self.program = program

    def __call__(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return evaluate(self.program, X.reshape(len(X), -1))

    def __repr__(self) -> str:
        return f"ProgramFunction({str(self.program)!r})"
