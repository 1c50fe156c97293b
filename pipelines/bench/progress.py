"""The console during a bench: one progress bar, and one line per failed run."""

from __future__ import annotations

import sys


class Progress:
    """A tqdm bar on stderr; a failed run also prints ``failed: METHOD on TASK seed N: ERROR``."""

    def __init__(self, total: int):
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="run", file=sys.stderr, dynamic_ncols=True, disable=None)

    def record(self, rec: dict, quiet: bool = False) -> None:
        """Count a finished run; ``quiet`` leaves out the failure line (said another way already)."""
        self.bar.update(1)
        if rec.get("error"):
            mark = "failed"
            if not quiet:
                where = f"{rec['method']} on {rec['task']} seed {rec['seed']}"
                self.bar.write(f"failed: {where}: {rec['error']}", file=sys.stderr)
        else:
            mark = "recovered" if rec["recovered"] else "not recovered"
        self.bar.set_postfix_str(f"{rec['task']} seed {rec['seed']} {rec['method']}: {mark}", refresh=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()
