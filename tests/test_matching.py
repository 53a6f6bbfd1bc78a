"""Matching a frame with its masters: every rule, the nearest valid master, ties,
certified ranges, live mode, and explanations. SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nightlog.calibration.grouping import group_of
from nightlog.calibration.matching import match_frame, match_kind
from nightlog.calibration.policy import CalibrationPolicy
from nightlog.catalogue import frames as cf
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame, Master
from nightlog.header.model import NormalizedHeader
from nightlog.header.profiles import InstrumentProfile, ProfileRegistry

T0 = dt.datetime(2024, 3, 10, 6, 0, tzinfo=dt.UTC)
POLICY = CalibrationPolicy()


@pytest.fixture
def profile() -> InstrumentProfile:
    return ProfileRegistry.from_settings().get("generic")


@pytest.fixture
def session(catalogue_engine: Engine) -> Iterator[Session]:
    with make_sessionmaker(catalogue_engine)() as s:
        yield s


_counter = iter(range(1, 10**9))


def add_frame(session: Session, kind: str = "science", *, when: dt.datetime = T0,
              filt: str | None = "R", set_temp: float | None = -20.0,
              exptime: float = 60.0) -> Frame:
    n = next(_counter)
    norm = NormalizedHeader(
        profile="generic", kind=kind, raw_type=kind, exptime=exptime, filter=filt,  # type: ignore[arg-type]
        obs_time=when, night=(when - dt.timedelta(hours=12)).date(), shape=(24, 32),
        instrument="TESTCAM", detector="CCD-1", set_temp=set_temp,
    )
    facts = cf.FileFacts(path=f"/raw/{n}.fits", sha256=f"{n:064d}", size=1, mtime=when, hdu=0,
                         header_json=[])
    frame = cf.add_frame(session, facts, norm, software_version="t")
    session.flush()
    return frame


def add_master(session: Session, profile: InstrumentProfile, kind: str, *,
               mid: dt.datetime, like: Frame, n_frames: int = 5, version: int | None = None,
               **overrides: object) -> Master:
    group = group_of(like, kind, profile)
    fields = dict(
        kind=kind, profile=profile.name, instrument=like.instrument, setup_key=like.setup_key,
        group_key=group.key, group=group.as_dict(), filter=like.filter if kind == "flat" else None,
        set_temp=like.set_temp, exptime=None, is_rate=kind == "dark",
        night=(mid - dt.timedelta(hours=12)).date(),
        version=version if version is not None else next(_counter),
        path=f"/archive/{kind}-{next(_counter)}.fits", sha256="f" * 64, size=1,
        first_obs=mid - dt.timedelta(minutes=10), last_obs=mid + dt.timedelta(minutes=10),
        mid_time=mid, n_frames=n_frames, stats={}, parameters={}, quality="good",
        created_at=mid, software_version="t",
    )
    fields.update(overrides)
    master = Master(**fields)
    session.add(master)
    session.flush()
    return master


def test_nearest_valid_master_wins(session: Session, profile: InstrumentProfile) -> None:
    sci = add_frame(session)
    far = add_master(session, profile, "bias", mid=T0 - dt.timedelta(days=3), like=sci)
    near = add_master(session, profile, "bias", mid=T0 + dt.timedelta(hours=5), like=sci)
    add_master(session, profile, "bias", mid=T0 - dt.timedelta(days=40), like=sci)  # too old
    m = match_kind(session, sci, "bias", profile, POLICY, explain=True)
    assert m.chosen is not None and m.chosen.id == near.id
    assert {c.master.id: c.usable for c in m.candidates}[far.id]
    too_old = [c for c in m.candidates if not c.usable]
    assert [r.rule for r in too_old[0].rules if not r.passed] == ["valid"]


def test_group_fields_must_agree_and_are_explained(session: Session,
                                                   profile: InstrumentProfile) -> None:
    sci = add_frame(session, filt="R")
    other_filter = add_frame(session, "flat", filt="V")
    add_master(session, profile, "flat", mid=T0, like=other_filter)
    fast = match_kind(session, sci, "flat", profile, POLICY)
    m = match_kind(session, sci, "flat", profile, POLICY, explain=True)
    # With nothing usable, the fast path explains itself as fully as explain mode.
    assert fast.chosen is None and fast.reason == m.reason
    assert m.chosen is None
    (cand,) = m.candidates
    failed = [r for r in cand.rules if not r.passed]
    assert [r.rule for r in failed] == ["group.filter"]
    assert "frame R" in failed[0].detail and "master V" in failed[0].detail
    assert "group.filter" in m.reason


def test_set_temperature_tolerance(session: Session, profile: InstrumentProfile) -> None:
    sci = add_frame(session, set_temp=-20.0)
    close = add_frame(session, "dark", set_temp=-20.0 + profile.dark_temp_tolerance / 2)
    far = add_frame(session, "dark", set_temp=-20.0 + profile.dark_temp_tolerance * 3)
    ok = add_master(session, profile, "dark", mid=T0 + dt.timedelta(days=2), like=close)
    add_master(session, profile, "dark", mid=T0, like=far)
    assert match_kind(session, sci, "dark", profile, POLICY).chosen == ok


def test_bad_and_superseded_masters_are_not_used(session: Session,
                                                 profile: InstrumentProfile) -> None:
    sci = add_frame(session)
    old = add_master(session, profile, "bias", mid=T0, like=sci)
    bad = add_master(session, profile, "bias", mid=T0 + dt.timedelta(minutes=1), like=sci,
                     quality="bad", quality_reason="light leak")
    new = add_master(session, profile, "bias", mid=T0 + dt.timedelta(hours=2), like=sci,
                     version=2)
    old.superseded_by_id = new.id
    session.flush()
    assert match_kind(session, sci, "bias", profile, POLICY).chosen == new
    m = match_kind(session, sci, "bias", profile, POLICY, explain=True)
    assert m.chosen == new
    verdicts = {c.master.id: {r.rule: r.passed for r in c.rules} for c in m.candidates}
    assert verdicts[bad.id]["quality"] is False
    assert verdicts[old.id]["current"] is False


def test_ties_go_to_same_night_then_more_frames_then_newer(session: Session,
                                                           profile: InstrumentProfile) -> None:
    when = dt.datetime(2024, 3, 10, 10, 0, tzinfo=dt.UTC)  # night of 2024-03-09
    sci = add_frame(session, when=when)
    assert sci.night == dt.date(2024, 3, 9)
    # Equidistant (2 h): one the next night, one the same night.
    add_master(session, profile, "bias", mid=when + dt.timedelta(hours=2), like=sci,
               night=dt.date(2024, 3, 10), version=1)
    same = add_master(session, profile, "bias", mid=when - dt.timedelta(hours=2), like=sci,
                      night=dt.date(2024, 3, 9), version=1)
    assert match_kind(session, sci, "bias", profile, POLICY).chosen == same
    more = add_master(session, profile, "bias", mid=when - dt.timedelta(hours=2), like=sci,
                      night=dt.date(2024, 3, 9), n_frames=9, version=2)
    assert match_kind(session, sci, "bias", profile, POLICY).chosen == more
    newer = add_master(session, profile, "bias", mid=when - dt.timedelta(hours=2), like=sci,
                       night=dt.date(2024, 3, 9), n_frames=9, version=3)
    assert match_kind(session, sci, "bias", profile, POLICY).chosen == newer


def test_certified_range_overrides_the_window(session: Session,
                                              profile: InstrumentProfile) -> None:
    sci = add_frame(session)
    master = add_master(session, profile, "flat", mid=T0 - dt.timedelta(days=60), like=sci,
                        valid_from=T0 - dt.timedelta(days=61), valid_until=T0 + dt.timedelta(1))
    assert match_kind(session, sci, "flat", profile, POLICY).chosen == master
    master.valid_until = T0
    session.flush()
    assert match_kind(session, sci, "flat", profile, POLICY).chosen is None


def test_live_mode_uses_only_earlier_masters(session: Session, profile: InstrumentProfile) -> None:
    sci = add_frame(session)
    later = add_master(session, profile, "bias", mid=T0 + dt.timedelta(hours=1), like=sci)
    earlier = add_master(session, profile, "bias", mid=T0 - dt.timedelta(hours=3), like=sci)
    assert match_kind(session, sci, "bias", profile, POLICY).chosen == later
    assert match_kind(session, sci, "bias", profile, POLICY, live=True).chosen == earlier


def test_what_each_kind_needs(session: Session, profile: InstrumentProfile) -> None:
    assert set(match_frame(session, add_frame(session), profile, POLICY)) == {
        "bias", "dark", "flat"}
    assert set(match_frame(session, add_frame(session, "flat"), profile, POLICY)) == {
        "bias", "dark"}
    assert match_frame(session, add_frame(session, "bias"), profile, POLICY) == {}


def test_non_scaling_darks_match_by_exposure(session: Session, profile: InstrumentProfile) -> None:
    fixed = dataclasses.replace(profile, darks_scale=False)
    sci = add_frame(session, exptime=90.0)
    d90 = add_frame(session, "dark", exptime=91.0)
    d300 = add_frame(session, "dark", exptime=300.0)
    near_in_time = add_master(session, fixed, "dark", mid=T0, like=d300)
    right_exposure = add_master(session, fixed, "dark", mid=T0 + dt.timedelta(days=5), like=d90)
    m = match_kind(session, sci, "dark", fixed, POLICY)
    assert m.chosen == right_exposure
    wrong = next(c for c in m.candidates if c.master == near_in_time)
    assert [r.rule for r in wrong.rules if not r.passed] == ["group.exptime"]


@settings(max_examples=25, deadline=None)
@given(offsets=st.lists(st.integers(-40 * 24, 40 * 24), min_size=1, max_size=6, unique=True))
def test_property_choice_is_the_nearest_usable(offsets: list[int]) -> None:
    """Whatever the masters' times, the choice is a usable one at minimum distance."""
    from sqlalchemy import create_engine as sa_engine

    from nightlog.catalogue.models import Base

    engine = sa_engine("sqlite://")
    Base.metadata.create_all(engine)
    profile = ProfileRegistry.from_settings().get("generic")
    with Session(engine) as s:
        sci = add_frame(s)
        masters = [add_master(s, profile, "bias", mid=T0 + dt.timedelta(hours=h), like=sci)
                   for h in offsets]
        m = match_kind(s, sci, "bias", profile, POLICY)
        # The database's narrowing never changes the choice.
        assert match_kind(s, sci, "bias", profile, POLICY, explain=True).chosen is m.chosen
        window = dt.timedelta(days=POLICY.validity_days["bias"])
        valid = [x for x in masters if abs(x.mid_time - T0) <= window]
        if not valid:
            assert m.chosen is None
        else:
            assert m.chosen is not None
            assert abs(m.chosen.mid_time - T0) == min(abs(x.mid_time - T0) for x in valid)
    engine.dispose()


