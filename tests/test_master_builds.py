"""Master builds take the shape of reductions: plan, job, record.

No catalogue session is open while a master's pixels are combined; groups are
built in parallel on local processes or Dask and give the very masters one
process builds; a build that fails leaves no file and does not stop the others.
SQLite and PostgreSQL (the ``archive`` fixture, conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, select, text

import nightlog.coordinator.master_job as master_job
import nightlog.coordinator.master_measurements as master_measurements
from nightlog.catalogue.awaiting import rebuild_awaiting
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Master, MasterInput
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.master_job import BuiltMaster, MasterJob, MasterRefused
from nightlog.coordinator.masters import run_build
from nightlog.errors import UnreadableFileError
from nightlog.store.products import read_product

BUILT = ["bias", "dark", "flat", "flat"]


def _masters(engine: Engine) -> dict[str, Master]:
    with make_sessionmaker(engine)() as s:
        return {m.group_key: m for m in s.scalars(select(Master).order_by(Master.id))}


def _forget_masters(engine: Engine) -> None:
    """The rows go, the files stay: the next build writes its masters beside them.
    The frames wait for a master again, as when the builds' transactions rolled back."""
    with make_sessionmaker(engine)() as s, s.begin():
        for table in ("product_masters", "master_inputs", "masters"):
            s.execute(text(f"DELETE FROM {table}"))
        rebuild_awaiting(s)


def _contents(master: Master) -> dict[str, Any]:
    ccd = read_product(master.path).ccd
    return {"data": ccd.data, "uncertainty": ccd.uncertainty.array, "mask": ccd.mask,
            "n_frames": master.n_frames,
            # Figures, not the ids of the masters used (new rows get new ids).
            "stats": {k: v for k, v in master.stats.items() if k != "masters_used"},
            "digest": master.parameters["digest"], "version": master.version}


def _same_masters(engine: Engine, before: dict[str, dict[str, Any]]) -> None:
    after = {key: _contents(m) for key, m in _masters(engine).items()}
    assert set(after) == set(before)
    for key, got in after.items():
        want = before[key]
        for plane in ("data", "uncertainty", "mask"):
            assert np.array_equal(got[plane], want[plane]), (key, plane)
        assert {k: got[k] for k in ("n_frames", "stats", "digest", "version")} == \
            {k: want[k] for k in ("n_frames", "stats", "digest", "version")}


def test_no_catalogue_session_is_open_while_pixels_are_combined(
        archive: tuple[Engine, JobContext], monkeypatch: pytest.MonkeyPatch) -> None:
    engine, ctx = archive
    seen: list[tuple[str, int]] = []
    for module, name in ((master_job, "make_master_bias"), (master_job, "make_master_dark"),
                         (master_job, "make_master_flat"), (master_measurements, "read_region"),
                         (master_measurements, "read_image")):
        original = getattr(module, name)

        def checked(*args: Any, _original: Any = original, _name: str = name,
                    **kwargs: Any) -> Any:
            # Every connection of the pool is back: no session holds one.
            seen.append((_name, engine.pool.checkedout()))
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, checked)
    outcomes = run_build(engine, ctx)
    assert sorted(o.kind for o in outcomes if o.status == "built") == BUILT
    combined = [name for name, _ in seen if name.startswith("make_master")]
    assert combined == ["make_master_bias", "make_master_dark", "make_master_flat",
                        "make_master_flat"]
    assert any(name == "read_region" for name, _ in seen)  # the input checks read pixels
    assert [open_ for _, open_ in seen] == [0] * len(seen)


def test_two_local_workers_build_the_masters_one_process_builds(
        archive: tuple[Engine, JobContext]) -> None:
    engine, ctx = archive
    serial = run_build(engine, ctx)
    assert sorted(o.kind for o in serial if o.status == "built") == BUILT
    before = {key: _contents(m) for key, m in _masters(engine).items()}
    _forget_masters(engine)
    parallel = run_build(engine, ctx, workers=2)
    assert [(o.kind, o.status) for o in parallel] == [(o.kind, o.status) for o in serial]
    # Built in the worker processes, not here.
    assert all(o.worker and not o.worker.endswith(f":{os.getpid()}")
               for o in parallel)
    _same_masters(engine, before)
    assert run_build(engine, ctx, workers=2) == []  # nothing more is due


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


@pytest.mark.parametrize("catalogue_url", ["sqlite"], indirect=True)
def test_a_dask_cluster_builds_the_masters_one_process_builds(
        archive: tuple[Engine, JobContext], dask_scheduler: str) -> None:
    engine, ctx = archive
    run_build(engine, ctx)
    before = {key: _contents(m) for key, m in _masters(engine).items()}
    _forget_masters(engine)
    on_dask = run_build(engine, ctx, scheduler=dask_scheduler)
    assert sorted(o.kind for o in on_dask if o.status == "built") == BUILT
    _same_masters(engine, before)


def _flat_unreadable(job: MasterJob) -> BuiltMaster | MasterRefused:
    """The real build, except that flats fail as if their files were unreadable."""
    if job.kind == "flat":
        raise UnreadableFileError(f"cannot read {job.inputs[0].path}: Input/output error")
    return master_job.build_master_job(job)


def test_a_failed_build_leaves_no_file_and_the_others_are_built(
        archive: tuple[Engine, JobContext]) -> None:
    engine, ctx = archive
    outcomes = run_build(engine, ctx, workers=2, work=_flat_unreadable)
    by_kind = sorted((o.kind, o.status) for o in outcomes)
    assert by_kind == [("bias", "built"), ("dark", "built"), ("flat", "failed"),
                       ("flat", "failed")]
    assert all("UnreadableFileError: cannot read" in o.reason
               for o in outcomes if o.status == "failed")
    masters = _masters(engine)
    assert sorted(m.kind for m in masters.values()) == ["bias", "dark"]
    left = sorted(p for p in (ctx.layout.root / "masters").rglob("*") if p.is_file())
    assert left == sorted(Path(m.path) for m in masters.values())
    # The next run builds what failed, with the masters already there.
    again = run_build(engine, ctx)
    assert sorted((o.kind, o.status) for o in again) == [("flat", "built"), ("flat", "built")]


def test_every_frame_considered_is_recorded_with_its_verdict(
        archive: tuple[Engine, JobContext]) -> None:
    engine, ctx = archive
    outcomes = run_build(engine, ctx, workers=2)
    with make_sessionmaker(engine)() as s:
        for outcome in outcomes:
            rows = list(s.scalars(select(MasterInput).where(
                MasterInput.master_id == outcome.master_id)))
            assert sum(r.used for r in rows) == outcome.n_used
            assert {r.frame_id for r in rows if not r.used} == \
                {frame_id for frame_id, _ in outcome.rejected}


def test_master_builders_never_import_the_catalogue() -> None:
    code = ("import sys, nightlog.coordinator.master_job; "
            "sys.exit(int('sqlalchemy' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
