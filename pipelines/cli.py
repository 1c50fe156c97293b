"""The ``induce`` command line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("fit", "validate", "test", "predict"):
        from pipelines.train import lightning_main

        lightning_main(argv)
        return 0
    print("usage: induce {solve,fit,validate,test,evaluate,bench,bench-simulator} ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
