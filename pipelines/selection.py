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
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CRITERIA = ("auto", "mdl", "score", "accuracy", "validation")
PYSR_LOSS_FACTOR = 1.5  # PySR's "best": the top score among rows within this factor of the min loss


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


def select(criterion: str, values: np.ndarray, losses: Sequence[float]) -> int:
    """The chosen row for the criterion's values; ties go to the smaller program (lower index)."""
    values = np.where(np.isfinite(values), values, np.inf)
    if criterion == "score":
        loss = np.asarray(losses, dtype=np.float64)
        eligible = loss <= PYSR_LOSS_FACTOR * loss.min()
        return int(np.argmax(np.where(eligible, values, -np.inf)))
    return int(np.argmin(values))  # argmin returns the first, i.e. the smallest, of equal values
