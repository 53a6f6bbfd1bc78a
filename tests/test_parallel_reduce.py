"""The night's reduction on several workers: local processes and a real Dask cluster
give the same products as one process; failures are retried, then recorded with
their reason; a dead worker costs one retry; an interrupted run is finished by the
next one. SQLite and PostgreSQL (the ``archive`` fixture, conftest.py)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import Engine, select

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame, Product, ReduceFailure
from nightlog.catalogue.reductions import failures_of_night
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.executors import (
    DASK_CONFIG,
    MALLOC_TRIM,
    DaskExecutor,
    _dask_settings,
    dask_settings_advice,
)
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import ReduceInterrupted, ReduceOutcome, run_reduce, science_frames
from nightlog.coordinator.reduce_job import ReducedFile, ReduceJob, reduce_job
from nightlog.coordinator.replaced_files import replaced_path

DIE_ONCE = "NIGHTLOG_TEST_DIE_ONCE"  # read by _dies_once only, in the worker processes


def _dies_once(job: ReduceJob) -> ReducedFile:
    """The real work, except that the worker process dies on one chosen frame: once
    (the marker file is then created), or every time when the marker is ``-``."""
    frame_id, marker = os.environ[DIE_ONCE].split(":", 1)
    if job.frame_id == int(frame_id) and not os.path.exists(marker):
        if marker != "-":
            Path(marker).touch()
        os._exit(13)
    return reduce_job(job)


@pytest.fixture
def night(archive: tuple[Engine, JobContext]) -> tuple[Engine, JobContext, list[int]]:
    engine, ctx = archive
    assert all(o.status == "built" for o in run_build(engine, ctx))
    with make_sessionmaker(engine)() as s:
        return engine, ctx, science_frames(s)


@pytest.fixture(scope="module")
def dask_scheduler() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def _current(engine: Engine) -> dict[int, Product]:
    with make_sessionmaker(engine)() as s:
        rows = s.scalars(select(Product).where(Product.status == "current")).all()
        s.expunge_all()
    by_frame = {p.frame_id: p for p in rows}
    assert len(by_frame) == len(rows)  # one current product per frame
    return by_frame


def _pixels(product: Product) -> list[np.ndarray]:
    # A product replaced since ``product`` was read has its file in the replaced folder.
    path = Path(product.path)
    if not path.exists():
        path = replaced_path(path)
    with fits.open(path) as hdul:
        return [np.array(hdul[name].data) for name in ("PRIMARY", "UNCERT", "MASK")]


def _same_products(a: dict[int, Product], b: dict[int, Product]) -> None:
    assert a.keys() == b.keys()
    for frame_id, first in a.items():
        second = b[frame_id]
        assert first.id != second.id and first.path != second.path
        assert second.inputs_key == first.inputs_key
        assert second.parameters["digest"] == first.parameters["digest"]
        for x, y in zip(_pixels(first), _pixels(second), strict=True):
            np.testing.assert_array_equal(x, y)


def test_two_local_workers_and_dask_give_the_products_of_one(
        night: tuple[Engine, JobContext, list[int]], dask_scheduler: str) -> None:
    engine, ctx, ids = night
    one = run_reduce(engine, ctx, ids, workers=1)
    assert [o.status for o in one] == ["reduced"] * len(ids)
    by_one = _current(engine)

    two = run_reduce(engine, ctx, ids, workers=2, force=True)
    assert [o.status for o in two] == ["reduced"] * len(ids)
    assert len({o.worker for o in two}) >= 1 and all(o.worker for o in two)
    by_two = _current(engine)
    _same_products(by_one, by_two)
    with make_sessionmaker(engine)() as s:  # the older products are kept, replaced
        for product in by_one.values():
            old = s.get(Product, product.id)
            assert old is not None and old.status == "replaced"
            assert old.replaced_by_id == by_two[product.frame_id].id
            assert Path(old.path).exists()

    on_dask = run_reduce(engine, ctx, ids, scheduler=dask_scheduler, force=True)
    assert [o.status for o in on_dask] == ["reduced"] * len(ids)
    _same_products(by_two, _current(engine))

    # Nothing left to do: a second run reduces nothing, whatever the executor.
    assert {o.status for o in run_reduce(engine, ctx, ids, workers=2)} == {"up-to-date"}
    assert {o.status for o in run_reduce(engine, ctx, ids,
                                         scheduler=dask_scheduler)} == {"up-to-date"}


def test_a_corrupted_raw_file_fails_after_its_retries_and_the_night_goes_on(
        night: tuple[Engine, JobContext, list[int]]) -> None:
    engine, ctx, ids = night
    with make_sessionmaker(engine)() as s:
        bad = s.get(Frame, ids[1])
        assert bad is not None
        bad_path, the_night = Path(bad.path), bad.night
    original = bad_path.read_bytes()
    damaged = bytearray(original)
    damaged[len(damaged) // 2:len(damaged) // 2 + 64] = b"\xff" * 64  # pixels overwritten
    bad_path.write_bytes(bytes(damaged))

    outcomes = run_reduce(engine, ctx, ids, workers=2, retries=2)
    by_id = {o.frame_id: o for o in outcomes}
    assert by_id[ids[1]].status == "failed" and by_id[ids[1]].attempts == 3
    assert "changed since it was catalogued" in by_id[ids[1]].reason
    assert [by_id[i].status for i in ids if i != ids[1]] == ["reduced"] * (len(ids) - 1)
    with make_sessionmaker(engine)() as s:
        (failure,) = failures_of_night(s, the_night)
        assert failure.frame_id == ids[1] and failure.attempts == 3
        assert failure.error == "ChecksumMismatchError"
        assert "changed since it was catalogued" in failure.reason

    # The file restored, the next run reduces that frame only and resolves the failure.
    bad_path.write_bytes(original)
    again = {o.frame_id: o.status for o in run_reduce(engine, ctx, ids, workers=2)}
    assert again == {i: ("reduced" if i == ids[1] else "up-to-date") for i in ids}
    with make_sessionmaker(engine)() as s:
        assert failures_of_night(s, the_night) == []
        (resolved,) = failures_of_night(s, the_night, include_resolved=True)
        assert resolved.resolved_at is not None
        row = s.scalars(select(ReduceFailure)).one()
        assert row.times_failed == 1


def test_a_worker_that_dies_is_replaced_and_its_frame_retried(
        night: tuple[Engine, JobContext, list[int]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine, ctx, ids = night
    marker = tmp_path / "died"
    monkeypatch.setenv(DIE_ONCE, f"{ids[0]}:{marker}")
    outcomes = run_reduce(engine, ctx, ids, workers=2, retries=1, work=_dies_once)
    assert marker.exists()  # the worker did die
    assert [o.status for o in outcomes] == ["reduced"] * len(ids)
    # Lost while another job shared the pool, it is not charged for it and runs
    # again alone (1 attempt); lost while alone in the pool, it is charged and
    # retried (2). Which of the two happens depends on the other job's timing.
    assert outcomes[0].attempts in (1, 2)
    assert set(_current(engine)) == set(ids)


def test_a_worker_that_always_dies_is_recorded_as_lost(
        night: tuple[Engine, JobContext, list[int]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine, ctx, ids = night
    monkeypatch.setenv(DIE_ONCE, f"{ids[0]}:-")
    outcomes = run_reduce(engine, ctx, ids, workers=2, retries=1, work=_dies_once)
    # Run alone after the first loss, it was charged for each further one.
    assert outcomes[0].status == "failed" and outcomes[0].attempts == 2
    assert outcomes[0].reason.startswith("WorkerLost: a worker process died")
    # The frames that shared the pool with it were tried again and reduced.
    assert [o.status for o in outcomes[1:]] == ["reduced"] * (len(ids) - 1)
    with make_sessionmaker(engine)() as s:
        assert s.scalars(select(ReduceFailure.frame_id)).all() == [ids[0]]


@pytest.mark.parametrize("workers", [1, 2])
def test_an_interrupted_run_is_finished_by_the_next(
        night: tuple[Engine, JobContext, list[int]], workers: int) -> None:
    engine, ctx, ids = night

    calls: list[ReduceOutcome] = []

    def interrupt(outcome: ReduceOutcome) -> None:  # Ctrl-C once, at the first frame done
        calls.append(outcome)
        if len(calls) == 1:
            raise KeyboardInterrupt

    with pytest.raises(ReduceInterrupted) as stopped:
        run_reduce(engine, ctx, ids, workers=workers, progress=interrupt)
    done = {o.frame_id for o in stopped.value.outcomes if o.status == "reduced"}
    assert done and len(done) + stopped.value.unfinished == len(ids)
    if workers == 1:
        assert done == {ids[0]}  # the frame in hand is recorded, no other is started
    assert set(_current(engine)) == done

    resumed = {o.frame_id: o.status for o in run_reduce(engine, ctx, ids, workers=workers)}
    assert resumed == {i: ("up-to-date" if i in done else "reduced") for i in ids}
    products = _current(engine)
    assert set(products) == set(ids)
    # No file was left behind without its row.
    folder = Path(next(iter(products.values())).path).parent
    assert sorted(folder.iterdir()) == sorted(Path(p.path) for p in products.values())


def test_workers_never_import_the_catalogue() -> None:
    code = ("import sys, nightlog.coordinator.reduce_job, nightlog.coordinator.executors; "
            "sys.exit(int('sqlalchemy' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_command_reduces_the_last_night_then_nothing(
        archive: tuple[Engine, JobContext], catalogue_url: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from nightlog.cli.app import app

    engine, _ = archive
    (tmp_path / "nightlog.toml").write_text(f'[database]\nurl = "{catalogue_url}"\n')
    monkeypatch.chdir(tmp_path)
    for name in ("NIGHTLOG_CONFIG", "NIGHTLOG_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with make_sessionmaker(engine)() as s:
        ids = science_frames(s)
        bad = s.get(Frame, ids[0])
        assert bad is not None
        Path(bad.path).write_bytes(Path(bad.path).read_bytes()[:-2880])  # truncated
    runner = CliRunner()
    first = runner.invoke(app, ["reduce", "--workers", "2", "--retries", "1"],
                          env={"COLUMNS": "200"})
    assert first.exit_code == 1, first.output
    assert "night of 2016-01-15" in first.output
    assert f"frame {ids[0]}: failed after 2 tries: ChecksumMismatchError" in first.output
    assert f"{len(ids) - 1} reduced in" in first.output
    second = runner.invoke(app, ["reduce", "--workers", "2", "--retries", "0"],
                           env={"COLUMNS": "200"})
    assert second.exit_code == 1, second.output
    assert "up-to-date" in second.output and f"{len(ids) - 1} reduced" not in second.output
    assert set(_current(engine)) == set(ids[1:])


def test_dask_settings_advice_names_what_costs_cpu() -> None:
    assert dask_settings_advice([DASK_CONFIG, DASK_CONFIG]) == ""
    defaults = {"distributed.worker.profile.enabled": True,
                "distributed.admin.tick.interval": "20ms"}
    advice = dask_settings_advice([defaults, DASK_CONFIG])
    assert advice.startswith("1 worker(s) run Dask's statistical profiler and 1 check")
    assert "docs/morning.md" in advice
    assert "profiler" not in dask_settings_advice(
        [{**defaults, "distributed.worker.profile.enabled": False}])
    trimming = dask_settings_advice([DASK_CONFIG, {**DASK_CONFIG, MALLOC_TRIM: "65536"}])
    assert trimming.startswith(f"1 run with {MALLOC_TRIM} set")
    assert "profiler" not in trimming and "docs/morning.md" in trimming


def test_the_recommended_dask_settings_leave_the_workers_malloc_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_ on its workers; DASK_CONFIG unsets it,
    and a cluster started with it draws no advice."""
    distributed = pytest.importorskip("distributed")
    dask = pytest.importorskip("dask")
    # A default cluster started earlier in this process leaves the variable in its
    # environment, which every later worker inherits.
    monkeypatch.delenv(MALLOC_TRIM, raising=False)
    with dask.config.set(DASK_CONFIG), \
            distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                     dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        assert list(client.run(os.environ.get, MALLOC_TRIM).values()) == [None]
        executor = DaskExecutor(cluster.scheduler_address)
        executor.close()
        assert dask_settings_advice(client.run(_dask_settings).values()) == ""


def test_a_dask_cluster_on_default_settings_is_told_what_to_change(
        dask_scheduler: str, caplog: pytest.LogCaptureFixture) -> None:
    """The module's cluster runs Dask's defaults: connecting says so, once."""
    with caplog.at_level(logging.WARNING, logger="nightlog.reduce"):
        DaskExecutor(dask_scheduler).close()
    (record,) = [r for r in caplog.records if getattr(r, "event", "") == "dask-settings"]
    assert "2 worker(s) run Dask's statistical profiler" in record.getMessage()
