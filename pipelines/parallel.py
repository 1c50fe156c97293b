"""Run independent jobs in parallel: in this process, in worker processes, or on a Ray cluster.

Trace generation, ``induce improve``'s held-out runs and the bench all hand out independent
jobs, and the bench is where users outgrow one machine, so they share these executors and
one Ray start (``pip install -e ".[ray]"``; Ray joins the cluster named by ``RAY_ADDRESS``
or ``--ray-address``, or starts a local one). An executor never raises for a failed job: it
hands each job's result, or what stopped it, to ``done``: the job's own exception, a
:class:`TimeoutError` past its time limit, or :class:`WorkerLost`. :func:`map_jobs` raises
that error; the bench records it and goes on.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

EXECUTORS = ("process", "ray", "inline")
RAY_HINT = 'pip install -e ".[ray]"'
RAY_START_SLACK = 60.0  # a Ray task may first have to start its worker and run its setup

# job index, its result (None on failure), what stopped it (None on success)
Done = Callable[[int, Any, BaseException | None], None]


class ExecutorError(ValueError):
    """An executor that cannot be used as asked (an unknown name, Ray not installed)."""


class WorkerLost(RuntimeError):
    """A job whose worker process died before it handed back a result."""


def single_thread() -> None:
    """Each worker process uses one torch thread: the workers are the parallelism."""
    import torch

    torch.set_num_threads(1)


class Executor(Protocol):
    name: str

    def map(
        self,
        fn: Callable[..., Any],
        jobs: Sequence[tuple],
        done: Done,
        setup: Callable[..., None] | None = None,
        setup_args: tuple = (),
        limits: Sequence[float] | None = None,
    ) -> None:
        """``fn(*job)`` for every job, each outcome to ``done`` as it finishes; ``setup(*setup_args)``
        runs once in each worker before its first job, and ``limits`` are wall seconds per job."""


class InlineExecutor:
    """One job after another in this process, with no time limit."""

    name = "inline"

    def map(self, fn, jobs, done, setup=None, setup_args=(), limits=None) -> None:
        if jobs and setup is not None:
            setup(*setup_args)
        for i, job in enumerate(jobs):
            try:
                result = fn(*job)
            except Exception as err:  # noqa: BLE001 - handed to ``done``, which decides
                done(i, None, err)
                continue
            done(i, result, None)


class ProcessExecutor:
    """A pebble pool of ``workers`` fresh interpreters; a job past its limit is killed with its
    worker, a worker that dies takes only its own job, and a fresh one replaces it. Jobs are
    queued in order, so an interleaved plan stays interleaved in time."""

    name = "process"

    def __init__(self, workers: int):
        self.workers = workers

    def map(self, fn, jobs, done, setup=None, setup_args=(), limits=None) -> None:
        import multiprocessing as mp
        from concurrent.futures import as_completed

        from pebble import ProcessExpired, ProcessPool

        if not jobs:
            return
        limits = limits or [None] * len(jobs)
        # spawn: a fresh interpreter, with no torch/OpenMP state and no autograd device
        # threads inherited from a parent that has run a fit (``induce improve``)
        pool = ProcessPool(
            max_workers=min(self.workers, len(jobs)),
            initializer=setup,
            initargs=setup_args,
            context=mp.get_context("spawn"),
        )
        try:
            futures = {
                pool.schedule(fn, args=job, timeout=t): i for i, (job, t) in enumerate(zip(jobs, limits))
            }
            for future in as_completed(futures):
                i = futures[future]
                try:
                    result = future.result()
                except ProcessExpired as err:
                    done(i, None, WorkerLost(f"worker process died (exit code {err.exitcode})"))
                except Exception as err:  # noqa: BLE001 - the job's own, a TimeoutError, a pickling error
                    done(i, None, err)
                else:
                    done(i, result, None)
        except BaseException:  # Ctrl-C or ``done`` raising: do not wait for the other jobs
            pool.stop()
            pool.join()
            raise
        pool.close()
        pool.join()


_READY: set = set()  # the (setup, setup_args) this Ray worker process has run


def _ray_call(
    fn: Callable[..., Any], job: tuple, setup: Callable[..., None] | None, setup_args: tuple
) -> Any:
    """A Ray task: the worker's setup on its first job, then the job."""
    if setup is not None and (setup, setup_args) not in _READY:
        setup(*setup_args)
        _READY.add((setup, setup_args))
    return fn(*job)


