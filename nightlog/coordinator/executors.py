"""Where reduction jobs run: in this process, in local worker processes, or on Dask.

The coordinating process submits jobs and collects what finished, one at a time;
it never hands a worker a database connection. Three implementations of
:class:`FrameExecutor`:

- :class:`InProcessExecutor`: one worker, this process (no start-up cost, the
  same behaviour as a plain loop);
- :class:`LocalExecutor`: a :class:`concurrent.futures.ProcessPoolExecutor` of
  freshly spawned processes (never forked from a process holding database
  connections), all started when the executor opens; workers ignore Ctrl-C so
  the coordinating process decides what an interruption means;
- :class:`DaskExecutor`: a ``distributed.Client`` connected to a scheduler; the
  workers read and write the archive on a shared file system. Dask is imported
  only here, when a scheduler is given.

Each gives its jobs a thread count (:attr:`FrameExecutor.threads`: the cosmic-ray
detection's bands of the frame, or astroscrappy's OpenMP team) so that frames
reduced at once never oversubscribe a machine's cores: ``max(1, cores // workers)``
per host; a lone worker in this process uses every core.

A worker that dies (killed, out of memory) shows up as the job's exception
(:class:`WorkerLost`) like any other failure; the caller decides on retries.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import logging
import multiprocessing
import os
import signal
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from nightlog.errors import ConfigurationError, NightlogError
from nightlog.process_memory import keep_freed_memory
from nightlog.threads import available_cores

__all__ = ["DASK_CONFIG", "JOB_MODULES", "MALLOC_TRIM", "DaskExecutor", "FrameExecutor",
           "InProcessExecutor", "LocalExecutor", "WorkerLost", "dask_settings_advice",
           "open_executor"]

Work = Callable[[Any], Any]
log = logging.getLogger("nightlog.reduce")

#: Dask settings recommended for a cluster that reduces frames (``docs/morning.md``):
#: a frame is a task of seconds, so the workers' statistical profiler (a stack
#: sample every 10 ms) and the 20 ms event-loop watchdog of every Dask process cost
#: CPU for nothing: on a 2-core machine an idle 2-worker ``LocalCluster`` took 18 %
#: of a core with Dask's defaults and 6 % with these (``benchmarks/night.py``).
#: Dask's nanny also starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which
#: turns off glibc's adaptive mmap threshold: every array over 128 KiB becomes a
#: fresh ``mmap`` whose pages are faulted in again. A master build, which combines
#: in tiles, took ten times the page faults and twice the wall time so
#: (``benchmarks/night.py``); ``None`` leaves the variable unset.
DASK_CONFIG: dict[str, object] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}

#: The environment variable Dask's nanny sets on its workers that :data:`DASK_CONFIG`
#: leaves unset.
MALLOC_TRIM = "MALLOC_TRIM_THRESHOLD_"


class WorkerLost(NightlogError):
    """The process running a job died before returning (killed, crashed, lost).

    ``shared`` is true when the loss cannot be pinned on this job: a local pool
    whose one process died fails every job it held. The caller then runs those
    jobs again one at a time, so that the next loss names its job.
    """

    def __init__(self, message: str, *, shared: bool = False) -> None:
        super().__init__(message)
        self.shared = shared


class FrameExecutor(ABC):
    """Runs jobs somewhere; the coordinating process submits and collects.

    Attributes
    ----------
    workers : int
        Jobs that run at once; the caller keeps about that many in flight.
    threads : int
        Threads each job's cosmic-ray detection may use (``workers × threads ≤ cores``
        per host).
    host_cores : int
        Cores of the smallest host a job may run on: no job is given more threads.
    description : str
        Where the jobs run, for summaries.
    """

    workers: int
    threads: int
    host_cores: int
    description: str

    @abstractmethod
    def submit(self, fn: Work, job: Any) -> int:
        """Start ``fn(job)``; return a token naming it."""

    @abstractmethod
    def wait(self) -> list[tuple[int, Any, BaseException | None]]:
        """Block until at least one job finished; return ``(token, result, error)``
        of every finished one (``error`` set, ``result`` None, when it failed)."""

    @abstractmethod
    def close(self, *, abandon: bool = False) -> None:
        """Release the workers; ``abandon`` cancels what is queued or running."""

    def __enter__(self) -> FrameExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(abandon=exc[0] is not None)


class InProcessExecutor(FrameExecutor):
    """One job at a time, run in this process when collected (which from then on
    reuses the memory it frees: :func:`~nightlog.process_memory.keep_freed_memory`)."""

    def __init__(self, threads: int | None = None) -> None:
        keep_freed_memory()
        self.workers = 1
        self.threads = threads or available_cores()
        self.host_cores = self.threads
        self.description = "this process"
        self._queued: dict[int, tuple[Work, Any]] = {}
        self._next = 0

    def submit(self, fn: Work, job: Any) -> int:
        self._next += 1
        self._queued[self._next] = (fn, job)
        return self._next

    def wait(self) -> list[tuple[int, Any, BaseException | None]]:
        token = min(self._queued)
        fn, job = self._queued.pop(token)
        try:
            return [(token, fn(job), None)]
        except Exception as exc:
            return [(token, None, exc)]

    def close(self, *, abandon: bool = False) -> None:
        self._queued.clear()


#: The modules of nightlog's jobs, which a local worker imports as it starts.
JOB_MODULES = ("nightlog.coordinator.master_job", "nightlog.coordinator.reduce_job")


def _start_worker(modules: tuple[str, ...]) -> None:
    """A local worker's start: Ctrl-C ignored, freed memory kept for the next job
    (:func:`~nightlog.process_memory.keep_freed_memory`), the jobs' modules imported."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_freed_memory()
    for name in modules:
        importlib.import_module(name)


