"""The bench's runs on the executors of :mod:`pipelines.parallel`: worker processes, Ray, or this process.

A :class:`Runner` takes the planned jobs and hands back one record per job, as each
finishes, through ``on_record``; it never raises for a failed run. Whatever happens to a
run (the method raises, its worker dies, it runs past its hard time limit) becomes a record
with a one-line ``error``, and the bench goes on.

Each worker process loads every method it will run once, before any run's clock starts
(:func:`prepare_worker`), then reuses them; parallelism comes from the workers, so each
runs with one torch thread.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable

from pipelines.bench.plan import Job
from pipelines.bench.record import clean, failure, one_line
from pipelines.parallel import Executor, WorkerLost, make_executor

OnRecord = Callable[[dict], None]


def hard_limit(seconds: float) -> float:
    """Wall seconds after which a run is killed: its budget, then time to stop and be judged.

    Every method stops itself at its budget; the limit catches a run that does not (native
    code that hangs, a recovery check that will not end).
    """
    return seconds + max(30.0, 0.5 * seconds)


# --- in a worker ----------------------------------------------------------------------------------


def prepare_worker(names: tuple[str, ...]) -> None:
    """One torch thread, and every method loaded and warmed up before any clock runs.

    Without the warm-up the first run in each process would pay for lazy imports and first
    calls inside its timed search, and a method's seconds would depend on where it fell.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy as np
    import torch

    from pipelines.bench import methods

    torch.set_num_threads(1)
    for name in names:
        try:
            method = methods.get(name)
            if method.why_not() is None:
                method.prepare()
        except Exception:  # noqa: BLE001 - a broken method shows in its own runs
            pass
    try:
        X = np.linspace(0.1, 1.0, 20)[:, None]
        methods.pipeline("uniform").solve(X, 2.5 * X[:, 0] + 1, "CKoza", calls=50, seconds=5.0)
    except Exception:  # noqa: BLE001 - a warm-up only
        pass


def run_job(job: Job) -> dict:
    """One run as its runs.jsonl record; never raises (a failure is a record with ``error``)."""
    from pipelines.bench import methods

    start = time.perf_counter()
    try:
        rec = methods.get(job.method).run(job.task, job.seed, job.calls, job.seconds)
    except Exception as err:  # noqa: BLE001 - a failed run must never stop the benchmark
        rec = failure(job, one_line(err))
    rec["wall_seconds"] = round(time.perf_counter() - start, 3)
    # the worker's peak resident memory so far (KiB on Linux): this run's peak or above
    rec["peak_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return clean(rec)


def _why(job: Job, error: BaseException, executor: str) -> str:
    """A failed run's one-line error: past its hard limit, its worker lost, or what was raised."""
    if isinstance(error, TimeoutError):
        limit = hard_limit(job.seconds)
        return f"ran past the hard limit of {limit:.3g} s (budget {job.seconds:g} s); killed"
    if isinstance(error, WorkerLost):
        return str(error)
    return f"ray: {one_line(error)}" if executor == "ray" else one_line(error)


def _method_names(jobs: list[Job]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(j.method for j in jobs))


# --- the runner ---------------------------------------------------------------------------------


class Runner:
    """The bench's jobs on one executor: every method loaded in each worker before any clock
    runs, each run killed at its hard limit (but inline), and every failure a record."""

    def __init__(self, executor: Executor):
        self.executor = executor
        self.name = executor.name

    def run(self, jobs: list[Job], on_record: OnRecord) -> None:
        """Run every job, calling ``on_record`` with each record as it finishes."""

        def done(i: int, rec: dict | None, error: BaseException | None) -> None:
            on_record(rec if error is None else failure(jobs[i], _why(jobs[i], error, self.name)))

        self.executor.map(
            run_job,
            [(job,) for job in jobs],
            done,
            setup=prepare_worker,
            setup_args=(_method_names(jobs),),
            limits=[hard_limit(job.seconds) for job in jobs],
        )


def make_runner(kind: str, workers: int, address: str | None = None) -> Runner:
    """The bench on the executor named ``kind`` (one of :data:`pipelines.parallel.EXECUTORS`)."""
    return Runner(make_executor(kind, workers, address))
