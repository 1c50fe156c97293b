"""The noise floor of a data set: the NMSE that the true law itself would score on it.

Real measurements are noisy, so the law does not fit them exactly: it leaves residuals of
the noise's size. Knowing that size lets the search stop refining once a program reaches
it, and stops it from rewarding near-fits that only chase the noise.

Two estimates are made and cross-checked:

* **A smooth surrogate**: a Gaussian process with one length scale per variable and a white
  noise term, fitted by maximum marginal likelihood (scikit-learn). A smooth function without
  noise gives a white term near zero, and the floor is then 0: the data are taken as exact.
  So is a surrogate that explains too little (a floor above 30% of the variance). On a
  few dozen points it tends to explain part of the noise as signal: on our laws at noise
  0.01 it under-estimated the floor by more than 3x in 20 of 47 cases.
* **Differences between neighbours** (model-free): each point is predicted by a local linear
  fit through its nearest neighbours in x, as Gasser, Sroka and Jennen-Steinmetz do with
  three points in one variable; the squared residual, scaled by the fit's variance
  inflation, estimates the noise variance, and the median over points (over the median of a
  chi-square with one degree of freedom) resists the points where curvature dominates. On
  sparse data the signal's curvature inflates it: it is an upper estimate.

The floor used is the geometric mean of the two when the surrogate sees noise, else 0: on
the same laws at noise 0.01 it is within 3x of the truth in 32 of 47 cases (26 for the
surrogate alone), and it stays 0 on exact data. Both estimates, and the relative noise
(the neighbour estimate on log|y|, for multiplicative noise), are reported.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from pipelines.search.problem import fixed_rows

# Below this NMSE the data are treated as noiseless: the exact-fit machinery takes over.
EXACT_BELOW = 1e-7
MAX_POINTS = 256  # the surrogate's cost grows with the cube of the points it sees
# Above this the surrogate has explained too little: an estimate no stop should rest on (the
# planner's noise_cap setting). On 300 random targets from the prior (benchmarks/noise-floor/),
# 0.3 against the former 0.05 finds the floor within 3x at noise 0.1 in 72% against 51%
# (taken as exact: 22% against 45%), at noise 0.3 in 56% against 6%, and takes exact data
# as noisy in 4.0% against 3.3%.
NOISE_CAP = 0.3
CHI2_MEDIAN = 0.4549364  # the median of a chi-square with one degree of freedom


def check_noise_floor(value: float | str) -> float | str:
    """A noise-floor setting: ``"auto"`` or an NMSE in [0, 1); else a one-line ValueError."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"noise floor must be auto or an NMSE from 0 to 1, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class NoiseEstimate:
    """The floor the search uses, and the estimates behind it (NMSE, but ``relative``: the
    noise's standard deviation as a fraction of |y|, None where y changes sign)."""

    floor: float
    surrogate: float
    neighbours: float
    relative: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def estimate_noise(X: np.ndarray, y: np.ndarray, seed: int = 0, cap: float = NOISE_CAP) -> NoiseEstimate:
    """Both estimates, cross-checked into the floor (see the module docstring); ``cap`` is
    the surrogate's largest estimate still taken as noise."""
    gp = surrogate_floor(X, y, seed, cap)
    near = neighbour_floor(X, y)
    floor = min(float(np.sqrt(gp * near)), cap) if gp > 0 and near > 0 else 0.0
    y = np.asarray(y, dtype=np.float64)
    relative = None
    if len(y) >= 8 and (np.all(y > 0) or np.all(y < 0)):
        with np.errstate(all="ignore"):
            logs = np.log(np.abs(y))
        relative = float(np.sqrt(max(neighbour_floor(X, logs) * float(np.var(logs)), 0.0)))
    return NoiseEstimate(floor, gp, near, relative)


def noise_floor(X: np.ndarray, y: np.ndarray, seed: int = 0) -> float:
    """The floor of :func:`estimate_noise` alone."""
    return estimate_noise(X, y, seed).floor


def neighbour_floor(X: np.ndarray, y: np.ndarray) -> float:
    """Model-free noise variance over the variance of y, from local linear fits through each
    point's nearest neighbours (0.0 with fewer than 8 points)."""
    X = np.asarray(X, dtype=np.float64).reshape(len(y), -1)
    y = np.asarray(y, dtype=np.float64)
    n, d = X.shape
    var = float(np.var(y))
    if n < 8 or not np.isfinite(var) or var <= 0:
        return 0.0
    if n > MAX_POINTS:
        keep = fixed_rows(n, MAX_POINTS)
        X, y, n = X[keep], y[keep], MAX_POINTS
    scale = X.std(axis=0)
    Xs = (X - X.mean(axis=0)) / np.where(scale > 0, scale, 1.0)
    k = min(n - 1, 2 * d + 2)
    dist = ((Xs[:, None, :] - Xs[None, :, :]) ** 2).sum(axis=-1)
    np.fill_diagonal(dist, np.inf)
    near = np.argsort(dist, axis=1)[:, :k]
    ratios = np.empty(n)
    for i in range(n):
        A = np.c_[np.ones(k), Xs[near[i]] - Xs[i]]
        w = np.linalg.pinv(A)[0]  # the local fit's value at x_i, as weights on the neighbours
        e = y[i] - w @ y[near[i]]
        ratios[i] = e * e / (1.0 + w @ w)
    return float(np.median(ratios) / CHI2_MEDIAN / var)


def surrogate_floor(X: np.ndarray, y: np.ndarray, seed: int = 0, cap: float = NOISE_CAP) -> float:
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
    return level if EXACT_BELOW <= level <= cap else 0.0
