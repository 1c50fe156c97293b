"""A fixed numeric code for an edit's discrete parts (kind, token, new leaf, side).

The location is not in this code: models gather the program encoder's embedding of the
edited node instead, so an edit is described by what it does and where, in context.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flows.encoders import VOCAB
from simulator.edits import KINDS, Edit

EDIT_CODE_DIM = len(KINDS) + 2 * len(VOCAB) + 2


def edit_code(edit: Edit) -> np.ndarray:
    """One-hot kind, one-hot token, one-hot leaf, one-hot side: shape (EDIT_CODE_DIM,)."""
    v = np.zeros(EDIT_CODE_DIM, dtype=np.float32)
    v[KINDS.index(edit.kind)] = 1.0
    off = len(KINDS)
    if edit.token:
        v[off + VOCAB.index(edit.token)] = 1.0
    off += len(VOCAB)
    if edit.leaf:
        v[off + VOCAB.index(edit.leaf)] = 1.0
    off += len(VOCAB)
    v[off + (1 if edit.side else 0)] = 1.0
    return v


def edit_codes(edits: Sequence[Edit]) -> np.ndarray:
    """Codes of many edits: shape (len(edits), EDIT_CODE_DIM)."""
    return np.stack([edit_code(e) for e in edits]) if edits else np.zeros((0, EDIT_CODE_DIM), np.float32)
