"""A master build given the cores its idle neighbours leave makes the same master.

When a kind has fewer groups than workers (one bias group on two workers), the
coordinator gives each build the idle workers' cores: the combination's tiles run
in threads and the frames are characterised beside it. The master's pixels and
every figure recorded for the calibration history must not depend on it.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Master
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.executors import InProcessExecutor
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.master_job import MasterJob, build_master_job
from nightlog.coordinator.masters import build_threads, run_build
from nightlog.settings import load_settings
from nightlog.store.products import read_product


@pytest.mark.parametrize(("workers", "threads", "builds", "expected"), [
    (1, 2, 1, 2),  # this process, two cores: a lone build takes both
    (1, 2, 3, 2),  # one at a time, whatever is queued
    (2, 1, 1, 2),  # two workers, one group: the idle worker's core too
    (2, 1, 2, 1),
    (2, 1, 5, 1),
    (4, 2, 1, 8),
    (4, 2, 3, 2),  # 8 cores over 3 builds: 2 each, never more than there are
    (2, 1, 0, 2),
])
def test_builds_share_the_cores_their_neighbours_leave(workers: int, threads: int,
                                                       builds: int, expected: int) -> None:
    executor: Any = SimpleNamespace(workers=workers, threads=threads,
                                    host_cores=workers * threads)
    share = build_threads(executor, builds)
    assert share == expected
    assert share * max(1, min(builds, workers)) <= workers * threads


def test_a_build_never_takes_more_cores_than_its_host_has() -> None:
    """Two hosts of 4 cores with 4 worker threads each: one build gets 4, not 8."""
    executor: Any = SimpleNamespace(workers=8, threads=1, host_cores=4)
    assert build_threads(executor, 1) == 4
    assert build_threads(executor, 2) == 4
    assert build_threads(executor, 3) == 2


def _night(lfc_night: Path, folder: Path) -> tuple[Any, JobContext]:
    raw = folder / "raw"
    shutil.copytree(lfc_night, raw)
    settings = load_settings(env={"NIGHTLOG_DATABASE_URL": f"sqlite:///{folder / 'c.sqlite'}"},
                             cwd=folder)
    engine = create_engine(settings.database_url)
    upgrade(engine)
    run_ingest(engine, discover([raw], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    return engine, JobContext.from_settings(settings)


_TIMINGS = {"seconds", "cpu_seconds", "peak_rss", "worker"}


def test_a_build_on_two_cores_makes_the_same_master(lfc_night: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []

    def recording(job: MasterJob) -> Any:
        seen.append(job.threads)
        return build_master_job(job)

    results = []
    for cores in (1, 2):
        engine, ctx = _night(lfc_night, tmp_path / f"cores{cores}")
        outcomes = run_build(engine, ctx, executor=InProcessExecutor(threads=cores),
                             work=recording)
        assert outcomes and all(o.status == "built" for o in outcomes)
        with make_sessionmaker(engine)() as s:
            masters = list(s.scalars(select(Master).order_by(Master.kind, Master.group_key)))
            results.append([(m.kind, m.group_key, m.stats, read_product(m.path)) for m in masters])
        engine.dispose()
    assert set(seen) == {1, 2}
    one, two = results
    assert [(k, g) for k, g, _, _ in one] == [(k, g) for k, g, _, _ in two]
    for (kind, _, stats1, file1), (_, _, stats2, file2) in zip(one, two, strict=True):
        assert {k: v for k, v in stats1.items() if k not in _TIMINGS} == \
            {k: v for k, v in stats2.items() if k not in _TIMINGS}, kind
        np.testing.assert_array_equal(file1.ccd.data, file2.ccd.data)
        np.testing.assert_array_equal(file1.ccd.uncertainty.array, file2.ccd.uncertainty.array)
        assert (file1.ccd.flags is None) == (file2.ccd.flags is None)
        if file1.ccd.flags is not None:
            np.testing.assert_array_equal(file1.ccd.flags, file2.ccd.flags)


def test_the_threads_do_not_reach_the_parameters(lfc_night: Path, tmp_path: Path) -> None:
    """The cores a build ran on are not a parameter of the master: its digest, and so
    whether a later build sees the master as up to date, does not change with them."""
    digests = []
    for cores in (1, 2):
        engine, ctx = _night(lfc_night, tmp_path / f"d{cores}")
        run_build(engine, ctx, executor=InProcessExecutor(threads=cores),
                  work=lambda job, c=cores: build_master_job(dataclasses.replace(job, threads=c)))
        with make_sessionmaker(engine)() as s:
            digests.append(sorted(m.parameters["digest"] for m in s.scalars(select(Master))))
        engine.dispose()
    assert digests[0] == digests[1]
