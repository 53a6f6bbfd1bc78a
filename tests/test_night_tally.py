"""The night tally that ``nightlog nights`` reads counts exactly the latest frames of
each night, kind, filter and exposure time, whatever sequence of new files, new
versions at a path and moves recorded them; migration 0014 counts an existing
catalogue's frames the same way."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from nightlog.catalogue import frames as cf
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.exposure_groups import exposure_groups, group_median
from nightlog.catalogue.models import Frame, NightTally
from nightlog.catalogue.night_periods import period_counts
from nightlog.catalogue.night_tally import rebuild_tallies, tally_rows
from nightlog.catalogue.queries import night_counts
from nightlog.catalogue.schema import upgrade
from nightlog.header.model import NormalizedHeader

NIGHTS = (dt.date(2026, 3, 1), dt.date(2026, 3, 2))
PATHS = tuple(f"/raw/f{i}.fits" for i in range(4))
SETUP = st.tuples(st.sampled_from(("bias", "flat", "science")),
                  st.sampled_from((None, "g'", "i'")), st.sampled_from((None, 0.0, 7.0, 7.02)),
                  st.sampled_from(NIGHTS))
ADD = st.tuples(st.just("add"), st.sampled_from(PATHS), SETUP)
#: Catalogues migrated already (the engine fixture lasts for every example of a test).
_MIGRATED: set[str] = set()
MOVE = st.tuples(st.just("move"), st.integers(0, 20),
                 st.sampled_from((*PATHS, "/raw/moved.fits")))


def _add(session: Any, path: str, setup: tuple[Any, ...], n: int) -> Frame:
    kind, filt, exptime, night = setup
    when = dt.datetime.combine(night, dt.time(23), tzinfo=dt.UTC) + dt.timedelta(minutes=n)
    norm = NormalizedHeader(profile="lfc", kind=kind, raw_type=kind.upper(), exptime=exptime,
                            filter=filt, obs_time=when, night=night, shape=(20, 30),
                            instrument="LFC")
    facts = cf.FileFacts(path=path, sha256=f"{n:064x}", size=1, mtime=when, hdu=0,
                         header_json=[])
    return cf.add_frame(session, facts, norm, software_version="test")


def _truth(session: Any) -> Counter[tuple[Any, ...]]:
    return Counter((f.night, f.kind, f.filter, f.exptime)
                   for f in session.scalars(select(Frame)) if f.is_latest)


def _tallied(session: Any) -> Counter[tuple[Any, ...]]:
    return Counter({(r.night, r.kind, r.filter, r.exptime): r.frames
                    for r in tally_rows(session)})


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.one_of(ADD, MOVE), min_size=1, max_size=14))
def test_the_tally_counts_the_latest_frames(catalogue_engine: Engine,
                                            steps: list[tuple[Any, ...]]) -> None:
    if str(catalogue_engine.url) not in _MIGRATED:
        upgrade(catalogue_engine)
        _MIGRATED.add(str(catalogue_engine.url))
    with make_sessionmaker(catalogue_engine)() as session:
        added: list[Frame] = []
        for n, (op, a, b) in enumerate(steps):
            frame = added[a % len(added)] if op == "move" and added else None
            if op == "move" and (frame is None or frame.path == b):
                continue
            try:
                with session.begin_nested():
                    if frame is None:
                        added.append(_add(session, a, b, n))
                    else:
                        cf.move_frame(session, frame, b, frame.mtime)
                    session.flush()
            except IntegrityError:
                # The path already holds a version of the number the frame would
                # take (a path whose latest frame moved away starts again at 1):
                # refused, and the tally's change with it.
                pass
        assert _tallied(session) == _truth(session)
        # The listing's counts per night add up to the latest frames of the night.
        per_night = Counter(c.night for c in night_counts(session) for _ in range(c.count))
        assert per_night == Counter(key[0] for key in _truth(session).elements())
        # Each night's groups, in order, are those of the latest frames themselves.
        listed = [_as_tuple(c) for c in night_counts(session)]
        assert listed == _night_groups(_truth(session))
        newest = [_as_tuple(c) for c in night_counts(session, newest_first=True)]
        assert newest == sorted(listed, key=lambda c: c[0], reverse=True)  # stable
        # The month's (and year's) sums, counted by the database, are the frames'.
        for by, width in (("month", 7), ("year", 4)):
            summed = {(p.period, p.kind, p.filter, p.exptime_min, p.exptime_max): (
                p.count, p.nights) for p in period_counts(session, by)}
            assert summed == _periods_of(_truth(session), width)
        session.rollback()


def _as_tuple(c: Any) -> tuple[Any, ...]:
    return (c.night, c.kind, c.filter, c.exptime, c.count, c.exptime_min, c.exptime_max)


def _night_groups(truth: Counter[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Every night's counts per kind, filter and exposure group, the oldest night
    first, within a night by kind, filter and exposure time: from the latest frames
    themselves (the listing's definition)."""
    out = []
    for night in sorted({key[0] for key, n in truth.items() if n}):
        rows = []
        for kind, filt in {key[1:3] for key, n in truth.items() if n and key[0] == night}:
            mine = {key[3]: n for key, n in truth.items()
                    if n and key[:3] == (night, kind, filt)}
            if None in mine:
                rows.append((night, kind, filt, None, mine.pop(None), None, None))
            for g in exposure_groups(sorted(mine.items()), 0.01):
                rows.append((night, kind, filt, group_median(g), sum(n for _, n in g),
                             g[0][0], g[-1][0]))
        out += sorted(rows, key=lambda r: (r[1], r[2] or "", r[3] or 0.0))
    return out


