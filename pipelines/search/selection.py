"""Choosing the law from the Pareto front by a stated criterion.

On exact data the answer is the smallest exact program. On noisy data every program on the
front fits only approximately, and the most accurate one is usually a bloated near-fit that
chases the noise. The criteria here trade loss against size, each in one column of the front
table:

* ``mdl``: a two-part description length in nats: ``n/2 ln(NMSE)`` for the data given the
  program, ``ln(V)`` per node for its structure (V: the function set's tokens), and
  ``1/2 ln(n)`` per fitted constant (the precision worth stating for n points). Lower wins.
* ``score``: PySR's, the steepest drop of log loss per unit of complexity from the row
  before; the highest wins among rows within 1.5x of the lowest loss, as PySR's ``best``.
* ``accuracy``: the lowest loss.
* ``validation``: the lowest loss on the held-out split (``validation=`` in ``solve``).
* ``auto``: the exact program with the shortest description when there is one, else ``mdl``.

Losses below the exact-fit bar count as the bar: exact programs differ only by rounding.
No criterion chooses a program worse than the mean (NMSE 1, the best constant): the mean
describes the data better than any such program. When no row beats it, the lowest loss wins.
The front shows each function once, at its smallest complexity (:func:`distinct`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CRITERIA = ("auto", "mdl", "score", "accuracy", "validation")
PYSR_LOSS_FACTOR = 1.5  # PySR's "best": the top score among rows within this factor of the min loss
MEAN_NMSE = 1.0  # the loss of the mean, the best constant
SAME_RTOL = 1e-8  # predictions this close on every training point are one function


class SelectionError(ValueError):
    """An unknown criterion, or one whose data are missing (validation without a split)."""


def check_criterion(name: str, has_validation: bool = True) -> str:
    """The criterion's canonical name, or a one-line error naming the choices."""
    key = str(name).strip().lower()
    if key not in CRITERIA:
        raise SelectionError(f"unknown selection criterion {name!r}; choose from {', '.join(CRITERIA)}")
    if key == "validation" and not has_validation:
        raise SelectionError("select='validation' needs a validation split (validation=0.2, say)")
    return key


def criterion_values(
    criterion: str,
    complexities: Sequence[int],
    losses: Sequence[float],
    n_points: int,
    n_tokens: int,
    n_consts: Sequence[int],
    tol: float,
    validation: Sequence[float] | None = None,
) -> np.ndarray:
    """The criterion's value for each front row (rows in order of complexity, loss falling).

    ``auto`` is shown as its fallback, ``mdl``.
    """
    loss = np.maximum(np.asarray(losses, dtype=np.float64), max(tol, 1e-300))
    c = np.asarray(complexities, dtype=np.float64)
    if criterion in ("mdl", "auto"):
        k = np.asarray(n_consts, dtype=np.float64)
        return n_points / 2 * np.log(loss) + c * math.log(max(n_tokens, 2)) + k / 2 * math.log(n_points)
    if criterion == "score":
        out = np.zeros(len(loss))
        out[1:] = -np.diff(np.log(loss)) / np.maximum(np.diff(c), 1)
        return out
    if criterion == "accuracy":
        return loss
    if criterion == "validation":
        if validation is None:
            raise SelectionError("select='validation' needs a validation split (validation=0.2, say)")
        return np.asarray(validation, dtype=np.float64)
    raise SelectionError(f"unknown selection criterion {criterion!r}; choose from {', '.join(CRITERIA)}")


def beats_mean(loss: float) -> bool:
    """Whether a loss is lower than the mean's, the best constant's (NMSE 1)."""
    return loss < MEAN_NMSE * (1 - 1e-9)


def select(criterion: str, values: np.ndarray, losses: Sequence[float]) -> int:
    """The chosen row for the criterion's values; ties go to the smaller program (lower index).

    Rows worse than the mean are never chosen while one beats it; when none does, the row
    with the lowest loss is (the constant, where the function set has one).
    """
    values = np.where(np.isfinite(values), values, np.inf)
    loss = np.asarray(losses, dtype=np.float64)
    better = np.array([beats_mean(v) for v in loss], dtype=bool)
    if not better.any():
        return int(np.argmin(loss))
    if criterion == "score":
        eligible = better & (loss <= PYSR_LOSS_FACTOR * loss.min())
        return int(np.argmax(np.where(eligible, values, -np.inf)))
    return int(np.argmin(np.where(better, values, np.inf)))  # the first, i.e. smallest, of equals


def distinct(predictions: Sequence[np.ndarray], scale: float, keep: int | None = None) -> list[int]:
    """Indices of the rows (in order of complexity) that compute a function no earlier row
    computes: equal predictions up to ``SAME_RTOL`` (relative, or of ``scale`` near zero) on
    the training inputs. ``keep`` is the one row of its group kept instead of the first."""
    atol = SAME_RTOL * max(scale, 1e-300)
    groups: list[list[int]] = []
    for i, p in enumerate(predictions):
        for group in groups:
            q = predictions[group[0]]
            with np.errstate(all="ignore"):
                if np.shape(p) == np.shape(q) and np.allclose(p, q, rtol=SAME_RTOL, atol=atol):
                    group.append(i)
                    break
        else:
            groups.append([i])
    return sorted(keep if keep in group else group[0] for group in groups)
