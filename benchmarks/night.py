"""The morning of a simulated night, masters and science frames, on 1 and 2 local
workers and on a 2-worker Dask LocalCluster, in one run, against the ideal measured in
the same run.

The night (full-size Palomar LFC frames, 4128 × 2080 uint16, written by the
simulator) is ingested once into a SQLite catalogue; each run starts from its own
copy of that catalogue (no master yet) and does the whole morning on one set of
workers, as ``nightlog reduce`` does: the due masters built (biases, then darks,
then flats; the groups of a kind at once), then every science frame reduced, each
run into its own archive folder. The runs:

1. ``1 local worker, one thread``: in this process, every job on one thread
   (``open_executor(workers=1, threads=1)``: the master builds' tiles and the
   cosmic-ray detection alike), the reference: every master's build time is the
   serial work of that build, and every product is what the other runs are
   checked against, pixel for pixel;
2. one frame's single-threaded reduction time ``t1`` is measured in this process
   (plan, read, reduce, write: the worker's whole job, astroscrappy capped at one
   OpenMP thread; mean of two frames);
3. 2 local workers, then a Dask ``LocalCluster(n_workers=2, threads_per_worker=1)``
   with Dask's default settings, then one with the ``DASK_CONFIG`` that
   ``docs/morning.md`` recommends (the local runs first, so that no idle Dask
   process takes CPU from them);
4. the same ``nightlog reduce`` command is run a second time, as a user would, and
   reduces nothing.

The ideal is the serial work ÷ cores: the master builds' single-threaded times in
the reference run plus ``t1 × frames``, divided by the cores; efficiency is ideal ÷
wall (target ≥ 90 % for 2 workers on 2 cores). The reference builds on one thread
because a lone worker in this process otherwise gives each build every core: its
build wall times were then less than their work (CPU above wall), and an ideal
that added them asked two workers for more than two cores' worth. Biases must be
built before darks and darks before flats, so a kind with one group leaves a
worker without a group of its own (that build is then given both cores): the
bound that order allows with single-threaded builds (per kind, the larger of its
work ÷ cores and its longest group) is printed beside it. The machine's load
average and core count are printed before and after each run, and the CPU time of
every job, since a shared machine's wall time says little alone. Each worker
reports its peak resident memory per job; Dask's peak worker memory is printed.

Run from the repository root (about 30 min at full size with 40 frames)::

    python benchmarks/night.py                     # 40 frames
    python benchmarks/night.py --frames 8          # quicker
    python benchmarks/night.py --frames 6 --scale 0.5
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
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

import numpy as np
from astropy.io import fits
from sqlalchemy import Engine, select

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Frame, Master, Product
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.executors import DASK_CONFIG, MALLOC_TRIM, open_executor
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.masters import BuildOutcome, run_build
from nightlog.coordinator.reduce import ReduceOutcome, run_reduce, science_frames
from nightlog.coordinator.reduce_job import reduce_job
from nightlog.coordinator.reduce_plan import FramePlan, plan_frame
from nightlog.settings import load_settings
from nightlog.simulate import simulate_night
from nightlog.states import BuildStatus
from nightlog.store.layout import ArchiveLayout
from nightlog.threads import available_cores


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f} (1 min) {five:.1f} (5 min) on {os.cpu_count()} cores"


def _single_frame_seconds(engine: Engine, ctx: JobContext, ids: list[int], scratch: Path
                          ) -> tuple[float, float]:
    """Mean wall and CPU time of the whole job of a frame, one OpenMP thread, here."""
    layout = dataclasses.replace(ctx, layout=ArchiveLayout(scratch))
    times, cpus = [], []
    for frame_id in ids[:2]:
        t0, c0 = time.perf_counter(), time.process_time()
        with make_sessionmaker(engine)() as s:
            frame = s.get(Frame, frame_id)
            assert frame is not None
            plan = plan_frame(s, frame, layout, force=True, cosmic_threads=1)
        assert isinstance(plan, FramePlan)
        reduce_job(plan.job)
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    shutil.rmtree(scratch)
    return statistics.mean(times), statistics.mean(cpus)


def _memory(outcomes: list[ReduceOutcome]) -> str:
    by_worker: dict[str, list[int]] = defaultdict(list)
    for o in outcomes:
        if o.peak_rss is not None:
            by_worker[o.worker].append(o.peak_rss)
    parts = []
    for worker, peaks in sorted(by_worker.items()):
        first, last = peaks[0] / 2**20, peaks[-1] / 2**20
        parts.append(f"{worker.rsplit(':', 1)[-1]}: {len(peaks)} frames, peak "
                     f"{first:.0f} MiB in the first, {last:.0f} MiB in the last "
                     f"({100 * (last - first) / first:+.1f} %), highest "
                     f"{max(peaks) / 2**20:.0f} MiB")
    return "\n    ".join(parts)


@dataclasses.dataclass
class Morning:
    """One run: its masters, its frames, its times."""

    name: str
    builds: list[BuildOutcome]
    outcomes: list[ReduceOutcome]
    wall_masters: float
    wall: float
    engine: Engine

    def pixels(self) -> dict[tuple[str, object], Path]:
        """Master files by group key and night, product files by frame id."""
        with make_sessionmaker(self.engine)() as s:
            files: dict[tuple[str, object], Path] = {
                ("master", (m.group_key, m.night)): Path(m.path)
                for m in s.scalars(select(Master))}
            files.update((("product", p.frame_id), Path(p.path)) for p in s.scalars(
                select(Product).where(Product.status == "current")))
        return files


def _differences(run: Morning, reference: Morning) -> tuple[int, float]:
    """Files compared and the largest relative difference of their pixels."""
    mine, theirs = run.pixels(), reference.pixels()
    assert set(mine) == set(theirs), set(mine) ^ set(theirs)
    worst = 0.0
    for key, path in mine.items():
        a = np.asarray(fits.getdata(path), dtype=np.float64)
        b = np.asarray(fits.getdata(theirs[key]), dtype=np.float64)
        scale = np.maximum(np.abs(b), 1e-12)
        worst = max(worst, float(np.nanmax(np.abs(a - b) / scale)))
        assert np.array_equal(np.isnan(a), np.isnan(b)), key
    return len(mine), worst


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


def _morning(name: str, base: Path, work: Path, ctx: JobContext, ids: list[int],
             how: dict[str, object]) -> Morning:
    """The whole morning on one set of workers, from a copy of the catalogue."""
    index = len(list(work.glob("catalogue-*.sqlite")))
    db = work / f"catalogue-{index}.sqlite"
    shutil.copyfile(base, db)
    engine = create_engine(f"sqlite:///{db}")
    mode_ctx = dataclasses.replace(ctx, layout=ArchiveLayout(work / f"archive-{index}"))
    print(f"{name}: {_load()} before", flush=True)
    start = time.perf_counter()
    with open_executor(**how) as executor:  # type: ignore[arg-type]
        builds = run_build(engine, mode_ctx, executor=executor)
        wall_masters = time.perf_counter() - start
        outcomes = run_reduce(engine, mode_ctx, ids, force=True, executor=executor,
                              sweep=False)
    wall = time.perf_counter() - start
    assert {b.status for b in builds} == {BuildStatus.BUILT}, [b.reason for b in builds]
    assert {o.status for o in outcomes} == {"reduced"}, [o.reason for o in outcomes if o.reason]
    return Morning(name, builds, outcomes, wall_masters, wall, engine)


def _bound(builds: list[BuildOutcome], cores: int) -> float:
    """The masters' shortest wall on ``cores`` workers, kinds one after the other."""
    by_kind: dict[str, list[float]] = defaultdict(list)
    for b in builds:
        by_kind[b.kind].append(b.seconds)
    return sum(max(sum(t) / cores, max(t)) for t in by_kind.values())


