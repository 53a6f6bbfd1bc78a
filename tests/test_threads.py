"""Cores this process may use and the OpenMP thread cap: never oversubscribed, applied
and restored."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nightlog.errors import ConfigurationError
from nightlog.threads import available_cores, openmp_threads, threads_per_worker


def test_available_cores_are_those_this_process_may_run_on() -> None:
    cores = available_cores()
    assert cores >= 1
    if hasattr(os, "sched_getaffinity"):
        assert cores == len(os.sched_getaffinity(0))
    assert threads_per_worker(1) == cores


@given(workers=st.integers(1, 64), cores=st.integers(1, 64))
def test_workers_times_threads_never_oversubscribe(workers: int, cores: int) -> None:
    threads = threads_per_worker(workers, cores)
    assert threads >= 1
    if workers <= cores:
        assert workers * threads <= cores
        # and no core is left idle that a whole extra thread per worker could use
        assert workers * (threads + 1) > cores
    else:
        assert threads == 1


def test_threads_per_worker_defaults_to_this_machine_and_rejects_nonsense() -> None:
    assert threads_per_worker(1) >= 1
    with pytest.raises(ConfigurationError):
        threads_per_worker(0)
    with pytest.raises(ConfigurationError):
        threads_per_worker(2, cores=0)


def test_openmp_cap_applies_and_is_restored() -> None:
    with openmp_threads(1) as before:
        assert before is not None  # astroscrappy's wheels bundle an OpenMP runtime
        with openmp_threads(3) as inner:
            assert inner == 1
        with openmp_threads(2) as restored:
            assert restored == 1
    with openmp_threads(1) as after:
        assert after == before
    with openmp_threads(None) as untouched:
        assert untouched is None
