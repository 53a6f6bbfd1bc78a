"""The masters of several simulated nights built in one process, on 2 local workers and
on a 2-worker Dask LocalCluster, in one run, as ratios of the in-process build.

Four nights of the Palomar LFC (5 biases, 5 darks at each of three exposure times
and 5 flats in each of two filters a night: 16 groups, four of each kind but
eight flats) are simulated and ingested into three fresh SQLite catalogues, one per
way of building, so that every run builds every master from scratch:

1. ``run_build(workers=1)``: every group in this process, one after the other;
2. ``run_build(workers=2)``: two spawned local processes (their start-up included);
3. ``run_build(scheduler=...)``: a Dask ``LocalCluster(n_workers=2,
   threads_per_worker=1)`` with the settings of ``DASK_CONFIG`` (started before the
   timed run, after the local ones).

Biases are built first, then darks, then flats (each kind is calibrated with the
masters of the kind before), so on 2 cores the best ratio is 2.0 when each kind has
an even number of groups. Each run's masters are checked against the in-process
ones, pixel for pixel. Target (house-redesign issue): ≥ 1.8× on 2 cores.

Run from the repository root::

    python benchmarks/masters.py                # half-size frames (2064 × 1040)
    python benchmarks/masters.py --scale 1      # full LFC frames
    python benchmarks/masters.py --nights 2     # quicker
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import numpy as np
from sqlalchemy import Engine, select

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Master
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.executors import DASK_CONFIG, available_cores
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.masters import BuildOutcome, run_build
from nightlog.settings import load_settings
from nightlog.simulate import simulate_night
from nightlog.store.layout import ArchiveLayout

FIRST_NIGHT = dt.date(2016, 1, 15)


def _load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load unknown"
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def _catalogue(work: Path, name: str, raw: Path) -> tuple[Engine, JobContext]:
    folder = work / name
    folder.mkdir()
    settings = load_settings(env={}, cwd=folder)
    engine = create_engine(settings.database_url)
    upgrade(engine)
    run_ingest(engine, discover([raw], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    ctx = JobContext.from_settings(settings)
    return engine, dataclasses.replace(ctx, layout=ArchiveLayout(folder))


def _masters(engine: Engine) -> dict[tuple[str, dt.date], Master]:
    with make_sessionmaker(engine)() as s:
        return {(m.group_key, m.night): m for m in s.scalars(select(Master))}


def _check_same(reference: Engine, other: Engine, name: str) -> None:
    from nightlog.store.products import read_product

    ref, got = _masters(reference), _masters(other)
    assert set(ref) == set(got), f"{name}: other groups built"
    for key, master in ref.items():
        a, b = read_product(master.path).ccd, read_product(got[key].path).ccd
        assert np.array_equal(a.data, b.data) and np.array_equal(a.mask, b.mask), \
            f"{name}: master {key} differs from the in-process build"


def _timed(name: str, build: Callable[[], list[BuildOutcome]]
           ) -> tuple[float, list[BuildOutcome]]:
    start = time.perf_counter()
    outcomes = build()
    wall = time.perf_counter() - start
    failed = [o for o in outcomes if o.status != "built"]
    assert not failed, [(o.kind, o.status, o.reason) for o in failed]
    per_group = sum(o.seconds for o in outcomes) / len(outcomes)
    print(f"{name:34s} {wall:7.1f} s  ({len(outcomes)} masters; a build in its worker "
          f"{per_group:.2f} s on average)  [{_load()}]", flush=True)
    return wall, outcomes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nights", type=int, default=4, help="nights (default 4)")
    parser.add_argument("--scale", type=float, default=0.5,
                        help="linear frame size factor (1: full LFC size; default 0.5)")
    parser.add_argument("--out", type=Path, default=None,
                        help="working folder (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    work = args.out or Path(tempfile.mkdtemp(prefix="nightlog-masters-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        _run(work, args.nights, args.scale)
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)


def _run(work: Path, nights: int, scale: float) -> None:
    cores = available_cores()
    print(f"{cores} cores; {_load()}")
    t0 = time.perf_counter()
    raw = work / "raw"
    for i in range(nights):
        simulate_night(raw / f"night{i}", camera="lfc", night=FIRST_NIGHT + dt.timedelta(i),
                       scale=scale, seed=11 + i, n_bias=5, n_dark=5, n_flat=5, n_science=0)
    serial_engine, serial_ctx = _catalogue(work, "serial", raw)
    local_engine, local_ctx = _catalogue(work, "local", raw)
    dask_engine, dask_ctx = _catalogue(work, "dask", raw)
    print(f"{nights} nights at scale {scale} simulated and ingested three times in "
          f"{time.perf_counter() - t0:.0f} s\n")

    serial, built = _timed("in this process (workers=1)",
                           lambda: run_build(serial_engine, serial_ctx))
    local, _ = _timed("2 local workers", lambda: run_build(local_engine, local_ctx, workers=2))
    _check_same(serial_engine, local_engine, "2 local workers")

    import dask
    import distributed

    with dask.config.set(DASK_CONFIG), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=":0") as cluster:
        on_dask, _ = _timed("Dask LocalCluster, DASK_CONFIG",
                            lambda: run_build(dask_engine, dask_ctx,
                                              scheduler=cluster.scheduler_address))
    _check_same(serial_engine, dask_engine, "Dask")

    kinds = {k: sum(1 for o in built if o.kind == k) for k in ("bias", "dark", "flat")}
    print(f"\ngroups: {kinds}; every master equal, pixel for pixel, to the in-process one")
    print(f"\n{'build':34s} {'wall s':>7s} {'speed-up':>9s}")
    print(f"{'in this process':34s} {serial:7.1f} {1.0:9.2f}")
    print(f"{'2 local workers':34s} {local:7.1f} {serial / local:9.2f}  (target ≥ 1.8)")
    print(f"{'Dask, 2 workers':34s} {on_dask:7.1f} {serial / on_dask:9.2f}  "
          f"(Dask ÷ local: {on_dask / local:.3f})")
    for engine in (serial_engine, local_engine, dask_engine):
        engine.dispose()


if __name__ == "__main__":
    main()
