"""runs.jsonl: one JSON line per finished run, appended as runs finish.

Appending each record as its run finishes is what makes a bench resumable: a rerun with the
same output folder reads the file, skips every (task, seed, method) already recorded, and
runs the rest. When a key appears more than once (a failed run retried), the last line wins.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from pipelines.bench.plan import Job, Key
from pipelines.bench.record import clean


class RunStore:
    """The runs.jsonl of one output folder."""

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / "runs.jsonl"

    def append(self, rec: dict) -> None:
        """Append one record and flush it to disk, so an interrupted bench keeps every finished run."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(clean(rec), allow_nan=False) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> list[dict]:
        """Every well-formed record; a line cut short by a crash is skipped (that run is redone)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and {"task", "seed", "method"} <= rec.keys():
                out.append(rec)
        return out

    def latest(self) -> dict[Key, dict]:
        """The last record per (task, seed, method)."""
        return {(r["task"], int(r["seed"]), r["method"]): r for r in self.read()}

    def todo(self, jobs: Iterable[Job], retry_errors: bool = False) -> list[Job]:
        """The jobs not yet recorded (with ``retry_errors``, also those recorded as failed)."""
        done = self.latest()
        return [j for j in jobs if j.key not in done or (retry_errors and done[j.key].get("error"))]

    def records(self, jobs: Iterable[Job]) -> list[dict]:
        """The latest record of each planned job that has one, in plan order."""
        done = self.latest()
        return [done[j.key] for j in jobs if j.key in done]