def _periods_of(truth: Counter[tuple[Any, ...]], width: int
                ) -> dict[tuple[Any, ...], tuple[int, int]]:
    """Frames and nights per period, kind, filter and exposure group, from the
    latest frames themselves (the summaries' definition)."""
    out: dict[tuple[Any, ...], tuple[int, int]] = {}
    keys = {(night.isoformat()[:width], kind, filt) for night, kind, filt, _ in truth}
    for period, kind, filt in keys:
        mine = {key: n for key, n in truth.items() if n and key[1:3] == (kind, filt)
                and key[0].isoformat()[:width] == period}
        times = Counter[float]()
        for (_night, _kind, _filt, exptime), n in mine.items():
            if exptime is not None:
                times[exptime] += n
        groups = [[value for value, _ in g] for g in exposure_groups(sorted(times.items()),
                                                                     0.01)]
        unknown = [key for key in mine if key[3] is None]
        if unknown:
            out[(period, kind, filt, None, None)] = (sum(mine[k] for k in unknown),
                                                     len({k[0] for k in unknown}))
        for values in groups:
            members = [key for key in mine if key[3] in values]
            out[(period, kind, filt, values[0], values[-1])] = (
                sum(mine[k] for k in members), len({k[0] for k in members}))
    return out


def test_rebuilding_and_migration_0014_count_the_frames(catalogue_engine: Engine) -> None:
    from alembic import command

    from nightlog.catalogue.schema import _config

    upgrade(catalogue_engine)
    maker = make_sessionmaker(catalogue_engine)
    with maker() as session, session.begin():
        for n, setup in enumerate([("bias", None, 0.0, NIGHTS[0]), ("flat", "g'", 7.0, NIGHTS[0]),
                                   ("flat", "g'", 7.0, NIGHTS[1]), ("science", "i'", None,
                                                                    NIGHTS[1])]):
            _add(session, f"/raw/m{n}.fits", setup, n)
        _add(session, "/raw/m0.fits", ("bias", None, 0.0, NIGHTS[0]), 9)  # a new version
    with maker() as session:
        truth = _truth(session)
        assert sum(truth.values()) == 4
        assert _tallied(session) == truth
    with maker() as session, session.begin():
        session.execute(delete(NightTally))
        assert rebuild_tallies(session) == len(truth)
    with maker() as session:
        assert _tallied(session) == truth
    command.downgrade(_config(catalogue_engine), "0011")
    upgrade(catalogue_engine)
    with maker() as session:
        assert _tallied(session) == truth
