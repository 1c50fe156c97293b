"""ProgramRegressor: the pipeline behind scikit-learn's estimator interface.

``__init__`` only stores its arguments; ``fit`` validates X and y, runs the pipeline, and
sets the learned attributes (ending in ``_``), as scikit-learn's rules ask.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from pipelines.pipeline import PLANNER_SETTINGS, STAGE_KEYS, InductionPipeline
from simulator.data import check_xy


class ProgramRegressor(RegressorMixin, BaseEstimator):
    """Find a short program y = φ(X) and predict with it.

    ``function_set``, ``calls``, ``seconds`` and ``random_state`` mirror
    ``InductionPipeline.solve``. ``pipeline`` is a preset name (``full``, ``uniform``,
    ``no-<stage>``) or a pipeline YAML path. Each stage (``locate``, ``propose``, ``screen``,
    ``subgoal``, ``verify``) may be replaced by an object, and each planner setting
    (``width``, ``max_size``, ``parsimony``, ``tol``, ``similarity_weight``, ``const_tol``,
    ``polish_calls``, ``polish_seconds``, ``noise_floor``, ``select``, ``separate``,
    ``shapes``, ``verify_all``, ``subgoal_share``) overridden; None keeps the pipeline's own.
    ``select`` chooses the law from the front (``auto``, ``mdl``, ``score``, ``accuracy``,
    ``validation``; :mod:`pipelines.selection`), and ``validation`` holds that fraction of
    the points out of the search to report (and select) on.
    After ``fit``: ``program_`` (the law), ``result_`` (Pareto front, trace, exports),
    ``equations_`` (the front as rows), and ``n_features_in_``.
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
        select: str | None = None,
        separate: bool | None = None,
        shapes: bool | None = None,
        verify_all: bool | None = None,
        subgoal_share: float | None = None,
        validation: float = 0.0,
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
        self.select = select
        self.separate = separate
        self.shapes = shapes
        self.verify_all = verify_all
        self.subgoal_share = subgoal_share
        self.validation = validation

    def _build_pipeline(self) -> InductionPipeline:
        settings = {k: getattr(self, k) for k in PLANNER_SETTINGS if getattr(self, k) is not None}
        pipe = InductionPipeline.load(self.pipeline, **settings)
        for stage in STAGE_KEYS:
            if getattr(self, stage) is not None:
                setattr(pipe.planner, stage, getattr(self, stage))
        return pipe

    def fit(self, X, y) -> ProgramRegressor:
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        check_xy(X, y)
        seed = 0 if self.random_state is None else int(self.random_state)
        self.result_ = self._build_pipeline().solve(
            X,
            y,
            function_set=self.function_set,
            calls=self.calls,
            seconds=self.seconds,
            seed=seed,
            validation=self.validation,
        )
        if hasattr(self, "feature_names_in_"):  # a DataFrame's column names name the variables
            self.result_.variable_names = tuple(str(c) for c in self.feature_names_in_)
        self.program_ = self.result_.program
        criterion = self.result_.criterion_name
        self.equations_ = [
            {
                "complexity": r.complexity,
                "loss": r.loss,
                "validation_loss": r.validation_loss,
                criterion: r.criterion,
                "equation": str(self.result_.named(r.program)),
                "chosen": r.program.key == self.program_.key,
            }
            for r in self.result_.front
        ]
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "program_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.result_.predict(X)

    def sympy(self):
        check_is_fitted(self, "program_")
        return self.result_.sympy()

    def latex(self) -> str:
        check_is_fitted(self, "program_")
        return self.result_.latex()
