"""map_jobs: the same results in this process, in local processes, and on a local Ray instance."""

import importlib.util

import pytest

from pipelines.parallel import ExecutorError, map_jobs

JOBS = [(2, 3), (3, 2), (5, 1)]


def test_local_processes_and_inline_agree():
    seen = []
    assert sorted(map_jobs(pow, JOBS, workers=2, progress=seen.append)) == [5, 8, 9]
    assert sorted(seen) == [5, 8, 9]
    assert map_jobs(pow, JOBS, workers=1) == [8, 9, 5]


def test_bad_executor_or_workers_is_one_line():
    with pytest.raises(ExecutorError, match="unknown executor"):
        map_jobs(pow, JOBS, executor="dask")
    with pytest.raises(ExecutorError, match="workers"):
        map_jobs(pow, JOBS, workers=0)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is an optional extra")
def test_ray_on_a_local_two_cpu_instance():
    assert sorted(map_jobs(pow, JOBS, workers=2, executor="ray")) == [5, 8, 9]
