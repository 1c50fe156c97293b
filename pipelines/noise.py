"""The noise floor of a data set: the NMSE that the true law itself would score on it.

Real measurements are noisy, so the law does not fit them exactly: it leaves residuals of
the noise's size. Knowing that size lets the search stop refining once a program reaches
it, and stops it from rewarding near-fits that only chase the noise. The estimate comes
from a smooth surrogate: a Gaussian process with one length scale per variable and a white
noise term, fitted by maximum marginal likelihood (scikit-learn). A smooth function without
noise gives a white term near zero, and the floor is then 0: the data are taken as exact.
So is a surrogate that explains almost nothing (a floor above 5% of the variance): the
estimate is then too weak to stop a search on, and the search runs its budget as before.
"""

from __future__ import annotations

import warnings

import numpy as np

# Below this NMSE the data are treated as noiseless: the exact-fit machinery takes over.
EXACT_BELOW = 1e-7
MAX_POINTS = 256  # the surrogate's cost grows with the cube of the points it sees
# Above this the surrogate has explained almost nothing: an estimate no stop should rest on.
UNRELIABLE_ABOVE = 0.05


def check_noise_floor(value: float | str) -> float | str:
    """A noise-floor setting: ``"auto"`` or an NMSE in [0, 1); else a one-line ValueError."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"noise floor must be auto or an NMSE from 0 to 1, got {value!r}")
    return float(value)


def noise_floor(X: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """Estimated noise variance over the variance of y (0.0 when the data look exact).

    The law scores about this NMSE on the data; a program that scores much less is fitting
    the noise. Needs at least 8 points; with fewer, returns 0.0 (no estimate). Over 256
    points, a seeded subsample of 256 is used.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    y = np.asarray(y, dtype=np.float64)
    var = float(np.var(y))
    if len(y) < 8 or not np.isfinite(var) or var <= 0:
        return 0.0
    if len(y) > MAX_POINTS:
        keep = np.random.default_rng(seed).choice(len(y), MAX_POINTS, replace=False)
        X, y = X[keep], y[keep]
    scale = X.std(axis=0)
    Xs = (X - X.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    ys = (y - y.mean()) / np.sqrt(var)
    # Matern 3/2 rather than RBF: kinks such as sqrt(x) near 0 are not mistaken for noise.
    base = Matern(np.ones(X.shape[1]), (1e-2, 1e3), nu=1.5)
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * base + WhiteKernel(1e-2, (1e-12, 1.0))
    gp = GaussianProcessRegressor(kernel, alpha=1e-10, n_restarts_optimizer=2, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            gp.fit(Xs, ys)
        except (ValueError, np.linalg.LinAlgError):
            return 0.0
    level = float(gp.kernel_.k2.noise_level)  # in units of var(y), since ys has unit variance
    return level if EXACT_BELOW <= level <= UNRELIABLE_ABOVE else 0.0
