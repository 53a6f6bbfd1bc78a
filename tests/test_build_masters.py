"""Masters are built when a group has enough frames, rebuilt as new versions, and
every input check is recorded. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select, text

from nightlog.catalogue.awaiting import rebuild_awaiting
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Master, MasterInput
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.masters import run_build
from nightlog.settings import load_settings
from nightlog.store.products import read_product
from tests.factories import write_frame

SHAPE = (64, 80)


def _when(minutes: int) -> str:
    t = dt.datetime(2024, 3, 10, 1, 0) + dt.timedelta(minutes=minutes)
    return t.isoformat()


def _night(raw: Path, *, n_bias: int = 6, odd_bias: bool = True) -> None:
    for i in range(n_bias):
        level = 1400.0 if (odd_bias and i == 2) else 1000.0
        write_frame(raw / f"bias{i}.fits", seed=i, shape=SHAPE, level=level, IMAGETYP="BIAS",
                    EXPTIME=0.0, FILTER=None, **{"DATE-OBS": _when(i)})
    for i in range(5):
        write_frame(raw / f"dark{i}.fits", seed=100 + i, shape=SHAPE, level=1000.0 + 0.1 * 60,
                    IMAGETYP="DARK", EXPTIME=60.0, FILTER=None, **{"DATE-OBS": _when(10 + i)})
    for i in range(5):
        write_frame(raw / f"flat{i}.fits", seed=200 + i, shape=SHAPE, level=20000.0 + 1500 * i,
                    noise=140.0, IMAGETYP="FLAT", EXPTIME=2.0, FILTER="R",
                    **{"DATE-OBS": _when(20 + i)})
    write_frame(raw / "flat-dim.fits", seed=300, shape=SHAPE, level=1300.0, IMAGETYP="FLAT",
                EXPTIME=0.1, FILTER="R", **{"DATE-OBS": _when(26)})


@pytest.fixture
def setup(catalogue_engine: Engine, tmp_path: Path) -> tuple[Engine, JobContext, Path]:
    settings = load_settings(env={}, cwd=tmp_path)
    raw = tmp_path / "raw"
    _night(raw)
    run_ingest(catalogue_engine, discover([raw], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    return catalogue_engine, JobContext.from_settings(settings), raw


def _masters(engine: Engine) -> list[Master]:
    with make_sessionmaker(engine)() as s:
        return list(s.scalars(select(Master).order_by(Master.id)))


def test_bias_dark_flat_masters_with_checks(setup: tuple[Engine, JobContext, Path]) -> None:
    engine, ctx, _ = setup
    outcomes = run_build(engine, ctx)
    assert [(o.kind, o.status) for o in outcomes] == [
        ("bias", "built"), ("dark", "built"), ("flat", "built")]
    bias, dark, flat = _masters(engine)
    # The odd bias (400 ADU high) and the dim flat were rejected, with reasons.
    assert bias.n_frames == 5 and flat.n_frames == 5 and dark.n_frames == 5
    with make_sessionmaker(engine)() as s:
        reasons = {mi.reason for mi in s.scalars(select(MasterInput).where(
            MasterInput.used.is_(False)))}
    assert any("bias level" in r for r in reasons)
    assert any("under-exposed" in r for r in reasons)
    # Files exist, open as CCDData with uncertainty and mask, and are what was recorded.
    for m in (bias, dark, flat):
        ccd = read_product(m.path).ccd
        assert ccd.shape == SHAPE and ccd.uncertainty is not None
        assert m.sha256 and m.size == Path(m.path).stat().st_size
        assert m.night == dt.date(2024, 3, 9)
    assert abs(bias.stats["level"] - 1000.0) < 2.0
    assert dark.is_rate and abs(dark.stats["level"] - 0.1) < 0.1  # (1006 - 1000) / 60 s
    flat_data = read_product(flat.path).ccd.data
    assert abs(float(np.median(flat_data)) - 1.0) < 0.01
    assert dark.stats["masters_used"] == {"bias": bias.id}
    assert flat.stats["masters_used"] == {"bias": bias.id, "dark": dark.id}
    # Nothing more is due.
    assert run_build(engine, ctx) == []


def test_more_frames_make_a_new_version(setup: tuple[Engine, JobContext, Path]) -> None:
    engine, ctx, raw = setup
    run_build(engine, ctx)
    settings = load_settings(env={}, cwd=raw.parent)
    write_frame(raw / "bias9.fits", seed=9, shape=SHAPE, IMAGETYP="BIAS", EXPTIME=0.0,
                FILTER=None, **{"DATE-OBS": _when(9)})
    run_ingest(engine, discover([raw], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    outcomes = run_build(engine, ctx)
    assert [(o.kind, o.status, o.version) for o in outcomes] == [("bias", "built", 2)]
    old, *_, new = [m for m in _masters(engine) if m.kind == "bias"]
    assert old.superseded_by_id == new.id and new.n_frames == 6
    assert Path(old.path).exists() and Path(new.path).exists()


def test_too_few_frames_build_nothing_and_say_so(catalogue_engine: Engine,
                                                 tmp_path: Path) -> None:
    settings = load_settings(env={}, cwd=tmp_path)
    raw = tmp_path / "raw"
    for i in range(2):
        write_frame(raw / f"bias{i}.fits", seed=i, shape=SHAPE, IMAGETYP="BIAS", EXPTIME=0.0,
                    **{"DATE-OBS": _when(i)})
    run_ingest(catalogue_engine, discover([raw], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    (outcome,) = run_build(catalogue_engine, JobContext.from_settings(settings))
    assert (outcome.kind, outcome.status, outcome.n_used) == ("bias", "too-few", 2)
    assert outcome.reason.startswith("3 more bias frame(s): 2 of 5")
    assert outcome.master_id is None and not _masters(catalogue_engine)


def test_a_file_left_by_an_interrupted_build_does_not_block_the_group(
        setup: tuple[Engine, JobContext, Path]) -> None:
    engine, ctx, _ = setup
    run_build(engine, ctx)
    built = {m.kind: m for m in _masters(engine)}
    # The same archive again, as if each master had been written and the process
    # killed before its commit: the files are there, the rows are not.
    leftovers = {kind: Path(m.path).read_bytes() for kind, m in built.items()}
    with make_sessionmaker(engine)() as s, s.begin():
        for table in ("product_masters", "master_inputs", "masters"):
            s.execute(text(f"DELETE FROM {table}"))
        rebuild_awaiting(s)  # the frames wait again, as after a rollback
    outcomes = run_build(engine, ctx)
    assert sorted(o.status for o in outcomes) == ["built"] * len(built)
    for m in _masters(engine):
        assert Path(m.path).exists() and m.path != built[m.kind].path
        # The leftover is never overwritten.
        assert Path(built[m.kind].path).read_bytes() == leftovers[m.kind]
