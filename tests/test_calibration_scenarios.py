"""Several simulated Aspen nights with the tricky cases of a real calibration history,
run through ingest and the master builder, each with the master chosen asserted.
SQLite and PostgreSQL.

The nights (the Aspen takes its flats in the evening and its darks and biases in
the morning, after the science):

- A, 2018-08-22: a full set.
- B, A + 1: too few flats in ``r`` (two of five kept); a full set otherwise.
- D, A + 2: everything read out binned 2 x 2.
- C, A + 12: science only, after a gap of days.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from nightlog.calibration.matching import match_frame
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.masters import certify_master, set_quality
from nightlog.catalogue.models import Frame, Master
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.masters import run_build

A = dt.date(2018, 8, 22)
B, D, C = A + dt.timedelta(days=1), A + dt.timedelta(days=2), A + dt.timedelta(days=12)
FILTERS = ("r", "g")


def _bin2(path: Path) -> None:
    """Rewrite a raw frame as the camera would read it out binned 2 x 2 (averaged)."""
    with fits.open(path) as hdul:
        header = hdul[0].header.copy()
        data = hdul[0].data.astype(np.float64)
    ny, nx = (s - s % 2 for s in data.shape)
    binned = data[:ny, :nx].reshape(ny // 2, 2, nx // 2, 2).mean(axis=(1, 3))
    header["XBINNING"] = 2
    header["YBINNING"] = 2
    hdu = fits.PrimaryHDU(np.round(binned).astype(np.uint16), header=header)
    hdu.header["BZERO"], hdu.header["BSCALE"] = 32768, 1
    hdu.writeto(path, overwrite=True)


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nightlog.simulate import simulate_night
    from nightlog.simulate.cameras import camera_by_name

    root = tmp_path_factory.mktemp("aspen-nights")
    filters = tuple(f.name for f in camera_by_name("aspen").filters)
    assert set(FILTERS) <= set(filters), filters
    full = dict(n_bias=5, n_dark=5, n_flat=5, n_science=4)
    simulate_night(root / "A", camera="aspen", night=A, scale=0.04, seed=1, **full)
    simulate_night(root / "B", camera="aspen", night=B, scale=0.04, seed=2, **full)
    simulate_night(root / "D", camera="aspen", night=D, scale=0.08, seed=3, **full)
    simulate_night(root / "C", camera="aspen", night=C, scale=0.04, seed=4, n_bias=0,
                   n_dark=0, n_flat=0, n_science=4)
    # Night B: a filter with too few flats.
    r_flats = sorted((root / "B").glob("AutoFlat-*-r-*.fit"))
    assert len(r_flats) == 5
    for p in r_flats[2:]:
        p.unlink()
    # Night D: binned 2 x 2 (simulated at twice the scale, so the binned frames are
    # as large as the other nights' and only the binning tells them apart).
    for p in (root / "D").glob("*.fit"):
        _bin2(p)
    return root


@pytest.fixture
def built(catalogue_engine: Engine, nights: Path, tmp_path: Path
          ) -> Iterator[tuple[Session, JobContext]]:
    from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
    from nightlog.settings import load_settings

    raw = tmp_path / "raw"
    shutil.copytree(nights, raw)
    settings = load_settings(env={}, cwd=tmp_path)
    summary = run_ingest(catalogue_engine, discover([raw], settings.ingest.patterns),
                         IngestContext.from_settings(settings))
    assert summary.counts.get("quarantined", 0) == 0, summary
    ctx = JobContext.from_settings(settings)
    run_build(catalogue_engine, ctx)
    with make_sessionmaker(catalogue_engine)() as session:
        yield session, ctx


def _science(s: Session, night: dt.date, filt: str) -> Frame:
    return s.scalars(select(Frame).where(Frame.kind == "science", Frame.night == night,
                                         Frame.filter == filt).order_by(Frame.obs_time)
                     ).first()  # type: ignore[return-value]


def _master(s: Session, kind: str, night: dt.date, *, filt: str | None = None,
            binning: str = "1x1") -> Master:
    stmt = select(Master).where(Master.kind == kind, Master.night == night,
                                Master.superseded_by_id.is_(None))
    if filt is not None:
        stmt = stmt.where(Master.filter == filt)
    found = [m for m in s.scalars(stmt) if m.group.get("binning") == binning]
    assert len(found) == 1, (kind, night, filt, binning, found)
    return found[0]


def _chosen(s: Session, ctx: JobContext, frame: Frame, *, live: bool = False
            ) -> dict[str, Master | None]:
    return {k: m.chosen for k, m in match_frame(s, frame, ctx.profile_of(frame), ctx.policy,
                                                live=live).items()}


def test_same_night_masters_even_when_taken_after_the_science(
        built: tuple[Session, JobContext]) -> None:
    s, ctx = built
    sci = _science(s, A, "r")
    bias, dark = _master(s, "bias", A), _master(s, "dark", A)
    # The Aspen's biases and darks are taken in the morning, after the science.
    assert bias.first_obs > sci.obs_time and dark.first_obs > sci.obs_time
    chosen = _chosen(s, ctx, sci)
    assert chosen == {"bias": bias, "dark": dark, "flat": _master(s, "flat", A, filt="r")}
    # Live (during the night) those masters did not exist yet: nothing earlier.
    live = _chosen(s, ctx, sci, live=True)
    assert live["bias"] is None and live["dark"] is None
    # On night B the live choice is night A's, taken before; the final is B's own.
    sci_b = _science(s, B, "r")
    assert _chosen(s, ctx, sci_b, live=True)["bias"] == bias
    assert _chosen(s, ctx, sci_b)["bias"] == _master(s, "bias", B)


def test_filter_with_too_few_flats_takes_the_nearest_night(
        built: tuple[Session, JobContext]) -> None:
    s, ctx = built
    # Two r flats on night B are too few for a master; the g flats made one.
    assert s.scalars(select(Master).where(Master.kind == "flat", Master.night == B,
                                          Master.filter == "r")).first() is None
    _master(s, "flat", B, filt="g")
    assert _chosen(s, ctx, _science(s, B, "r"))["flat"] == _master(s, "flat", A, filt="r")


def test_binnings_never_mix(built: tuple[Session, JobContext]) -> None:
    s, ctx = built
    sci_d = _science(s, D, "r")
    assert sci_d.binning == "2x2"
    chosen = _chosen(s, ctx, sci_d)
    assert chosen == {"bias": _master(s, "bias", D, binning="2x2"),
                      "dark": _master(s, "dark", D, binning="2x2"),
                      "flat": _master(s, "flat", D, filt="r", binning="2x2")}
    # Night B's unbinned science is nearer in time to D's binned masters than to
    # A's, but gets B's own (and would get A's before any of D's).
    sci_b = _science(s, B, "r")
    for master in _chosen(s, ctx, sci_b).values():
        assert master is not None and master.group["binning"] == "1x1"


def test_gap_of_days_then_bad_master_then_certified_range(
        built: tuple[Session, JobContext]) -> None:
    s, ctx = built
    sci_c = _science(s, C, "r")
    chosen = _chosen(s, ctx, sci_c)
    # 11 days after night B: the bias (±30 d) and dark (±90 d) still hold, the
    # flat (±7 d) does not; the match says why.
    assert chosen["bias"] == _master(s, "bias", B)
    assert chosen["dark"] == _master(s, "dark", B)
    flat = match_frame(s, sci_c, ctx.profile_of(sci_c), ctx.policy)["flat"]
    assert flat.chosen is None and "valid" in flat.reason
    # Night B's bias marked bad: night A's, the next nearest, takes over.
    set_quality(s, _master(s, "bias", B), "bad", "light leak")
    s.flush()
    assert _chosen(s, ctx, sci_c)["bias"] == _master(s, "bias", A)
    # A certified range lets night A's r flat serve night C, beyond its window.
    a_flat = _master(s, "flat", A, filt="r")
    certify_master(s, a_flat, dt.datetime(2018, 8, 22, tzinfo=dt.UTC),
                   dt.datetime(2018, 9, 10, tzinfo=dt.UTC))
    s.flush()
    assert _chosen(s, ctx, sci_c)["flat"] == a_flat
    s.rollback()
