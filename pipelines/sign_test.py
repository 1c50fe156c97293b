"""Two methods on the same targets, paired: wins, losses and a two-sided sign test.

The bench pairs each method with its reference on the same (task, seed), and ``induce
improve`` pairs a round's pipeline with ``plain``, and a fit with the current models, on the
same random targets; both count and test here, so their figures mean the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class SignTest(NamedTuple):
    wins: int  # targets solved by ours and not by theirs
    losses: int  # the reverse
    p: float  # two-sided sign test on wins against losses; 1 when there are none


def sign_test(ours: Iterable[bool], theirs: Iterable[bool]) -> SignTest:
    """Paired outcomes, target by target, counted and tested; ties (both or neither) drop out."""
    from scipy.stats import binomtest

    pairs = [(bool(a), bool(b)) for a, b in zip(ours, theirs)]
    wins = sum(a and not b for a, b in pairs)
    losses = sum(b and not a for a, b in pairs)
    p = float(binomtest(wins, wins + losses).pvalue) if wins + losses else 1.0
    return SignTest(wins, losses, p)
