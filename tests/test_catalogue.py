"""The catalogue on SQLite and PostgreSQL: frames, versions, moves, quarantine, queries."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from nightlog.catalogue import frames as cf
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame
from nightlog.catalogue.quarantine import (
    list_quarantined,
    record_quarantined,
    resolve_quarantined,
)
from nightlog.catalogue.queries import FrameFilter, find_frames, night_counts
from nightlog.header.model import NormalizedHeader

T0 = dt.datetime(2016, 1, 15, 23, 53, 30, tzinfo=dt.UTC)


def norm(kind: str = "bias", *, minutes: int = 0, filt: str | None = None,
         exptime: float = 0.0, night: dt.date = dt.date(2016, 1, 15),
         obj: str | None = None) -> NormalizedHeader:
    return NormalizedHeader(
        profile="lfc", kind=kind, raw_type=kind.upper(), exptime=exptime, filter=filt,  # type: ignore[arg-type]
        obs_time=T0 + dt.timedelta(minutes=minutes), night=night, shape=(4128, 2080),
        instrument="LFC", detector="SITe SI002 x 6", object_name=obj,
        setup_key="LFC|SITe SI002 x 6|1x1|-|4128x2080",
    )


def facts(path: str, sha: str) -> cf.FileFacts:
    return cf.FileFacts(path=path, sha256=sha.ljust(64, "0"), size=100,
                        mtime=T0, hdu=0, header_json=[["OBJECT", "o'brien \"x\"", ""]])


def test_add_lookup_and_versions(catalogue_engine: Engine) -> None:
    maker = make_sessionmaker(catalogue_engine)
    with maker() as s, s.begin():
        f1 = cf.add_frame(s, facts("/raw/a.fits", "a1"), norm(), software_version="t")
    with maker() as s, s.begin():
        f2 = cf.add_frame(s, facts("/raw/a.fits", "a2"), norm(minutes=5), software_version="t")
    with maker() as s:
        rows = s.scalars(select(Frame).order_by(Frame.id)).all()
        assert [(r.path_version, r.is_latest) for r in rows] == [(1, False), (2, True)]
        assert cf.latest_by_path(s, "/raw/a.fits").id == f2.id  # type: ignore[union-attr]
        assert cf.frame_by_sha256(s, "a1".ljust(64, "0")).id == f1.id  # type: ignore[union-attr]
        got = cf.frame_by_sha256(s, "a2".ljust(64, "0"))
        assert got is not None
        # Times come back timezone-aware UTC on both backends; headers exactly.
        assert got.obs_time == T0 + dt.timedelta(minutes=5)
        assert got.obs_time.tzinfo is not None
        assert got.header == [["OBJECT", "o'brien \"x\"", ""]]


def test_same_bytes_twice_is_refused_by_the_database(catalogue_engine: Engine) -> None:
    maker = make_sessionmaker(catalogue_engine)
    with maker() as s, s.begin():
        cf.add_frame(s, facts("/raw/a.fits", "same"), norm(), software_version="t")
    with pytest.raises(IntegrityError), maker() as s, s.begin():
        cf.add_frame(s, facts("/raw/b.fits", "same"), norm(), software_version="t")
    with maker() as s:
        assert len(s.scalars(select(Frame)).all()) == 1


def test_move_frame(catalogue_engine: Engine) -> None:
    maker = make_sessionmaker(catalogue_engine)
    with maker() as s, s.begin():
        f = cf.add_frame(s, facts("/raw/a.fits", "m"), norm(), software_version="t")
    with maker() as s, s.begin():
        f = s.get(Frame, f.id)  # type: ignore[assignment]
        cf.move_frame(s, f, "/raw/moved/a.fits", T0)
    with maker() as s:
        assert cf.latest_by_path(s, "/raw/a.fits") is None
        assert cf.latest_by_path(s, "/raw/moved/a.fits") is not None


def test_quarantine_records_first_and_last_seen(catalogue_engine: Engine) -> None:
    maker = make_sessionmaker(catalogue_engine)
    t1 = T0
    t2 = T0 + dt.timedelta(hours=1)
    with maker() as s, s.begin():
        record_quarantined(s, "/raw/bad.fits", reason="truncated", error="IncompleteFileError",
                           size=10, now=t1)
    with maker() as s, s.begin():
        record_quarantined(s, "/raw/bad.fits", reason="still truncated",
                           error="IncompleteFileError", size=20, now=t2)
    with maker() as s:
        (row,) = list_quarantined(s)
        assert (row.first_seen, row.last_seen, row.times_seen) == (t1, t2, 2)
        assert row.reason == "still truncated"
    with maker() as s, s.begin():
        assert resolve_quarantined(s, "/raw/bad.fits")
    with maker() as s:
        assert list_quarantined(s) == []
        assert len(list_quarantined(s, include_resolved=True)) == 1


def test_queries_filter_and_count(catalogue_engine: Engine) -> None:
    maker = make_sessionmaker(catalogue_engine)
    with maker() as s, s.begin():
        for i in range(5):
            cf.add_frame(s, facts(f"/r/b{i}.fits", f"b{i}"), norm("bias", minutes=i),
                         software_version="t")
        for i, exptime in enumerate((70.0, 70.064, 70.009)):  # a shutter's jitter
            cf.add_frame(s, facts(f"/r/f{i}.fits", f"f{i}"),
                         norm("flat", minutes=100 + i, filt="g'", exptime=exptime),
                         software_version="t")
        cf.add_frame(s, facts("/r/f7.fits", "f7"),
                     norm("flat", minutes=110, filt="g'", exptime=7.0), software_version="t")
        cf.add_frame(s, facts("/r/s.fits", "s"),
                     norm("science", minutes=600, filt="g'", exptime=300.0, obj="vv124"),
                     software_version="t")
        cf.add_frame(s, facts("/r/next.fits", "n"),
                     norm("bias", minutes=24 * 60, night=dt.date(2016, 1, 16)),
                     software_version="t")
    with maker() as s:
        assert len(find_frames(s, FrameFilter(night=dt.date(2016, 1, 15)))) == 10
        assert len(find_frames(s, FrameFilter(kind="flat", filter="g'"))) == 4
        assert [f.object_name for f in find_frames(s, FrameFilter(exptime_min=100))] == ["vv124"]
        late = find_frames(s, FrameFilter(since=T0 + dt.timedelta(minutes=101)))
        assert [f.path for f in late] == ["/r/f1.fits", "/r/f2.fits", "/r/f7.fits", "/r/s.fits",
                                          "/r/next.fits"]
        assert len(find_frames(s, FrameFilter(limit=2))) == 2
        counts = {(c.night, c.kind, c.filter, c.exptime): c.count for c in night_counts(s)}
        assert counts == {
            (dt.date(2016, 1, 15), "bias", None, 0.0): 5,
            (dt.date(2016, 1, 15), "flat", "g'", 7.0): 1,
            (dt.date(2016, 1, 15), "flat", "g'", 70.0): 3,
            (dt.date(2016, 1, 15), "science", "g'", 300.0): 1,
            (dt.date(2016, 1, 16), "bias", None, 0.0): 1,
        }


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 4000.0), st.integers(1, 5)), min_size=1, max_size=30),
       st.floats(0.0, 0.1))
def test_exposure_groups_count_every_frame_once_within_the_tolerance(
        times: list[tuple[float, int]], tolerance: float) -> None:
    from nightlog.catalogue.exposure_groups import exposure_groups, group_median

    groups = exposure_groups(times, tolerance)
    assert sum(n for g in groups for _, n in g) == sum(n for _, n in times)
    for group in groups:
        first = group[0][0]
        assert all(v - first <= max(tolerance * first, 0.05) for v, _ in group)
    for before, after in itertools.pairwise(groups):
        first = before[0][0]
        assert after[0][0] - first > max(tolerance * first, 0.05)  # cut only where needed
    for group in groups:  # the median of the frames, each time counted once a frame
        frames = sorted(v for v, n in group for _ in range(n))
        middle = len(frames) // 2
        expected = (frames[middle] if len(frames) % 2
                    else (frames[middle - 1] + frames[middle]) / 2)
        assert group_median(group) == round(expected, 1)


def test_naive_times_are_refused(catalogue_engine: Engine) -> None:
    maker = make_sessionmaker(catalogue_engine)
    bad = cf.FileFacts(path="/x.fits", sha256="9" * 64, size=1, mtime=dt.datetime(2020, 1, 1),
                       hdu=0, header_json=[])
    with pytest.raises(Exception, match="timezone-aware"), maker() as s, s.begin():
        cf.add_frame(s, bad, norm(), software_version="t")
