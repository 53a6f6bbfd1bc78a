"""The calibration frames waiting for a master are exactly those no master lists
among its inputs, whatever sequence of new files, mosaics, new versions at a path,
moves, masters (used and rejected inputs, external ones of none) and frames marked
bad recorded them; ``calib build`` reads from them the same nights as the anti-join
of every calibration frame with the masters' inputs; migration 0016 fills the table
from an existing catalogue and its downgrade drops it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nightlog.catalogue import frames as cf
from nightlog.catalogue.awaiting import CALIBRATION_KINDS, rebuild_awaiting
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.masters import MasterInputRecord, NewMaster, add_master
from nightlog.catalogue.models import AwaitingMaster, Frame, MasterInput
from nightlog.catalogue.schema import current_revision, upgrade
from nightlog.coordinator.masters import _ORDER, _candidate_nights
from nightlog.header.model import NormalizedHeader
from nightlog.states import FrameStatus

NIGHTS = (dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3))
PATHS = tuple(f"/raw/f{i}.fits" for i in range(4))
KINDS = ("bias", "dark", "flat", "science")
SETUP = st.tuples(st.sampled_from(KINDS), st.sampled_from(NIGHTS))
ADD = st.tuples(st.just("add"), st.sampled_from(PATHS), SETUP)
MOSAIC = st.tuples(st.just("mosaic"), st.sampled_from(PATHS), SETUP)
MOVE = st.tuples(st.just("move"), st.integers(0, 30),
                 st.sampled_from((*PATHS, "/raw/moved.fits")))
#: A master considering some of the frames added so far, each used or rejected.
MASTER = st.tuples(st.just("master"),
                   st.lists(st.tuples(st.integers(0, 30), st.booleans()), max_size=4),
                   st.sampled_from(KINDS[:3]))
BAD = st.tuples(st.just("bad"), st.integers(0, 30), st.none())
STEP = st.one_of(ADD, MOSAIC, MOVE, MASTER, BAD)


def _norm(kind: str, night: dt.date, n: int, ccd: str | None = None) -> NormalizedHeader:
    when = dt.datetime.combine(night, dt.time(23), tzinfo=dt.UTC) + dt.timedelta(minutes=n)
    return NormalizedHeader(profile="lfc", kind=kind, raw_type=kind.upper(),
                            exptime=0.0 if kind == "bias" else 7.0, filter=None,
                            obs_time=when, night=night, shape=(20, 30), instrument="LFC",
                            ccd=ccd)


def _facts(path: str, night: dt.date, n: int) -> cf.FileFacts:
    when = dt.datetime.combine(night, dt.time(23), tzinfo=dt.UTC) + dt.timedelta(minutes=n)
    return cf.FileFacts(path=path, sha256=f"{n:064x}", size=1, mtime=when, hdu=0,
                        header_json=[])


def _add(session: Session, path: str, kind: str, night: dt.date, n: int,
         ccds: tuple[str, ...] = ()) -> list[Frame]:
    facts = _facts(path, night, n)
    if not ccds:
        return [cf.add_frame(session, facts, _norm(kind, night, n), software_version="test")]
    return cf.add_frames(session, [(facts, _norm(kind, night, n, ccd)) for ccd in ccds],
                         software_version="test")


def _master(session: Session, kind: str, frames: list[tuple[Frame, bool]], n: int) -> None:
    night = frames[0][0].night if frames else NIGHTS[0]
    when = dt.datetime.combine(night, dt.time(23), tzinfo=dt.UTC)
    new = NewMaster(kind=kind, profile="lfc", instrument="LFC", setup_key="s",
                    group_key=f"group-{n}", night=night, version=1, path=f"/m/{n}.fits",
                    sha256=f"m{n:063x}", size=1, first_obs=when, last_obs=when,
                    n_frames=max(1, len(frames)), stats={}, parameters={},
                    software_version="test")
    chosen = {f.id: (f, used) for f, used in frames}  # a frame is considered once
    add_master(session, new, [MasterInputRecord(frame_id=f.id, sha256=f.sha256, used=used,
                                                reason=None if used else "rejected")
                              for f, used in chosen.values()])


def test_the_kinds_that_wait_are_those_built_into_masters() -> None:
    assert set(CALIBRATION_KINDS) == set(_ORDER)


def _nights_of_every_frame(session: Session) -> list[dt.date]:
    """The nights ``calib build`` looked at before the waiting frames were kept apart:
    every latest, usable calibration frame probed against the masters' inputs."""
    used = select(MasterInput.frame_id).where(MasterInput.frame_id == Frame.id)
    rows = session.execute(
        select(Frame.night).where(Frame.kind.in_(("bias", "dark", "flat")),
                                  Frame.is_latest.is_(True), Frame.status == FrameStatus.OK,
                                  ~used.exists()).distinct())
    return sorted(r[0] for r in rows)