def import_ray() -> Any:
    """The ``ray`` module, or a one-line ExecutorError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ExecutorError(f"--executor ray needs Ray: {RAY_HINT}") from None
    return ray


@contextmanager
def ray_running(workers: int, address: str | None = None) -> Iterator[Any]:
    """Ray for the block: the running instance, else the cluster at ``address`` (or
    ``RAY_ADDRESS``), else a local instance with ``workers`` CPUs; shut down after the block
    when this call started it."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    kwargs = dict(
        include_dashboard=False,
        log_to_driver=False,  # the callers' consoles are their own progress lines
        logging_level=logging.ERROR,
        configure_logging=True,
    )
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, **kwargs)
    else:  # a local instance: its workers import this checkout, as this process does
        root = str(Path(__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        ray.init(num_cpus=workers, runtime_env={"env_vars": {"PYTHONPATH": path}}, **kwargs)
    try:
        yield ray
    finally:
        ray.shutdown()


class RayExecutor:
    """Jobs spread over a Ray cluster, one CPU each (every node must have the project installed).

    Ray has no per-task time limit, so no more jobs are submitted than the cluster has CPUs,
    and a job still going at its limit (plus time to start a worker) is cancelled.
    """

    name = "ray"

    def __init__(self, workers: int, address: str | None = None):
        import_ray()  # fail here, before any work, when Ray is missing
        self.workers = workers
        self.address = address

    def map(self, fn, jobs, done, setup=None, setup_args=(), limits=None) -> None:
        if not jobs:
            return
        limits = limits or [None] * len(jobs)
        with ray_running(self.workers, self.address) as ray:
            inflight: dict = {}  # object ref -> (job index, deadline)
            try:
                remote = ray.remote(num_cpus=1, max_retries=0)(_ray_call)
                capacity = max(1, int(ray.cluster_resources().get("CPU", self.workers)))
                pending = deque(range(len(jobs)))
                while pending or inflight:
                    while pending and len(inflight) < capacity:
                        i = pending.popleft()
                        limit = limits[i]
                        deadline = (
                            float("inf") if limit is None else time.monotonic() + limit + RAY_START_SLACK
                        )
                        inflight[remote.remote(fn, jobs[i], setup, setup_args)] = (i, deadline)
                    first = min(d for _, d in inflight.values())
                    wait = min(5.0, max(0.05, first - time.monotonic()))
                    ready, _ = ray.wait(list(inflight), num_returns=1, timeout=wait)
                    for ref in ready:
                        i, _ = inflight.pop(ref)
                        try:
                            result = ray.get(ref)
                        except Exception as err:  # noqa: BLE001 - the job's own, a crashed worker, a lost node
                            done(i, None, err)
                        else:
                            done(i, result, None)
                    now = time.monotonic()
                    for ref, (i, deadline) in list(inflight.items()):
                        if now > deadline:
                            ray.cancel(ref, force=True)
                            del inflight[ref]
                            done(i, None, TimeoutError(f"ran past its limit of {limits[i]:.3g} s"))
            except BaseException:
                for ref in inflight:
                    ray.cancel(ref, force=True)
                raise


def make_executor(kind: str, workers: int, address: str | None = None) -> Executor:
    """The executor named ``kind`` (one of EXECUTORS); ``address`` is a Ray cluster's."""
    if kind not in EXECUTORS:
        raise ExecutorError(f"unknown executor {kind!r}; executors: {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ExecutorError(f"workers must be at least 1, got {workers}")
    if kind == "process":
        return ProcessExecutor(workers)
    if kind == "ray":
        return RayExecutor(workers, address)
    return InlineExecutor()


def map_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[tuple],
    workers: int = 1,
    executor: str = "local",
    progress: Callable[[Any], None] | None = None,
) -> list[Any]:
    """``[fn(*job) for job in jobs]``, in completion order; ``progress`` sees each result, and
    a job's error is raised. ``executor`` is ``local`` (this process for one worker or one job,
    else worker processes) or ``ray``."""
    if executor not in ("local", "ray"):
        raise ExecutorError(f"unknown executor {executor!r}; executors: local, ray")
    kind = "ray" if executor == "ray" else "process" if workers > 1 and len(jobs) > 1 else "inline"
    runner = make_executor(kind, workers)
    results: list[Any] = []

    def done(_: int, result: Any, error: BaseException | None) -> None:
        if error is not None:
            raise error
        results.append(result)
        if progress is not None:
            progress(result)

    runner.map(fn, jobs, done, setup=None if kind == "inline" else single_thread)
    return results
