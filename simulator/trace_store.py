"""Trace shards on disk: the planner's recorded experience as plain, safely loaded data.

A shard is a dict of tensors, strings and numbers written with ``torch.save`` and read with
``torch.load(weights_only=True)``: no pickled code runs on load, so shards can be shared.
Programs are stored exactly (tokens and constant values). ``pipelines/learning/traces.py`` makes
shards; the data modules of the learned models read them through this module.
"""

from __future__ import annotations

from pathlib import Path

import torch

from simulator.edits import KINDS, Edit
from simulator.language import FunctionSet
from simulator.program import Program

TRACE_FORMAT = 1


class TraceError(ValueError):
    """A trace folder or shard that cannot be read or written as asked."""


def program_record(p: Program) -> dict:
    """A program as exact plain data (tokens and constant values), for a safe round trip."""
    return {"tokens": list(p.tokens), "consts": [float(c) for c in p.consts]}


def program_from(d: dict) -> Program:
    return Program(tuple(d["tokens"]), tuple(d["consts"]))


def state_edits(row: dict) -> list[Edit]:
    """The legal edits of a stored state, in their stored order."""
    return [
        Edit(KINDS[int(k)], int(loc), tok, leaf, int(side))
        for k, loc, tok, leaf, side in zip(
            row["edit_kind"],
            row["edit_loc"],
            row["edit_token"],
            row["edit_leaf"],
            row["edit_side"],
            strict=True,
        )
    ]


def task_function_set(task: dict) -> FunctionSet:
    """The function set a traced task was solved with."""
    return FunctionSet.from_names(task["function_set"].split(","), int(task["n_vars"]))


def shard_path(out: Path, index: int) -> Path:
    return Path(out) / f"shard-{index:05d}.pt"


def write_shard(path: Path, rows: list[dict], config: dict, seed: int) -> Path:
    """Write one shard atomically (a half-written file never looks finished)."""
    payload = {"format": TRACE_FORMAT, "config": config, "seed": seed, "runs": rows}
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def read_shard(path: Path) -> dict:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged file
        raise TraceError(f"{path}: not a readable trace shard ({type(err).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != TRACE_FORMAT:
        raise TraceError(f"{path}: not a trace shard of format {TRACE_FORMAT}")
    return payload


def load_traces(folder: str | Path) -> list[dict]:
    """Every run of every shard in ``folder``, in shard order."""
    folder = Path(folder)
    shards = sorted(folder.glob("shard-*.pt"))
    if not shards:
        raise TraceError(f"{folder}: no trace shards (shard-*.pt) here; make them with `induce traces`")
    return [run for path in shards for run in read_shard(path)["runs"]]


def split_runs(folders: str | Path | list, validation: bool, val_fraction: float) -> list[dict]:
    """The runs of ``folders`` on one side of a train/validation split made by run index (every
    ``1/val_fraction``-th run is held out), so a held-out run's states are all unseen."""
    folders = [folders] if isinstance(folders, (str, Path)) else list(folders)
    every = max(1, round(1 / val_fraction)) if val_fraction > 0 else 0
    runs = [run for folder in folders for run in load_traces(folder)]
    return [run for i, run in enumerate(runs) if (every > 0 and i % every == 0) == validation]
