"""A simulated night of LFC-size science frames reduced on 1 and 2 local workers and on
a 2-worker Dask LocalCluster, in one run, against the ideal measured in the same run.

The night (full-size Palomar LFC frames, 4128 × 2080 uint16, written by the
simulator) is ingested into a fresh SQLite archive and its masters are built; then:

1. one frame's single-threaded reduction time ``t1`` is measured in this process
   (plan, read, reduce, write: the worker's whole job, astroscrappy capped at one
   OpenMP thread; mean of two frames);
2. every science frame is reduced (``run_reduce(force=True)``) with 1 local worker,
   2 local workers and a Dask ``LocalCluster(n_workers=2, threads_per_worker=1)``,
   twice: with Dask's default settings and with the ``DASK_CONFIG`` that
   ``docs/morning.md`` recommends,
   each into its own product folder, timed from the first submission to the last
   record (the local pool's start-up included; the Dask cluster is started after the
   local runs, so that its idle scheduler and workers take no CPU from them, and
   before its own run);
3. the same ``nightlog reduce`` command is run a second time, as a user would, and
   reduces nothing.

The ideal is ``t1 × frames ÷ cores``; efficiency is ideal ÷ wall time (target
≥ 85 % for the 2-worker runs on 2 cores, whose astroscrappy gets
``cores // workers`` threads so no core is oversubscribed; the 1-worker run shows
what astroscrappy's own threads make of the cores). Each
worker reports its peak resident memory after every frame: flat across the night
means the last frame's peak is that of the first.

Run from the repository root (several minutes at full size)::

    python benchmarks/night.py                     # 40 frames
    python benchmarks/night.py --frames 8          # quicker
    python benchmarks/night.py --frames 6 --scale 0.5
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from sqlalchemy import Engine

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Frame
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.executors import DASK_CONFIG
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import ReduceOutcome, run_reduce, science_frames
from nightlog.coordinator.reduce_job import reduce_job
from nightlog.coordinator.reduce_plan import FramePlan, plan_frame
from nightlog.settings import load_settings
from nightlog.simulate import simulate_night
from nightlog.store.layout import ArchiveLayout
from nightlog.threads import available_cores


def _single_frame_seconds(engine: Engine, ctx: JobContext, ids: list[int], scratch: Path
                          ) -> float:
    """Mean wall time of the whole job of a frame, one OpenMP thread, this process."""
    layout = dataclasses.replace(ctx, layout=ArchiveLayout(scratch))
    times = []
    for frame_id in ids[:2]:
        t0 = time.perf_counter()
        with make_sessionmaker(engine)() as s:
            frame = s.get(Frame, frame_id)
            assert frame is not None
            plan = plan_frame(s, frame, layout, force=True, cosmic_threads=1)
        assert isinstance(plan, FramePlan)
        reduce_job(plan.job)
        times.append(time.perf_counter() - t0)
    shutil.rmtree(scratch)
    return statistics.mean(times)


def _memory(outcomes: list[ReduceOutcome]) -> str:
    by_worker: dict[str, list[int]] = defaultdict(list)
    for o in outcomes:
        if o.peak_rss is not None:
            by_worker[o.worker].append(o.peak_rss)
    parts = []
    for worker, peaks in sorted(by_worker.items()):
        first, last = peaks[0] / 2**20, peaks[-1] / 2**20
        half = statistics.median(peaks[: max(1, len(peaks) // 2)]) / 2**20
        parts.append(f"{worker.rsplit(':', 1)[-1]}: {len(peaks)} frames, peak "
                     f"{first:.0f} MiB in the first, median {half:.0f} MiB in the first "
                     f"half, {last:.0f} MiB in the last ({100 * (last - first) / first:+.1f} "
                     f"%); MiB per frame: {' '.join(f'{p / 2**20:.0f}' for p in peaks)}")
    return "\n    ".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40, help="science frames (default 40)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="linear frame size factor (1: full LFC size)")
    parser.add_argument("--out", type=Path, default=None,
                        help="working folder (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    cores = available_cores()
    work = args.out or Path(tempfile.mkdtemp(prefix="nightlog-night-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        _run(work, args.frames, args.scale, cores)
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)


def _run(work: Path, n_frames: int, scale: float, cores: int) -> None:
    t0 = time.perf_counter()
    simulate_night(work / "raw", camera="lfc", scale=scale, seed=7, n_bias=5,
                           n_dark=5, n_flat=5, n_science=n_frames)
    settings = load_settings(env={}, cwd=work)
    engine = create_engine(settings.database_url)
    upgrade(engine)
    run_ingest(engine, discover([work / "raw"], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    ctx = JobContext.from_settings(settings)
    built = [o for o in run_build(engine, ctx) if o.status == "built"]
    with make_sessionmaker(engine)() as s:
        ids = science_frames(s)
        the_night = s.get(Frame, ids[0]).night  # type: ignore[union-attr]
    assert len(ids) == n_frames, (len(ids), n_frames)
    print(f"{n_frames} science frames at scale {scale} simulated, ingested, "
          f"{len(built)} masters built in "
          f"{time.perf_counter() - t0:.0f} s; {cores} cores")

    t1 = _single_frame_seconds(engine, ctx, ids, work / "single")
    print(f"one frame, one thread, this process: {t1:.2f} s")

    import distributed

    rows: list[tuple[str, float, float, list[ReduceOutcome]]] = []
    previous: list[Path] = []

    def reduce_all(name: str, how: dict[str, object]) -> None:
        folder = work / f"products-{len(rows)}"
        mode_ctx = dataclasses.replace(ctx, layout=ArchiveLayout(folder))
        start, cpu_start = time.perf_counter(), time.process_time()
        outcomes = run_reduce(engine, mode_ctx, ids, force=True, **how)  # type: ignore[arg-type]
        wall = time.perf_counter() - start
        coordinator_cpu = time.process_time() - cpu_start
        statuses = {o.status for o in outcomes}
        assert statuses == {"reduced"}, [o.reason for o in outcomes if o.reason]
        ideal = t1 * n_frames / cores
        rows.append((name, wall, ideal / wall, outcomes))
        per_frame = statistics.mean(o.seconds for o in outcomes)
        cpu_per_frame = statistics.mean(o.cpu_seconds for o in outcomes)
        busy = sum(o.seconds for o in outcomes) / (wall * len({o.worker for o in outcomes}))
        print(f"{name:30s} {wall:7.1f} s  efficiency {100 * ideal / wall:5.1f} %  "
              f"(ideal {ideal:.1f} s)\n    a frame's job in a worker: {per_frame:.2f} s "
              f"({per_frame / t1:.2f} × t1), {cpu_per_frame:.2f} s of CPU; workers busy "
              f"{100 * busy:.1f} % of the wall time\n    this process (coordinating; with "
              f"Dask, the scheduler too): {coordinator_cpu:.1f} s of CPU "
              f"({100 * coordinator_cpu / wall:.1f} % of a core)\n"
              f"    memory: {_memory(outcomes)}", flush=True)
        for old in previous:
            shutil.rmtree(old)  # keep the disk: products of the last run stay
        previous[:] = [folder]

    # Local runs first, with no Dask cluster idling beside them.
    reduce_all("1 local worker", {"workers": 1})
    reduce_all("2 local workers", {"workers": 2})
    import dask

    t_cluster = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        t_cluster = time.perf_counter() - t_cluster
        reduce_all("Dask, its default settings", {"scheduler": cluster.scheduler_address})
    # The settings docs/morning.md recommends for a reducing cluster; the worker
    # processes the nannies start inherit them.
    with dask.config.set(DASK_CONFIG), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=":0") as cluster:
        reduce_all("Dask, nightlog's DASK_CONFIG", {"scheduler": cluster.scheduler_address})

    # The same command again, as a user runs it: nothing to do.
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nightlog", "reduce", "--no-build",
                           "--night", the_night.isoformat(), "--workers", "2"],
                          cwd=work, capture_output=True, text=True, check=False)
    second = time.perf_counter() - start
    assert done.returncode == 0, done.stdout + done.stderr
    assert "up-to-date" in done.stdout and "reduced" not in done.stdout, done.stdout

    local2 = rows[1][1]
    print(f"\nDask LocalCluster start-up (not timed above): {t_cluster:.1f} s")
    print(f"\n{'run':30s} {'wall s':>7s} {'efficiency':>10s}")
    for name, wall, eff, _ in rows:
        print(f"{name:30s} {wall:7.1f} {100 * eff:9.1f} %")
    print(f"{'second run (nightlog reduce)':30s} {second:7.1f}   nothing reduced")
    print(f"\nideal = {t1:.2f} s × {n_frames} frames ÷ {cores} cores; target ≥ 85 % "
          f"for 2 workers on {cores} cores")
    for name, wall, _, _ in rows[2:]:
        print(f"{name} / 2 local workers: {wall / local2:.3f} (target ≤ 1.15)")
    engine.dispose()


if __name__ == "__main__":
    main()