def _started() -> int:
    """Nothing: a task that makes the pool start one more worker."""
    return os.getpid()


class LocalExecutor(FrameExecutor):
    """``workers`` spawned processes of this machine.

    A process that dies breaks the whole pool (every job in flight fails with
    :class:`WorkerLost`); the next submission starts a new pool.

    Every worker is started, and imports ``modules`` (default :data:`JOB_MODULES`),
    when the pool is made: Python's pool otherwise starts a process only when a
    job finds none idle, so the morning's second worker would start (a Python,
    numpy and astropy start-up of seconds of CPU) in the middle of the first kind
    with two groups, beside that kind's builds, and delay them.
    """

    def __init__(self, workers: int, cores: int | None = None, *,
                 modules: tuple[str, ...] = JOB_MODULES) -> None:
        if workers < 1:
            raise ConfigurationError(f"workers must be at least 1, not {workers}")
        self.workers = workers
        self.host_cores = cores or available_cores()
        self.threads = max(1, self.host_cores // workers)
        self.description = f"{workers} local process{'es' if workers > 1 else ''}"
        self._modules = modules
        self._pool = self._new_pool()
        self._generation = 0  # pools started so far, minus one
        self._futures: dict[cf.Future[Any], tuple[int, int]] = {}  # token, generation
        self._lost_together: dict[int, int] = {}  # generation -> jobs its break failed
        self._next = 0

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        pool = cf.ProcessPoolExecutor(max_workers=self.workers,
                                      mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_start_worker, initargs=(self._modules,))
        # No worker is idle at once: each submission here starts one more.
        for _ in range(self.workers):
            pool.submit(_started)
        return pool

    def submit(self, fn: Work, job: Any) -> int:
        try:
            future = self._pool.submit(fn, job)
        except BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            self._generation += 1
            future = self._pool.submit(fn, job)
        self._next += 1
        self._futures[future] = (self._next, self._generation)
        return self._next

    def _broken_together(self, generation: int) -> int:
        """Jobs the break of pool ``generation`` failed (counted once, at the first)."""
        if generation not in self._lost_together:
            self._lost_together[generation] = sum(
                1 for f, (_, g) in self._futures.items()
                if g == generation and (not f.done()
                                        or isinstance(f.exception(), BrokenProcessPool)))
        return self._lost_together[generation]

    def wait(self) -> list[tuple[int, Any, BaseException | None]]:
        done, _ = cf.wait(list(self._futures), return_when=cf.FIRST_COMPLETED)
        finished: list[tuple[int, Any, BaseException | None]] = []
        for future in done:
            error = future.exception()
            if isinstance(error, BrokenProcessPool):
                together = self._broken_together(self._futures[future][1])
                error = WorkerLost(f"a worker process died: {error}", shared=together > 1)
            token, _ = self._futures.pop(future)
            finished.append((token, None if error else future.result(), error))
        return sorted(finished, key=lambda item: item[0])

    def close(self, *, abandon: bool = False) -> None:
        if abandon:
            # Jobs already running in a worker would otherwise hold the exit.
            for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=abandon)
        self._futures.clear()