_MASTER = st.fixed_dictionaries({
    "hours": st.integers(-12 * 24, 12 * 24).map(lambda h: h - h % 6),  # many ties
    "filter": st.sampled_from(["R", "V", None]),
    "set_temp": st.sampled_from([-20.0, -20.4, -25.0]),
    "bad": st.booleans(),
    "superseded": st.booleans(),
    "certified": st.none() | st.tuples(st.integers(-20, 5), st.integers(1, 20)),
    "n_frames": st.integers(3, 7),
})


@settings(max_examples=60, deadline=None)
@given(specs=st.lists(_MASTER, min_size=1, max_size=10), live=st.booleans(),
       kind=st.sampled_from(["bias", "dark", "flat"]))
def test_property_fast_path_chooses_as_explain_does(specs: list[dict[str, object]],
                                                     live: bool, kind: str) -> None:
    """The database narrowing (nearest masters, SQL pre-filters) chooses exactly the
    master that applying every rule to every master chooses."""
    from sqlalchemy import create_engine as sa_engine

    from nightlog.catalogue.models import Base

    engine = sa_engine("sqlite://")
    Base.metadata.create_all(engine)
    profile = ProfileRegistry.from_settings().get("generic")
    policy = dataclasses.replace(POLICY, validity_days={"bias": 5.0, "dark": 8.0,
                                                        "flat": 3.0})
    with Session(engine) as s:
        sci = add_frame(s)
        latest = None
        for spec in specs:
            like = add_frame(s, kind, filt=spec["filter"],  # type: ignore[arg-type]
                             set_temp=spec["set_temp"])  # type: ignore[arg-type]
            mid = T0 + dt.timedelta(hours=spec["hours"])  # type: ignore[arg-type]
            extra: dict[str, object] = {}
            if spec["certified"] is not None:
                lo, hi = spec["certified"]  # type: ignore[misc]
                extra = {"valid_from": T0 + dt.timedelta(days=lo),
                         "valid_until": T0 + dt.timedelta(days=lo + hi)}
            m = add_master(s, profile, kind, mid=mid, like=like,
                           n_frames=spec["n_frames"],  # type: ignore[arg-type]
                           quality="bad" if spec["bad"] else "good", **extra)
            if spec["superseded"] and latest is not None:
                m.superseded_by_id = latest.id
            latest = m
        s.flush()
        fast = match_kind(s, sci, kind, profile, policy, live=live)
        full = match_kind(s, sci, kind, profile, policy, live=live, explain=True)
        assert fast.chosen is full.chosen
        assert fast.reason == full.reason
    engine.dispose()


def test_overlapping_certifications_of_a_group_are_refused(session: Session,
                                                          profile: InstrumentProfile) -> None:
    from nightlog.catalogue.masters import certify_master
    from nightlog.errors import CatalogueError

    sci = add_frame(session)
    a = add_master(session, profile, "bias", mid=T0, like=sci)
    b = add_master(session, profile, "bias", mid=T0 + dt.timedelta(days=1), like=sci)
    certify_master(session, a, T0 - dt.timedelta(days=10), T0 + dt.timedelta(days=10))
    with pytest.raises(CatalogueError, match=f"master {a.id} of the same group"):
        certify_master(session, b, T0 + dt.timedelta(days=5), T0 + dt.timedelta(days=20))
    # Adjacent ranges do not overlap.
    certify_master(session, b, T0 + dt.timedelta(days=10), T0 + dt.timedelta(days=20))
    assert match_kind(session, sci, "bias", profile, POLICY).chosen == a