def _waiting(session: Session) -> set[tuple[int, dt.date, str]]:
    return {(w.frame_id, w.night, w.kind) for w in session.scalars(select(AwaitingMaster))}


def _truth(session: Session) -> set[tuple[int, dt.date, str]]:
    """Every calibration frame (any version, any status) that no master considered."""
    considered = set(session.scalars(select(MasterInput.frame_id)))
    return {(f.id, f.night, f.kind) for f in session.scalars(select(Frame))
            if f.kind in ("bias", "dark", "flat") and f.id not in considered}


def _run(session: Session, steps: list[tuple[Any, ...]]) -> list[Frame]:
    added: list[Frame] = []
    for n, (op, a, b) in enumerate(steps):
        try:
            with session.begin_nested():
                if op in ("add", "mosaic"):
                    kind, night = b
                    added += _add(session, a, kind, night, n,
                                  ("A", "B") if op == "mosaic" else ())
                elif op == "move" and added:
                    frame = added[a % len(added)]
                    if frame.path != b:
                        cf.move_frames(session, cf.frames_of_file(session, frame.sha256), b,
                                       frame.mtime)
                elif op == "master":
                    _master(session, b, [(added[i % len(added)], used) for i, used in a
                                         if added], n)
                elif op == "bad" and added:
                    added[a % len(added)].status = FrameStatus.BAD
                session.flush()
        except IntegrityError:
            # The path already holds a version of the number the frame would take
            # (a path whose latest frame moved away starts again at 1): refused.
            pass
    return added


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=1, max_size=16))
def test_calib_build_reads_the_nights_the_anti_join_finds(catalogue_engine: Engine,
                                                          steps: list[tuple[Any, ...]]) -> None:
    # The engine (migrated by its fixture) lasts for every example; each rolls back.
    with make_sessionmaker(catalogue_engine)() as session:
        _run(session, steps)
        assert _waiting(session) == _truth(session)
        assert _candidate_nights(session) == _nights_of_every_frame(session)
        # A recount from the frames finds the same rows.
        assert rebuild_awaiting(session) == len(_truth(session))
        assert _waiting(session) == _truth(session)
        session.rollback()


def test_a_master_takes_out_every_frame_it_considered_of_any_night(
        catalogue_engine: Engine) -> None:
    # A multi-night master (the profile's fallback nights) takes every frame it
    # considered out, whatever their night; science frames never wait.
    with make_sessionmaker(catalogue_engine)() as session:
        first = _add(session, "/raw/b1.fits", "bias", NIGHTS[0], 1)[0]
        second = _add(session, "/raw/b2.fits", "bias", NIGHTS[1], 2)[0]
        flat = _add(session, "/raw/f1.fits", "flat", NIGHTS[2], 3)[0]
        _add(session, "/raw/s1.fits", "science", NIGHTS[2], 4)
        assert _candidate_nights(session) == list(NIGHTS)
        _master(session, "bias", [(first, True), (second, False)], 5)
        assert _candidate_nights(session) == [NIGHTS[2]]
        assert {w[0] for w in _waiting(session)} == {flat.id}
        session.rollback()


def test_migration_0016_fills_the_table_and_its_downgrade_drops_it(
        catalogue_engine: Engine) -> None:
    from alembic import command

    from nightlog.catalogue.schema import _config

    maker = make_sessionmaker(catalogue_engine)
    with maker() as session, session.begin():
        used = _add(session, "/raw/used.fits", "bias", NIGHTS[0], 1)[0]
        rejected = _add(session, "/raw/rejected.fits", "flat", NIGHTS[0], 2)[0]
        waiting = _add(session, "/raw/waiting.fits", "dark", NIGHTS[1], 3)[0]
        _add(session, "/raw/science.fits", "science", NIGHTS[1], 4)
        _master(session, "bias", [(used, True), (rejected, False)], 5)
        expected = {(waiting.id, NIGHTS[1], "dark")}
    with maker() as session:
        assert _waiting(session) == expected
    command.downgrade(_config(catalogue_engine), "0015_tally_groups")
    assert current_revision(catalogue_engine) == "0015_tally_groups"
    assert "awaiting_masters" not in inspect(catalogue_engine).get_table_names()
    # A catalogue at 0015 with a frame in a master and one in none: the upgrade
    # finds the second alone waiting.
    assert upgrade(catalogue_engine) == ("0015_tally_groups", "0016_awaiting_masters")
    assert {ix["name"] for ix in inspect(catalogue_engine).get_indexes("awaiting_masters")
            } == {"ix_awaiting_masters_night"}
    with maker() as session:
        assert _waiting(session) == expected
        assert _candidate_nights(session) == [NIGHTS[1]] == _nights_of_every_frame(session)
