"""A CMOS master matches a frame only at the same gain setting, offset, readout
mode, binning and (darks) temperature; glowing darks are matched by exposure or
interpolated, and the match says which. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nightlog.calibration.grouping import group_of
from nightlog.calibration.matching import match_kind
from nightlog.calibration.policy import CalibrationPolicy
from nightlog.catalogue import frames as cf
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame, Master
from nightlog.header.normalize import normalize_header
from nightlog.header.profiles import InstrumentProfile, ProfileRegistry
from tests.cmos_camera import PROFILE_TOML, T0, Camera

POLICY = CalibrationPolicy()
_ids = iter(range(1, 10**9))


@pytest.fixture
def profile() -> InstrumentProfile:
    tables = tomllib.loads(PROFILE_TOML)["instruments"]
    return ProfileRegistry.from_settings(tables).get("asi1600")


@pytest.fixture
def session(catalogue_engine: Engine) -> Iterator[Session]:
    with make_sessionmaker(catalogue_engine)() as s:
        yield s


def add_frame(session: Session, profile: InstrumentProfile, kind: str, exptime: float,
              **settings: Any) -> Frame:
    """A catalogued frame whose row comes from a N.I.N.A. header, normalised."""
    n = next(_ids)
    header = Camera().header(kind, exptime, T0 + dt.timedelta(minutes=n),
                             gain_setting=settings.get("gain_setting", 0),
                             offset=settings.get("offset", 30),
                             set_temp=settings.get("set_temp", -10.0),
                             binning=settings.get("binning", 1),
                             readout=settings.get("readout"))
    header["NAXIS"], header["NAXIS1"], header["NAXIS2"] = 2, 128, 96
    norm = normalize_header(header, profile)
    facts = cf.FileFacts(path=f"/raw/{n}.fits", sha256=f"{n:064d}", size=1, mtime=T0, hdu=0,
                         header_json=[])
    frame = cf.add_frame(session, facts, norm, software_version="t")
    session.flush()
    return frame


def add_master(session: Session, profile: InstrumentProfile, kind: str, like: Frame
               ) -> Master:
    """A master of ``like``'s group, as a build records it."""
    group = group_of(like, kind, profile)
    master = Master(
        kind=kind, profile=profile.name, instrument=like.instrument, setup_key=like.setup_key,
        group_key=group.key, group=group.as_dict(), filter=None, set_temp=like.set_temp,
        exptime=like.exptime if kind == "dark" else None, is_rate=False,
        night=like.night, version=next(_ids), path=f"/archive/{kind}-{next(_ids)}.fits",
        sha256="f" * 64, size=1, first_obs=like.obs_time, last_obs=like.obs_time,
        mid_time=like.obs_time, n_frames=5, stats={}, parameters={}, quality="good",
        created_at=like.obs_time, software_version="t")
    session.add(master)
    session.flush()
    return master


def _failed(match: Any) -> set[str]:
    return {r.rule for c in match.candidates for r in c.rules if not r.passed}


@pytest.mark.parametrize(("key", "frame_value", "master_value"), [
    ("gain_setting", 120, 0),
    ("offset", 30, 10),
    ("readout", "High Gain", "Low Noise"),
    ("binning", 1, 2),
])
def test_a_bias_never_matches_across_a_setting(session: Session, profile: InstrumentProfile,
                                               key: str, frame_value: Any,
                                               master_value: Any) -> None:
    frame = add_frame(session, profile, "LIGHT", 60.0, **{key: frame_value})
    other = add_frame(session, profile, "BIAS", 0.0, **{key: master_value})
    add_master(session, profile, "bias", other)
    match = match_kind(session, frame, "bias", profile, POLICY)
    field = {"readout": "readout_mode"}.get(key, key)
    assert match.chosen is None
    assert _failed(match) == {f"group.{field}"}
    assert f"group.{field}" in match.reason
    # The same setting matches: the rule, not something else, refused it.
    same = add_master(session, profile, "bias",
                      add_frame(session, profile, "BIAS", 0.0, **{key: frame_value}))
    assert match_kind(session, frame, "bias", profile, POLICY).chosen is same