class DaskExecutor(FrameExecutor):
    """Jobs on the workers of a Dask distributed scheduler at ``address``.

    Every worker thread runs one job; the OpenMP cap is the smallest, over the
    cluster's hosts, of the host's cores divided by the worker threads on it.
    Dask itself reschedules a task whose worker died (up to its
    ``distributed.scheduler.allowed-failures``) before reporting it lost.
    """

    def __init__(self, address: str, *, timeout: float = 30.0) -> None:
        try:
            distributed: Any = importlib.import_module("distributed")
        except ImportError as exc:
            raise ConfigurationError(
                "a Dask scheduler was given but dask.distributed is not installed: "
                "pip install 'nightlog[dask]'") from exc
        try:
            self._client: Any = distributed.Client(address, timeout=timeout,
                                              set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConfigurationError(f"cannot reach the Dask scheduler at {address}: {exc}"
                                     ) from exc
        info = self._client.scheduler_info()["workers"]
        if not info:
            self._client.close()
            raise ConfigurationError(f"the Dask scheduler at {address} has no workers")
        threads_on: dict[str, int] = {}
        for worker in info.values():
            threads_on[worker["host"]] = threads_on.get(worker["host"], 0) + worker["nthreads"]
        cores_on: dict[str, int] = {}
        for address_of_worker, cores in self._client.run(available_cores).items():
            host = info[address_of_worker]["host"]
            cores_on[host] = min(cores, cores_on.get(host, cores))
        # Its workers, like local ones, reuse the memory they free: every frame's
        # blocks otherwise come back as fresh pages (keep_freed_memory).
        self._client.run(keep_freed_memory)
        advice = dask_settings_advice(self._client.run(_dask_settings).values())
        if advice:
            log.warning("the Dask cluster at %s: %s", address, advice,
                        extra={"event": "dask-settings"})
        self.workers = sum(threads_on.values())
        self.threads = max(1, min(cores_on.get(host, 1) // n for host, n in threads_on.items()))
        self.host_cores = max(1, min(cores_on.get(host, 1) for host in threads_on))
        self.description = f"Dask at {address} ({self.workers} worker threads)"
        self._futures: dict[Any, int] = {}
        self._completed = distributed.as_completed(loop=self._client.loop)
        self._next = 0

    def submit(self, fn: Work, job: Any) -> int:
        future = self._client.submit(fn, job, pure=False)  # a retry is a new task
        self._next += 1
        self._futures[future] = self._next
        self._completed.add(future)
        return self._next

    def wait(self) -> list[tuple[int, Any, BaseException | None]]:
        done = [next(self._completed), *self._completed.next_batch(block=False)]
        finished: list[tuple[int, Any, BaseException | None]] = []
        for future in done:
            token = self._futures.pop(future)
            if future.status == "finished":
                try:
                    finished.append((token, future.result(), None))
                except Exception as exc:  # result lost with its worker
                    finished.append((token, None, WorkerLost(f"{type(exc).__name__}: {exc}")))
                continue
            try:
                error = future.exception()
            except Exception as exc:  # the exception itself could not be fetched
                error = exc
            if type(error).__name__ in ("KilledWorker", "CommClosedError", "CancelledError"):
                error = WorkerLost(f"{type(error).__name__}: {error}")
            finished.append((token, None, error))
        return sorted(finished, key=lambda item: item[0])

    def close(self, *, abandon: bool = False) -> None:
        if abandon and self._futures:
            self._client.cancel(list(self._futures))
        self._futures.clear()
        if self._client.status not in ("closing", "closed"):
            self._client.close()


def _dask_settings() -> dict[str, object]:
    """This Dask process's value of each :data:`DASK_CONFIG` setting, and its
    :data:`MALLOC_TRIM` environment variable (run on workers)."""
    dask: Any = importlib.import_module("dask")
    values: dict[str, object] = {key: dask.config.get(key, None) for key in DASK_CONFIG}
    values[MALLOC_TRIM] = os.environ.get(MALLOC_TRIM)
    return values


def dask_settings_advice(workers: Iterable[Mapping[str, object]]) -> str:
    """What to change in the workers' Dask settings (``""``: nothing), given each
    worker's values of the :data:`DASK_CONFIG` settings."""
    profiling = sum(1 for w in workers if w.get("distributed.worker.profile.enabled")
                    is not False)
    ticking = sum(1 for w in workers
                  if _seconds(w.get("distributed.admin.tick.interval")) < 0.5)
    trimming = sum(1 for w in workers if w.get(MALLOC_TRIM) is not None)
    if not profiling and not ticking and not trimming:
        return ""
    parts = [f"{profiling} worker(s) run Dask's statistical profiler"] if profiling else []
    if ticking:
        parts.append(f"{ticking} check their event loop more often than every 0.5 s")
    if trimming:
        parts.append(f"{trimming} run with {MALLOC_TRIM} set (every large array a "
                     "fresh mmap: a master build twice as slow)")
    return (f"{' and '.join(parts)}, which costs CPU for nothing on tasks of seconds; "
            "see 'Dask settings for a reducing cluster' in docs/morning.md")


def _seconds(value: object) -> float:
    if isinstance(value, int | float):
        return float(value)
    try:
        dask_utils: Any = importlib.import_module("dask.utils")
        return float(dask_utils.parse_timedelta(value, default="ms"))
    except (ImportError, TypeError, ValueError, KeyError):
        return 1.0  # unknown: say nothing


def open_executor(workers: int = 1, scheduler: str | None = None, *,
                  threads: int | None = None) -> FrameExecutor:
    """The executor for ``workers`` local processes, or Dask when ``scheduler`` is given.

    ``workers == 1`` without a scheduler runs in this process; ``threads``
    overrides the OpenMP cap.
    """
    executor: FrameExecutor
    if scheduler:
        executor = DaskExecutor(scheduler)
    elif workers == 1:
        executor = InProcessExecutor()
    else:
        executor = LocalExecutor(workers)
    if threads is not None:
        executor.threads = threads
    return executor
