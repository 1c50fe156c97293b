"""Run independent jobs in parallel: in this process, in local processes, or on a Ray cluster.

Trace generation is embarrassingly parallel (one job per shard), and it is where users
outgrow one machine, so the same call spreads jobs over a Ray cluster with
``executor="ray"`` (``pip install -e ".[ray]"``; ``ray.init`` joins the cluster named by
``RAY_ADDRESS``, or starts a local one).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

EXECUTORS = ("local", "ray")


class ParallelError(ValueError):
    """An executor that cannot be used as asked."""


def _single_thread() -> None:
    """Each worker process uses one torch thread: the workers are the parallelism."""
    import torch

    torch.set_num_threads(1)


def map_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[tuple],
    workers: int = 1,
    executor: str = "local",
    progress: Callable[[Any], None] | None = None,
) -> list[Any]:
    """``[fn(*job) for job in jobs]``, in completion order; ``progress`` sees each result."""
    if executor not in EXECUTORS:
        raise ParallelError(f"unknown executor {executor!r}; executors: {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ParallelError(f"workers must be at least 1, got {workers}")
    results: list[Any] = []

    def done(result: Any) -> None:
        results.append(result)
        if progress is not None:
            progress(result)

    if executor == "ray":
        _map_ray(fn, jobs, workers, done)
    elif workers == 1 or len(jobs) <= 1:
        for job in jobs:
            done(fn(*job))
    else:
        # forkserver: a worker forked from a parent whose autograd has started its device
        # threads (a GPU fit in ``induce improve``) cannot run autograd itself
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(max_workers=workers, initializer=_single_thread, mp_context=context) as pool:
            for fut in as_completed([pool.submit(fn, *job) for job in jobs]):
                done(fut.result())
    return results


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on a Ray worker (any picklable callable, builtins included)."""
    _single_thread()
    return fn(*args)


def _map_ray(
    fn: Callable[..., Any], jobs: Sequence[tuple], workers: int, done: Callable[[Any], None]
) -> None:
    try:
        import ray
    except ImportError:
        raise ParallelError('--executor ray needs Ray: pip install -e ".[ray]"') from None
    started = not ray.is_initialized()
    if started:
        address = os.environ.get("RAY_ADDRESS")
        ray.init(address=address, num_cpus=None if address else workers, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(_call)
        pending = [remote.remote(fn, *job) for job in jobs]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            done(ray.get(ready[0]))
    finally:
        if started:
            ray.shutdown()
