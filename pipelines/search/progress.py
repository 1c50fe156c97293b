"""The progress line a solve shows while it runs (``induce solve``, ``ProgramRegressor(verbose=True)``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from simulator.program import to_text


def progress_bar(total: int, force: bool = False, names: Sequence[str] | None = None):
    """A tqdm bar fed by the planner's progress callback: calls, best loss and program.

    It shows on a terminal, or anywhere when ``force`` is set; ``names`` are the data's names
    for x1, x2, ... Returns (bar, callback).
    """
    from tqdm import tqdm

    bar = tqdm(
        total=total,
        unit="call",
        file=sys.stderr,
        dynamic_ncols=True,
        disable=None if not force else False,
        leave=False,
    )

    def update(budget, node) -> None:  # the planner's Budget and its best Node so far
        bar.n = min(budget.calls, total)
        text = to_text(node.program, names)
        bar.set_postfix_str(
            f"nmse={node.loss:.3g} {text[:50] + ('…' if len(text) > 50 else '')}", refresh=False
        )
        bar.refresh()

    return bar, update
