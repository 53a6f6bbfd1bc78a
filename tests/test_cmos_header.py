"""CMOS headers as N.I.N.A., SGP and APT write them: the gain setting is not e-/ADU.

Headers follow the real ones quoted in /work/shared/reference/mef_cmos_headers.md
section 2 (N.I.N.A. 1.10.2.90 and SGP 3.1 on a ZWO ASI294MC Pro)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits
from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.catalogue.engine import create_engine
from nightlog.catalogue.models import Frame, QuarantinedFile
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.errors import InvalidValueError, ProfileError
from nightlog.header.normalize import normalize_header
from nightlog.header.profiles import ProfileRegistry
from nightlog.settings import load_settings
from tests.cmos_camera import EGAIN, PROFILE_TOML, Camera

#: Section 2a verbatim (the image cards aside), N.I.N.A. on an ASI294MC Pro.
NINA = """IMAGETYP= 'LIGHT'
EXPOSURE=                 30.0
EXPTIME =                 30.0
DATE-LOC= '2021-03-02T21:19:00.455'
DATE-OBS= '2021-03-02T20:19:00.455'
XBINNING=                    1
YBINNING=                    1
GAIN    =                  120
OFFSET  =                   30
EGAIN   =     1.00224268436432
XPIXSZ  =                 4.63
YPIXSZ  =                 4.63
INSTRUME= 'ZWO ASI294MC Pro'
SET-TEMP=                -10.0
CCD-TEMP=                -10.0
BAYERPAT= 'RGGB'
XBAYROFF=                    0
YBAYROFF=                    0
USBLIMIT=                   40
ROWORDER= 'TOP-DOWN'
SWCREATE= 'N.I.N.A. 1.10.2.90'"""


def nina(**cards: Any) -> dict[str, Any]:
    header: dict[str, Any] = {"NAXIS": 2, "NAXIS1": 4144, "NAXIS2": 2822}
    for line in NINA.splitlines():
        card = fits.Card.fromstring(line.ljust(80))
        header[card.keyword] = card.value
    header.update(cards)
    return header


@pytest.fixture(scope="module")
def reg() -> ProfileRegistry:
    return ProfileRegistry.from_settings()


def test_the_nina_header_is_read_by_the_zwo_profile(reg: ProfileRegistry) -> None:
    header = nina()
    profile = reg.match(header)
    assert profile.name == "zwo_nina"
    norm = normalize_header(header, profile)
    assert norm.gain_setting == 120 and norm.offset == 30
    # The profile's table (N.I.N.A.'s own EGAIN at this setting) gives the e-/ADU.
    assert norm.gain == pytest.approx(1.00224268436432)
    assert norm.bayer_pattern == "RGGB"
    assert norm.extra["bayer_offset"] == "XBAYROFF=0 YBAYROFF=0"
    assert "without debayering" in norm.extra["bayer"]
    # 14 bits shifted to 16: the highest stored value is (2**14 - 1) * 4.
    assert norm.saturation == (2**14 - 1) * 4
    assert "bit_depth 14" in norm.extra["saturation_source"]


def test_gain_zero_is_a_setting_and_egain_the_e_per_adu(reg: ProfileRegistry) -> None:
    norm = normalize_header(nina(GAIN=0, EGAIN=3.6), reg.get("zwo_nina"))
    assert norm.gain_setting == 0
    assert norm.gain == 3.6  # no table entry for setting 0: the header's EGAIN
    assert "not in the profile's gain_table" in norm.extra["gain_note"]


def test_the_table_wins_over_sgps_different_egain(reg: ProfileRegistry) -> None:
    # SGP writes EGAIN 3.99 at GAIN 120 for the same camera (section 2b).
    sgp = nina(EGAIN=3.99000000953674)
    norm = normalize_header(sgp, reg.get("zwo_nina"))
    assert norm.gain == pytest.approx(1.00224268436432)
    assert norm.extra["gain_source"] == "profile gain_table[120]"
    assert norm.extra["header_gain"].startswith("EGAIN=3.99")


def test_under_the_generic_profile_gain_zero_is_refused_with_the_fix(
        reg: ProfileRegistry) -> None:
    header = nina(GAIN=0, SWCREATE="SomethingElse")
    assert reg.match(header).name == "generic"
    with pytest.raises(InvalidValueError, match=r"GAIN=0.*gain_setting_keywords"):
        normalize_header(header, reg.get("generic"))


def test_a_keyword_cannot_be_both_setting_and_e_per_adu() -> None:
    with pytest.raises(ProfileError, match="cannot hold both"):
        ProfileRegistry.from_settings({"cam": {"gain_setting_keywords": ["GAIN"]}})


def test_profile_keys_are_validated() -> None:
    for table, message in (({"bit_depth": 17}, "16-bit"), ({"bit_depth": 0}, ">= 1"),
                           ({"gain_table": {"x": 1.0}}, "a number"),
                           ({"gain_table": {"0": 0}}, "out of range"),
                           ({"dark_scaling": "cubic"}, "known: linear"),
                           ({"dark_scaling": "linear", "darks_scale": False}, "contradicts"),
                           ({"noisy_factor": 1.0}, "out of range")):
        with pytest.raises(ProfileError, match=message):
            ProfileRegistry.from_settings({"cam": table})
    exact = ProfileRegistry.from_settings({"cam": {"darks_scale": False}}).get("cam")
    assert exact.dark_scaling == "exact_exposure"
    glow = ProfileRegistry.from_settings({"cam": {"dark_scaling": "interpolate"}}).get("cam")
    assert not glow.darks_scale


def test_a_very_short_dark_is_a_bias(reg: ProfileRegistry) -> None:
    norm = normalize_header(nina(IMAGETYP="DARK", EXPTIME=0.00003, EXPOSURE=0.00003),
                            reg.get("zwo_nina"))
    assert norm.kind == "bias" and "bias_max_exptime" in norm.extra["kind"]
    long = normalize_header(nina(IMAGETYP="DARK", EXPTIME=0.5), reg.get("zwo_nina"))
    assert long.kind == "dark"


def test_a_gain_zero_frame_is_ingested_not_quarantined(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    camera = Camera(gain_setting=0)
    camera.write(raw / "light_0001.fits", "LIGHT", 60.0, sky_e=50.0)
    (tmp_path / "nightlog.toml").write_text(PROFILE_TOML, encoding="utf-8")
    settings = load_settings(env={}, cwd=tmp_path)
    engine = create_engine(settings.database_url)
    try:
        upgrade(engine)
        run_ingest(engine, discover([raw], settings.ingest.patterns),
                   IngestContext.from_settings(settings))
        with Session(engine) as session:
            assert session.scalars(select(QuarantinedFile)).all() == []
            frame = session.scalars(select(Frame)).one()
            assert frame.profile == "asi1600"
            assert frame.gain_setting == 0 and frame.offset == 30
            assert frame.gain == EGAIN
            assert frame.saturation == (2**12 - 1) * 16
    finally:
        engine.dispose()


def test_the_test_profile_parses() -> None:
    table = tomllib.loads(PROFILE_TOML)["instruments"]
    assert ProfileRegistry.from_settings(table).get("asi1600").quantisation_step == 16
