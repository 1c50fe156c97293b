"""``induce bench``: suites against pipeline ablations and peer systems (docs/benchmarks.md).

One file per role:

- ``cli``: the command line, and the order of things (plan, run, store, report);
- ``plan``: a run (:class:`~pipelines.bench.plan.Job`) and the interleaved order of runs;
- ``methods``: the one interface of a method, pipeline preset or peer, and the registry;
- ``peers``: Operon and gplearn, configured and read back as sympy;
- ``record``: what a run reports (the runs.jsonl fields) and how an answer is judged;
- ``runner``: where runs execute (pebble process pool, Ray, or inline) with hard time limits;
- ``store``: runs.jsonl, appended as runs finish, which is what makes a rerun resume;
- ``stats``: every statistic, computed once with pandas;
- ``report``: summary.md, the console table and the plot; ``tracking``: the W&B run;
- ``progress``: the console while runs go;
- ``loop``: ``induce bench-loop``, the measure-and-refit loop, suggested against random points;
- ``simulator_speed``: ``induce bench-simulator``, candidate evaluations per second.
"""

from pipelines.bench.cli import add_parser, main

__all__ = ["add_parser", "main"]