def _run(work: Path, n_frames: int, scale: float, cores: int) -> None:
    print(f"{_load()}; {cores} cores this process may use; "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}Z")
    t0 = time.perf_counter()
    simulate_night(work / "raw", camera="lfc", scale=scale, seed=7, n_bias=5,
                   n_dark=5, n_flat=5, n_science=n_frames)
    base = work / "ingested.sqlite"
    settings = load_settings(env={"NIGHTLOG_DATABASE_URL": f"sqlite:///{base}"}, cwd=work)
    engine = create_engine(f"sqlite:///{base}")
    upgrade(engine)
    run_ingest(engine, discover([work / "raw"], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    ctx = JobContext.from_settings(settings)
    with make_sessionmaker(engine)() as s:
        ids = science_frames(s)
        the_night = s.get(Frame, ids[0]).night  # type: ignore[union-attr]
    engine.dispose()
    assert len(ids) == n_frames, (len(ids), n_frames)
    print(f"{n_frames} science frames at scale {scale} simulated and ingested in "
          f"{time.perf_counter() - t0:.0f} s")

    runs: list[Morning] = []

    def report(run: Morning, *, keep: bool = False) -> None:
        reference = runs[0]
        timed = run is not reference  # the reference's own figures come before t1
        master_work = sum(b.seconds for b in reference.builds)
        ideal = (master_work + t1 * n_frames) / cores if timed else float("nan")
        bound = (_bound(reference.builds, cores) + t1 * n_frames / cores) if timed else ideal
        cpu = sum(b.cpu_seconds for b in run.builds) + sum(o.cpu_seconds for o in run.outcomes)
        per_frame = statistics.mean(o.seconds for o in run.outcomes)
        compared, worst = _differences(run, reference)
        peaks = defaultdict(int)
        for job in (*run.builds, *run.outcomes):
            if job.peak_rss is not None:
                peaks[job.worker] = max(peaks[job.worker], job.peak_rss)
        print(f"{run.name:30s} {run.wall:7.1f} s (masters {run.wall_masters:.1f} s, "
              f"{len(run.builds)} groups; frames {run.wall - run.wall_masters:.1f} s)"
              + (f"  efficiency {100 * ideal / run.wall:5.1f} % (ideal {ideal:.1f} s; "
                 f"{100 * bound / run.wall:5.1f} % of the build order's bound {bound:.1f} s)"
                 if timed else "")
              + f"\n    jobs' CPU {cpu:.1f} s; a frame's job {per_frame:.2f} s in a worker"
              + (f" ({per_frame / t1:.2f} × t1)" if timed else "")
              + "\n    master builds: " + ", ".join(
                  f"{b.kind} {b.seconds:.1f} s ({b.cpu_seconds:.1f} s CPU)" for b in run.builds)
              + f"\n    checked against the reference: {compared} files, largest relative "
              f"pixel difference {worst:.1e}"
              + "\n    peak resident memory per worker: " + ", ".join(
                  f"{w.rsplit(':', 1)[-1]} {p / 2**20:.0f} MiB" for w, p in sorted(peaks.items()))
              + f"\n    frames: {_memory(run.outcomes)}\n    {_load()} after", flush=True)
        assert worst <= 1e-5, (run.name, worst)
        if timed and not keep:  # the disk: the reference's files and the last run's stay
            shutil.rmtree(work / f"archive-{runs.index(run)}")

    runs.append(_morning("1 local worker, one thread", base, work, ctx, ids,
                         {"workers": 1, "threads": 1}))
    report(runs[0])
    t1, t1_cpu = _single_frame_seconds(runs[0].engine, ctx, ids, work / "single")
    print(f"one frame, one thread, this process: {t1:.2f} s ({t1_cpu:.2f} s CPU)")

    import dask
    import distributed

    runs.append(_morning("2 local workers", base, work, ctx, ids, {"workers": 2}))
    report(runs[-1])
    t_cluster = time.perf_counter()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        t_cluster = time.perf_counter() - t_cluster
        runs.append(_morning("Dask, its default settings", base, work, ctx, ids,
                             {"scheduler": cluster.scheduler_address}))
    report(runs[-1])
    # Dask's nanny put its MALLOC_TRIM_THRESHOLD_ in this process's environment when
    # it started the workers above; every later worker would inherit it whatever
    # the configuration says. A worker started by `dask worker` has no such parent.
    os.environ.pop(MALLOC_TRIM, None)
    with dask.config.set(DASK_CONFIG), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=":0") as cluster:
        runs.append(_morning("Dask, nightlog's DASK_CONFIG", base, work, ctx, ids,
                             {"scheduler": cluster.scheduler_address}))
    report(runs[-1], keep=True)

    # The same command again, as a user runs it: nothing to do.
    last = work / f"catalogue-{len(runs) - 1}.sqlite"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nightlog", "reduce", "--no-build",
                           "--night", the_night.isoformat(), "--workers", "2"],
                          cwd=work, capture_output=True, text=True, check=False,
                          env={**os.environ, "NIGHTLOG_DATABASE_URL": f"sqlite:///{last}"})
    second = time.perf_counter() - start
    assert done.returncode == 0, done.stdout + done.stderr
    assert "up-to-date" in done.stdout and "reduced" not in done.stdout, done.stdout

    local2 = runs[1].wall
    master_work = sum(b.seconds for b in runs[0].builds)
    ideal = (master_work + t1 * n_frames) / cores
    print(f"\nDask LocalCluster start-up (not timed above): {t_cluster:.1f} s")
    def cpu(run: Morning) -> float:
        return (sum(b.cpu_seconds for b in run.builds)
                + sum(o.cpu_seconds for o in run.outcomes))

    # On a shared machine the wall time follows the load; the jobs' CPU does not, and
    # says what a set of workers costs beyond the work itself.
    print(f"\n{'run':30s} {'wall s':>7s} {'masters s':>9s} {'efficiency':>10s} "
          f"{'jobs CPU s':>10s} {'÷ reference':>11s}")
    for run in runs:
        eff = "" if run is runs[0] else f"{100 * ideal / run.wall:8.1f} %"
        print(f"{run.name:30s} {run.wall:7.1f} {run.wall_masters:9.1f} {eff:>10s} "
              f"{cpu(run):10.1f} {cpu(run) / cpu(runs[0]):11.3f}")
    print(f"{'second run (nightlog reduce)':30s} {second:7.1f}   nothing reduced")
    print(f"\nideal = (masters {master_work:.1f} s, one thread, in the reference run + "
          f"{t1:.2f} s × "
          f"{n_frames} frames) ÷ {cores} cores = {ideal:.1f} s; target ≥ 90 % for 2 workers")
    for run in runs[2:]:
        print(f"{run.name} / 2 local workers: {run.wall / local2:.3f} (target ≤ 1.05); "
              f"masters {run.wall_masters / runs[1].wall_masters:.3f}")
    print(_load())
    for run in runs:
        run.engine.dispose()


if __name__ == "__main__":
    main()
