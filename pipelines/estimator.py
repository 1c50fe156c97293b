"""ProgramRegressor: the pipeline behind scikit-learn's estimator interface.

``__init__`` only stores its arguments; ``fit`` validates X and y, runs the pipeline, and
sets the learned attributes (ending in ``_``), as scikit-learn's rules ask.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from pipelines.pipeline import InductionPipeline
from simulator.data import check_xy


class ProgramRegressor(RegressorMixin, BaseEstimator):
    """Find a short program y = φ(X) and predict with it.

    Parameters mirror ``InductionPipeline.solve``: the function set, the simulator-call
    and wall-time budgets, the pipeline preset, and the seed (``random_state``).
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
    ):
        self.function_set = function_set
        self.calls = calls
        self.seconds = seconds
        self.pipeline = pipeline
        self.random_state = random_state

    def fit(self, X, y) -> ProgramRegressor:
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        check_xy(X, y)
        seed = 0 if self.random_state is None else int(self.random_state)
        pipe = InductionPipeline.preset(self.pipeline)
        self.result_ = pipe.solve(
            X, y, function_set=self.function_set, calls=self.calls, seconds=self.seconds, seed=seed
        )
        self.program_ = self.result_.program
        self.equations_ = [
            {"complexity": r.complexity, "loss": r.loss, "equation": str(r.sympy)} for r in self.result_.front
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
