"""Cores this process may use, and the OpenMP thread cap.

astroscrappy's median filters run under OpenMP (its wheels bundle ``libgomp``) and
use every core by default. When several frames are reduced at once, each worker
gives astroscrappy :func:`threads_per_worker` threads so that workers × threads
never exceeds the cores (an oversubscribed OpenMP team spins and is slower than a
smaller one); :func:`openmp_threads` applies such a cap in the calling thread.

Nothing here runs at import: the OpenMP runtime is looked for (``ctypes``, Linux's
``/proc/self/maps``) only when a cap is applied.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nightlog.errors import ConfigurationError

__all__ = ["available_cores", "openmp_threads", "threads_per_worker"]

_OPENMP_NAME = re.compile(r"lib(?:g|i)?omp[\w.-]*\.(?:so|dylib)")


def available_cores() -> int:
    """Cores this process may run on (affinity-aware where the platform says).

    Returns
    -------
    int
        At least 1.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """OpenMP threads each of ``workers`` concurrent reductions may give astroscrappy.

    The morning reduction that runs ``workers`` frames at once passes the result as
    ``CosmicRaySettings(threads=...)`` so that ``workers × threads ≤ cores``.

    Parameters
    ----------
    workers : int
        Frames reduced concurrently (processes or threads), ≥ 1.
    cores : int, optional
        Cores available; default: :func:`available_cores`.

    Returns
    -------
    int
        ``max(1, cores // workers)``.

    Raises
    ------
    ConfigurationError
        ``workers`` or ``cores`` below 1.
    """
    if workers < 1:
        raise ConfigurationError(f"workers must be at least 1, not {workers}")
    if cores is None:
        cores = available_cores()
    if cores < 1:
        raise ConfigurationError(f"cores must be at least 1, not {cores}")
    return max(1, cores // workers)


def _openmp_runtimes() -> list[ctypes.CDLL]:
    """The OpenMP runtimes loaded in this process, astroscrappy's included.

    astroscrappy's extension is imported first so that its runtime is among them.
    Linux only (read from ``/proc/self/maps``); elsewhere the list is empty and the
    thread count follows ``OMP_NUM_THREADS`` set before the process starts.
    """
    import astroscrappy.utils.median_utils  # noqa: F401  (loads the OpenMP runtime)

    maps = Path("/proc/self/maps")
    if not sys.platform.startswith("linux") or not maps.exists():
        return []
    paths = {line.split()[-1] for line in maps.read_text().splitlines()
             if _OPENMP_NAME.search(line.rsplit("/", 1)[-1])}
    runtimes = []
    for path in sorted(paths):
        try:
            library = ctypes.CDLL(path, mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
        except OSError:
            continue
        if hasattr(library, "omp_set_num_threads") and hasattr(library, "omp_get_max_threads"):
            runtimes.append(library)
    return runtimes


@contextmanager
def openmp_threads(threads: int | None) -> Iterator[int | None]:
    """Cap the OpenMP threads astroscrappy uses in the calling thread, then restore.

    OpenMP's thread count is per calling thread, so each worker thread (or process)
    sets its own cap.

    Parameters
    ----------
    threads : int or None
        The cap, ≥ 1; ``None`` changes nothing.

    Yields
    ------
    int or None
        The previous thread count of the first runtime found, or ``None`` when no
        runtime could be reached (the cap is then not applied).

    Raises
    ------
    ConfigurationError
        ``threads`` below 1.
    """
    if threads is None:
        yield None
        return
    if threads < 1:
        raise ConfigurationError(f"threads must be at least 1, not {threads}")
    runtimes = _openmp_runtimes()
    previous = [int(runtime.omp_get_max_threads()) for runtime in runtimes]
    for runtime in runtimes:
        runtime.omp_set_num_threads(ctypes.c_int(threads))
    try:
        yield previous[0] if previous else None
    finally:
        for runtime, count in zip(runtimes, previous, strict=True):
            runtime.omp_set_num_threads(ctypes.c_int(count))
