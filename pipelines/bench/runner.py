"""Where runs execute: in worker processes (pebble), on a Ray cluster, or in this process.

An executor takes the planned jobs and hands back one record per job, as each finishes,
through ``on_record``; it never raises for a failed run. Whatever happens to a run (the
method raises, its worker dies, it runs past its hard time limit) becomes a record with a
one-line ``error``, and the bench goes on.

Each worker process loads every method it will run once, before any run's clock starts
(:func:`prepare_worker`), then reuses them; parallelism comes from the workers, so each
runs with one torch thread.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from pipelines.bench.plan import Job
from pipelines.bench.record import clean, failure, one_line

EXECUTORS = ("process", "ray", "inline")
RAY_HINT = 'pip install -e ".[ray]"'
RAY_START_SLACK = 60.0  # a Ray task may first have to start its worker and load its methods

OnRecord = Callable[[dict], None]


class ExecutorError(ValueError):
    """An executor that cannot start here (e.g. Ray is not installed)."""


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


def _timed_out(job: Job) -> dict:
    limit = hard_limit(job.seconds)
    return failure(job, f"ran past the hard limit of {limit:.3g} s (budget {job.seconds:g} s); killed")


def _method_names(jobs: list[Job]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(j.method for j in jobs))


# --- executors ------------------------------------------------------------------------------------


class Executor(Protocol):
    name: str

    def run(self, jobs: list[Job], on_record: OnRecord) -> None:
        """Run every job, calling ``on_record`` with each record as it finishes."""


class InlineExecutor:
    """Runs in this process, one after another: no hard time limit; for debugging."""

    name = "inline"

    def run(self, jobs: list[Job], on_record: OnRecord) -> None:
        if jobs:
            prepare_worker(_method_names(jobs))
        for job in jobs:
            on_record(run_job(job))


class ProcessExecutor:
    """A pebble process pool: ``workers`` fresh interpreters, each run killed at its hard limit.

    A run whose worker dies or is killed is recorded as failed and its worker replaced; the
    other runs go on. Jobs are queued in plan order, so the interleaving holds in time too.
    """

    name = "process"

    def __init__(self, workers: int):
        self.workers = workers

    def run(self, jobs: list[Job], on_record: OnRecord) -> None:
        import multiprocessing as mp
        from concurrent.futures import as_completed

        from pebble import ProcessExpired, ProcessPool

        if not jobs:
            return
        pool = ProcessPool(
            max_workers=min(self.workers, len(jobs)),
            initializer=prepare_worker,
            initargs=(_method_names(jobs),),
            context=mp.get_context("spawn"),  # a fresh interpreter: no inherited torch/OpenMP state
        )
        try:
            futures = {pool.schedule(run_job, args=(j,), timeout=hard_limit(j.seconds)): j for j in jobs}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    rec = future.result()
                except TimeoutError:
                    rec = _timed_out(job)
                except ProcessExpired as err:
                    rec = failure(job, f"worker process died (exit code {err.exitcode})")
                except Exception as err:  # noqa: BLE001 - e.g. a record that cannot be pickled
                    rec = failure(job, one_line(err))
                on_record(rec)
        except BaseException:  # Ctrl-C included: finished runs are on disk; do not wait for the rest
            pool.stop()
            pool.join()
            raise
        pool.close()
        pool.join()


_PREPARED: set[str] = set()


def _ray_job(job: Job, names: tuple[str, ...]) -> dict:
    """A Ray task: load this worker's methods on its first run, then run the job."""
    todo = tuple(n for n in names if n not in _PREPARED)
    if todo:
        prepare_worker(todo)
        _PREPARED.update(todo)
    return run_job(job)


class RayExecutor:
    """Runs spread over a Ray cluster: a local one with ``workers`` CPUs, or the one at ``address``.

    One CPU per run. Ray has no per-task time limit, so no more runs are submitted than the
    cluster has CPUs, and a run still going at its hard limit (plus time to start a worker)
    is cancelled and recorded as failed. Every node must have the project installed.
    """

    name = "ray"

    def __init__(self, workers: int, address: str | None = None):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ExecutorError(f"--executor ray needs Ray: {RAY_HINT}") from None
        self.workers = workers
        self.address = address

    def _init(self) -> bool:
        """Start a local instance or join a cluster; True when this call started or joined one."""
        import ray

        if ray.is_initialized():
            return False
        kwargs = dict(
            include_dashboard=False,
            log_to_driver=False,  # the bench's console is its progress and summary
            logging_level=logging.ERROR,
            configure_logging=True,
        )
        address = self.address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, **kwargs)
        else:  # a local instance: its workers import this checkout, as this process does
            root = str(Path(__file__).resolve().parents[2])
            path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
            ray.init(num_cpus=self.workers, runtime_env={"env_vars": {"PYTHONPATH": path}}, **kwargs)
        return True

    def run(self, jobs: list[Job], on_record: OnRecord) -> None:
        import ray

        if not jobs:
            return
        started = self._init()
        inflight: dict = {}  # object ref -> (job, deadline)
        try:
            remote = ray.remote(num_cpus=1, max_retries=0)(_ray_job)
            capacity = max(1, int(ray.cluster_resources().get("CPU", self.workers)))
            names = _method_names(jobs)
            pending = deque(jobs)
            while pending or inflight:
                while pending and len(inflight) < capacity:
                    job = pending.popleft()
                    deadline = time.monotonic() + hard_limit(job.seconds) + RAY_START_SLACK
                    inflight[remote.remote(job, names)] = (job, deadline)
                first = min(d for _, d in inflight.values())
                wait = min(5.0, max(0.05, first - time.monotonic()))
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=wait)
                for ref in ready:
                    job, _ = inflight.pop(ref)
                    try:
                        rec = ray.get(ref)
                    except Exception as err:  # noqa: BLE001 - a crashed worker, a lost node
                        rec = failure(job, f"ray: {one_line(err)}")
                    on_record(rec)
                now = time.monotonic()
                for ref, (job, deadline) in list(inflight.items()):
                    if now > deadline:
                        ray.cancel(ref, force=True)
                        del inflight[ref]
                        on_record(_timed_out(job))
        except BaseException:
            for ref in inflight:
                ray.cancel(ref, force=True)
            raise
        finally:
            if started:
                ray.shutdown()


def make_executor(kind: str, workers: int, address: str | None = None) -> Executor:
    """The executor named ``kind`` (one of EXECUTORS)."""
    if kind == "process":
        return ProcessExecutor(workers)
    if kind == "ray":
        return RayExecutor(workers, address)
    if kind == "inline":
        return InlineExecutor()
    raise ExecutorError(f"unknown executor {kind!r}; executors: {', '.join(EXECUTORS)}")