def test_a_dark_never_matches_beyond_the_temperature_tolerance(
        session: Session, profile: InstrumentProfile) -> None:
    frame = add_frame(session, profile, "LIGHT", 60.0, set_temp=-10.0)
    warm = add_master(session, profile, "dark",
                      add_frame(session, profile, "DARK", 60.0, set_temp=-5.0))
    match = match_kind(session, frame, "dark", profile, POLICY)
    assert match.chosen is None and _failed(match) == {"group.set_temp"}
    detail = next(r.detail for c in match.candidates for r in c.rules
                  if r.rule == "group.set_temp")
    assert "tolerance 1" in detail
    near = add_master(session, profile, "dark",
                      add_frame(session, profile, "DARK", 60.0, set_temp=-10.8))
    chosen = match_kind(session, frame, "dark", profile, POLICY)
    assert chosen.chosen is near and chosen.chosen is not warm


def test_a_dark_never_matches_across_a_gain_setting(session: Session,
                                                    profile: InstrumentProfile) -> None:
    frame = add_frame(session, profile, "LIGHT", 60.0, gain_setting=139)
    add_master(session, profile, "dark", add_frame(session, profile, "DARK", 60.0))
    match = match_kind(session, frame, "dark", profile, POLICY)
    assert match.chosen is None and "group.gain_setting" in _failed(match)


def test_glowing_darks_exact_then_interpolated_never_extrapolated(
        session: Session, profile: InstrumentProfile) -> None:
    darks = {t: add_master(session, profile, "dark", add_frame(session, profile, "DARK", t))
             for t in (30.0, 50.0, 70.0, 120.0)}
    exact = match_kind(session, add_frame(session, profile, "LIGHT", 50.0), "dark", profile,
                       POLICY)
    assert exact.chosen is darks[50.0] and exact.second is None
    assert exact.how.startswith("exact exposure: the 50 s master dark")
    between = match_kind(session, add_frame(session, profile, "LIGHT", 60.0), "dark", profile,
                         POLICY)
    assert (between.chosen, between.second) == (darks[50.0], darks[70.0])
    assert between.how == ("interpolated: the 50 s and 70 s master darks for a 60 s frame "
                           "(weights 0.500 and 0.500)")
    beyond = match_kind(session, add_frame(session, profile, "LIGHT", 300.0), "dark", profile,
                        POLICY)
    assert beyond.chosen is None and "never extrapolated" in beyond.reason
    # A flat's build takes one dark: only one of its own exposure.
    flat = match_kind(session, add_frame(session, profile, "FLAT", 60.0), "dark", profile,
                      POLICY, allow_pair=False)
    assert flat.chosen is None and "for science frames" in flat.reason


def test_exact_exposure_darks_are_never_scaled(session: Session,
                                               profile: InstrumentProfile) -> None:
    import dataclasses

    exact = dataclasses.replace(profile, dark_scaling="exact_exposure", darks_scale=False)
    add_master(session, exact, "dark", add_frame(session, exact, "DARK", 120.0))
    match = match_kind(session, add_frame(session, exact, "LIGHT", 60.0), "dark", exact,
                       POLICY)
    assert match.chosen is None and _failed(match) == {"group.exptime"}


def test_the_gain_says_it_came_from_the_table_or_egain(session: Session) -> None:
    from nightlog.calibration.detector_numbers import gain_of

    zwo = ProfileRegistry.from_settings().get("zwo_nina")
    tabled = add_frame(session, zwo, "LIGHT", 60.0, gain_setting=120)
    number = gain_of(tabled, zwo)
    assert number.value == pytest.approx(1.00224268436432)
    assert number.source == "profile zwo_nina gain_table[120]"
    other = add_frame(session, zwo, "LIGHT", 60.0, gain_setting=0)
    assert other.gain_setting == 0
    assert gain_of(other, zwo).value == 0.25  # the test camera's EGAIN
    assert gain_of(other, zwo).source.startswith("header EGAIN")
