"""Header normalisation: real headers against reviewed goldens, and the rules one by one."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import importlib.util
import json
import re
import tomllib
import warnings
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits
from hypothesis import given, settings
from hypothesis import strategies as st

from nightlog.errors import HeaderError, InvalidValueError, MissingKeywordError, SectionError
from nightlog.header.model import Site
from nightlog.header.normalize import normalize_header
from nightlog.header.profiles import InstrumentProfile, ProfileRegistry

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
UTC = dt.UTC

_spec = importlib.util.spec_from_file_location("golden_regenerate",
                                               ROOT / "tests" / "golden" / "regenerate.py")
assert _spec is not None and _spec.loader is not None
golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(golden)


@pytest.fixture(scope="module")
def reg() -> ProfileRegistry:
    return ProfileRegistry.from_settings()


@pytest.fixture(scope="module")
def generic(reg: ProfileRegistry) -> InstrumentProfile:
    return reg.get("generic")


def lfc_bias_header() -> fits.Header:
    return fits.Header.fromtextfile(DATA / "lfc_bias_ccd.001.0.hdr")


def minimal(**cards: Any) -> dict[str, Any]:
    """A small generic header; ``None`` removes a card."""
    header: dict[str, Any] = {"NAXIS": 2, "NAXIS1": 40, "NAXIS2": 30, "IMAGETYP": "LIGHT",
                              "EXPTIME": 10.0, "DATE-OBS": "2020-05-01T04:00:00"}
    for key, value in cards.items():
        key = key.replace("_", "-") if key in ("DATE_OBS", "TIME_OBS", "MJD_OBS") else key
        if value is None:
            header.pop(key, None)
        else:
            header[key] = value
    return header


# --- Golden files: real headers, reviewed by hand -------------------------------------

HEADER_FILES = golden.header_files()


def test_every_header_in_tests_data_has_a_golden() -> None:
    assert len(HEADER_FILES) == 24  # 22 msumastro files and the 2 reference dumps
    for path in HEADER_FILES:
        assert golden.golden_path(path).exists(), path.name


@pytest.mark.parametrize("path", HEADER_FILES, ids=lambda p: p.name)
def test_real_header_matches_its_golden(path: Path) -> None:
    expected = json.loads(golden.golden_path(path).read_text(encoding="utf-8"))
    assert golden.record_for(path) == expected


def test_lfc_unescaped_filter_card_is_raw_and_parses_without_warning() -> None:
    raw = (DATA / "lfc_bias_ccd.001.0.hdr").read_text(encoding="ascii")
    assert "FILTER  = 'i'      '            / Filter description" in raw
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        header = lfc_bias_header()
    assert header["FILTER"] == "i'"
    assert header["UT"] == " 23:53:30.00"


def test_goldens_state_the_reference_facts() -> None:
    # Independent of the golden files: what the reference dumps say, read by a person.
    lfc = json.loads(golden.golden_path(DATA / "lfc_bias_ccd.001.0.hdr").read_text())
    norm = lfc["normalized"]
    assert (norm["kind"], norm["filter"], norm["exptime"]) == ("bias", "i'", 0.0)
    assert norm["obs_time"] == "2016-01-15T23:53:30+00:00" and norm["night"] == "2016-01-15"
    assert norm["setup_key"] == "LFC|SITe SI002 x 6|1x1|-|4128x2080"
    neon = json.loads(golden.golden_path(
        DATA / "neon-on-dome-10-sec-high-res-though-scope.fit").read_text())["normalized"]
    assert neon["kind"] == "unknown" and neon["raw_type"] is None  # no IMAGETYP at all
    assert neon["filter"] is None and neon["gain"] == 1.74  # FILTER='None', EGAIN


# --- The reference cameras -------------------------------------------------------------

def test_palomar_bias_and_science_share_night(reg: ProfileRegistry) -> None:
    bias = lfc_bias_header()
    science = lfc_bias_header()
    science.update({"IMAGETYP": "OBJECT", "OBJECT": "vv124_1", "EXPTIME": 300.062,
                    "DATE-OBS": "2016-01-16", "UT": " 09:47:21.00", "FILTER": "g'"})
    a = normalize_header(bias, reg.match(bias))
    b = normalize_header(science, reg.match(science))
    assert b.kind == "science" and b.filter == "g'" and b.exptime == 300.062
    assert b.obs_time == dt.datetime(2016, 1, 16, 9, 47, 21, tzinfo=UTC)
    assert a.night == b.night == dt.date(2016, 1, 15)
    assert a.setup_key == b.setup_key


def test_lfc_profile_gain_override_keeps_header_value(reg: ProfileRegistry) -> None:
    norm = normalize_header(lfc_bias_header(), reg.get("lfc"))
    assert norm.gain == 2.37 and norm.extra["header_gain"] == "GAIN=1.1"
    plain = normalize_header(lfc_bias_header(), reg.get("generic"))
    assert plain.gain == 1.1  # without an override, the header's value
    assert plain.trimsec is None and plain.biassec == "[2049:2080,1:4127]"


def test_aspen_full_frame_gets_profile_regions(reg: ProfileRegistry) -> None:
    header = fits.Header.fromtextfile(DATA / "aspen_light_kelt-16-b.hdr")
    norm = normalize_header(header, reg.match(header), shape=(4096, 4109))
    assert norm.profile == "aspen" and norm.shape == (4096, 4109)
    assert norm.biassec == "[4097:4109,1:4096]" and norm.trimsec == "[1:4096,1:4096]"
    assert norm.setup_key == "AspenCG16|-|1x1|Monochrome|4096x4109"


def test_aspen_old_date_form(reg: ProfileRegistry) -> None:
    header = fits.Header.fromtextfile(DATA / "aspen_light_kelt-16-b.hdr")
    del header["DATE-OBS"]  # leaves DATE = '23/08/18' and TIME-OBS = '08:49:30'
    norm = normalize_header(header, reg.get("aspen"))
    assert norm.obs_time == dt.datetime(2018, 8, 23, 8, 49, 30, tzinfo=UTC)
    assert norm.extra["time_source"] == "DATE+TIME-OBS"


def test_aspen_guide_sections_are_lenient(reg: ProfileRegistry) -> None:
    # A bare ':' is the whole axis, as MaxIm DL pipelines write it.
    header = minimal(INSTRUME="AspenCG16", DATASEC="[1:4096, :]")
    norm = normalize_header(header, reg.match(header), shape=(4096, 4109))
    assert norm.datasec == "[1:4096,:]"
    # A one-axis section is not a section: the Aspen profile notes and ignores it,
    # the generic profile refuses the frame.
    header = minimal(INSTRUME="AspenCG16", DATASEC="[1:4096]")
    norm = normalize_header(header, reg.match(header), shape=(4096, 4109))
    assert norm.datasec is None and "not a FITS section" in norm.extra["ignored_DATASEC"]
    with pytest.raises(SectionError, match=re.escape("DATASEC='[1:4096]'")):
        normalize_header(header, reg.get("generic"), shape=(4096, 4109))


# --- Rules one by one -------------------------------------------------------------------

def test_input_header_is_not_modified(reg: ProfileRegistry) -> None:
    header = lfc_bias_header()
    before = header.tostring()
    as_dict = dict(minimal())
    snapshot = copy.deepcopy(as_dict)
    normalize_header(header, reg.match(header))
    normalize_header(as_dict, reg.get("generic"))
    assert header.tostring() == before and as_dict == snapshot


@pytest.mark.parametrize(("cards", "kind", "exptime"), [
    ({"IMAGETYP": "BIAS", "EXPTIME": None, "EXPOSURE": None}, "bias", 0.0),
    ({"IMAGETYP": None, "OBSTYPE": "zero"}, "bias", 10.0),
    ({"IMAGETYP": None, "FRAME": 17, "OBSTYPE": None}, "unknown", 10.0),  # a counter
    ({"IMAGETYP": "Light Frame", "EXPTIME": None, "EXPOSURE": 5}, "science", 5.0),
    ({"IMAGETYP": "ARC"}, "unknown", 10.0),
])
def test_frame_kind_and_exposure(generic: InstrumentProfile, cards: dict[str, Any],
                                 kind: str, exptime: float) -> None:
    norm = normalize_header(minimal(**cards), generic)
    assert (norm.kind, norm.exptime) == (kind, exptime)


def test_unknown_type_keeps_raw_value(generic: InstrumentProfile) -> None:
    norm = normalize_header(minimal(IMAGETYP="  Focus   Frame "), generic)
    assert norm.kind == "unknown" and norm.raw_type == "Focus Frame"


@pytest.mark.parametrize(("value", "error", "fragment"), [
    (-1.0, InvalidValueError, "EXPTIME=-1.0: exposure time is negative"),
    (float("nan"), InvalidValueError, "EXPTIME=nan"),
    (float("inf"), InvalidValueError, "EXPTIME=inf"),
    ("ten", InvalidValueError, "EXPTIME='ten': not a number"),
    (True, InvalidValueError, "EXPTIME=True"),
])
def test_bad_exposure_times(generic: InstrumentProfile, value: Any,
                            error: type[HeaderError], fragment: str) -> None:
    with pytest.raises(error, match=re.escape(fragment)):
        normalize_header(minimal(EXPTIME=value), generic)


def test_missing_exposure_on_a_dark_is_an_error(generic: InstrumentProfile) -> None:
    with pytest.raises(MissingKeywordError, match="dark frame: none of EXPTIME, EXPOSURE"):
        normalize_header(minimal(IMAGETYP="DARK", EXPTIME=None), generic)


@pytest.mark.parametrize(("value", "expected"), [
    ("g'", "g'"), ("  r  ", "r"), ("None", None), ("NOFILT", None), ("No Filter", None),
    ("", None), ("Clear", "Clear"), ("H-alpha 656", "H-alpha 656"),
])
def test_filter_cleaning(generic: InstrumentProfile, value: str, expected: str | None) -> None:
    assert normalize_header(minimal(FILTER=value), generic).filter == expected


def test_filter_from_later_keyword(generic: InstrumentProfile) -> None:
    assert normalize_header(minimal(FILTERS="V"), generic).filter == "V"
    assert normalize_header(minimal(), generic).filter is None


_MS = dt.timedelta(milliseconds=1)


@pytest.mark.parametrize(("cards", "expected", "source", "tolerance"), [
    ({}, dt.datetime(2020, 5, 1, 4, tzinfo=UTC), "DATE-OBS", 0 * _MS),
    ({"DATE_OBS": "2020-05-01T04:00:00.25Z"},
     dt.datetime(2020, 5, 1, 4, 0, 0, 250000, tzinfo=UTC), "DATE-OBS", 0 * _MS),
    ({"DATE_OBS": "2020-05-01", "UT": " 23:53:30.00"},
     dt.datetime(2020, 5, 1, 23, 53, 30, tzinfo=UTC), "DATE-OBS+UT", 0 * _MS),
    ({"DATE_OBS": "2020-05-01", "UTC-OBS": "01:02:03"},
     dt.datetime(2020, 5, 1, 1, 2, 3, tzinfo=UTC), "DATE-OBS+UTC-OBS", 0 * _MS),
    # The Aspen frame's MJD-OBS (9 decimals) and the LFC bias's JD (6 decimals, 86 ms).
    ({"DATE_OBS": None, "MJD_OBS": 58353.367708333},
     dt.datetime(2018, 8, 23, 8, 49, 30, tzinfo=UTC), "MJD-OBS", _MS),
    ({"DATE_OBS": None, "JD": 2457403.495486},
     dt.datetime(2016, 1, 15, 23, 53, 30, tzinfo=UTC), "JD", 50 * _MS),
    ({"DATE_OBS": "2020-05-01", "MJD_OBS": 58970.5},  # date-only, no time: use MJD
     dt.datetime(2020, 5, 1, 12, tzinfo=UTC), "MJD-OBS", 0 * _MS),
])
def test_observation_time_forms(generic: InstrumentProfile, cards: dict[str, Any],
                                expected: dt.datetime, source: str,
                                tolerance: dt.timedelta) -> None:
    norm = normalize_header(minimal(**cards), generic)
    assert abs(norm.obs_time - expected) <= tolerance
    assert norm.extra["time_source"] == source
    assert norm.obs_time.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(("cards", "error", "fragment"), [
    ({"DATE_OBS": "yesterday"}, InvalidValueError, "DATE-OBS='yesterday'"),
    ({"DATE_OBS": "2020-02-30T00:00:00"}, InvalidValueError, "day is out of range"),
    ({"DATE_OBS": "9999-12-31T00:00:00"}, InvalidValueError, "year 9999"),
    ({"DATE_OBS": "1900-01-01T00:00:00"}, InvalidValueError, "year 1900"),
    ({"DATE_OBS": "2020-05-01", "UT": "25:00:00"}, InvalidValueError, "UT='25:00:00'"),
    ({"DATE_OBS": "23/08/18"}, InvalidValueError, "DATE-OBS='23/08/18'"),  # not asked for
    ({"DATE_OBS": None, "MJD_OBS": "soon"}, InvalidValueError, "MJD-OBS='soon'"),
    ({"DATE_OBS": None, "MJD_OBS": 1e12}, InvalidValueError, "MJD out of range"),
    ({"DATE_OBS": None}, MissingKeywordError, "no observation time: none of DATE-OBS"),
    ({"DATE_OBS": "2020-05-01"}, MissingKeywordError, "has no time of day"),
])
def test_bad_or_missing_times(generic: InstrumentProfile, cards: dict[str, Any],
                              error: type[HeaderError], fragment: str) -> None:
    with pytest.raises(error, match=re.escape(fragment)):
        normalize_header(minimal(**cards), generic)


def test_long_values_are_cut_in_messages(generic: InstrumentProfile) -> None:
    with pytest.raises(InvalidValueError) as info:
        normalize_header(minimal(EXPTIME="x" * 500), generic)
    assert "EXPTIME='xxxx" in str(info.value) and "..." in str(info.value)
    assert len(str(info.value)) < 120


def test_site_precedence(reg: ProfileRegistry, generic: InstrumentProfile) -> None:
    # 2020-05-01 04:00 UT: the night of 04-30 anywhere west of ~60 E, of 05-01 in Asia.
    header = minimal(SITELONG="+139 45 00")
    assert normalize_header(minimal(), generic).extra["site_source"].startswith("utc")
    from_header = normalize_header(header, generic)
    assert from_header.night == dt.date(2020, 5, 1)  # 13:20 local mean time
    assert from_header.extra["site_source"] == "header SITELONG"
    settings_site = Site(timezone="America/Chicago")
    with_settings = normalize_header(header, generic, site=settings_site)
    assert with_settings.night == dt.date(2020, 4, 30)
    assert with_settings.extra["site_source"] == "settings"
    tokyo = ProfileRegistry.from_settings(
        {"tokyo": {"site": {"timezone": "Asia/Tokyo"}}}).get("tokyo")
    with_profile = normalize_header(header, tokyo, site=settings_site)
    assert with_profile.night == dt.date(2020, 5, 1)
    assert with_profile.extra["site_source"] == "profile tokyo"


def test_header_longitude_forms(generic: InstrumentProfile) -> None:
    west = ProfileRegistry.from_settings(
        {"w": {"longitude_west_positive": True, "longitude_keywords": ["LONG-OBS"]}}).get("w")
    # 2020-05-01 17:00 UT at 96.45 W is 10:34 local: still the night of 04-30.
    header = minimal(DATE_OBS="2020-05-01T17:00:00", SITELONG="-96:27:11.8",
                     **{"LONG-OBS": 96.4533})
    assert normalize_header(header, generic).night == dt.date(2020, 4, 30)
    assert normalize_header(header, west).night == dt.date(2020, 4, 30)
    garbled = normalize_header(minimal(SITELONG="far west", LONGITUD=-96.45), generic)
    assert garbled.extra["site_source"] == "header LONGITUD"
    assert "SITELONG='far west'" in garbled.extra["ignored_SITELONG"]


@pytest.mark.parametrize(("cards", "binning"), [
    ({"CCDSUM": "2 2"}, (2, 2)),
    ({"CCDSUM": "1 4", "XBINNING": 3, "YBINNING": 3}, (1, 4)),  # first entry wins
    ({"XBINNING": 2, "YBINNING": 1}, (2, 1)),
    ({"CCDBIN1": "3", "CCDBIN2": 3.0}, (3, 3)),
    ({}, (1, 1)),
])
def test_binning(generic: InstrumentProfile, cards: dict[str, Any],
                 binning: tuple[int, int]) -> None:
    assert normalize_header(minimal(**cards), generic).binning == binning


@pytest.mark.parametrize(("cards", "error"), [
    ({"CCDSUM": "0 1"}, InvalidValueError),
    ({"CCDSUM": "2"}, InvalidValueError),
    ({"XBINNING": 1.5, "YBINNING": 1}, InvalidValueError),
    ({"XBINNING": 2}, MissingKeywordError),
])
def test_bad_binning(generic: InstrumentProfile, cards: dict[str, Any],
                     error: type[HeaderError]) -> None:
    with pytest.raises(error):
        normalize_header(minimal(**cards), generic)


def test_shape_argument_wins_and_naxis_is_required(generic: InstrumentProfile) -> None:
    assert normalize_header(minimal(), generic).shape == (30, 40)
    assert normalize_header(minimal(NAXIS=0), generic, shape=(8, 9)).shape == (8, 9)
    with pytest.raises(MissingKeywordError, match="NAXIS1"):
        normalize_header(minimal(NAXIS1=None), generic)
    with pytest.raises(InvalidValueError, match="NAXIS=3"):
        normalize_header(minimal(NAXIS=3), generic)
    with pytest.raises(InvalidValueError, match="shape"):
        normalize_header(minimal(), generic, shape=(0, 5))


def test_sections_are_validated_against_the_shape(generic: InstrumentProfile) -> None:
    norm = normalize_header(minimal(DATASEC="[1:32, 1:30]", BIASSEC="[33:40,1:30]",
                                    CCDSEC="[1:64,1:60]"), generic)
    assert (norm.datasec, norm.biassec, norm.ccdsec) == ("[1:32,1:30]", "[33:40,1:30]",
                                                          "[1:64,1:60]")
    with pytest.raises(SectionError, match=re.escape("BIASSEC='[33:41,1:30]'")):
        normalize_header(minimal(BIASSEC="[33:41,1:30]"), generic)
    with pytest.raises(SectionError, match="TRIMSEC"):
        normalize_header(minimal(TRIMSEC="1:10,1:10"), generic)


def test_profile_literal_section_must_fit(generic: InstrumentProfile) -> None:
    cam = ProfileRegistry.from_settings({"cam": {"overscan": "[33:50,1:30]"}}).get("cam")
    with pytest.raises(SectionError, match="profile 'cam' overscan"):
        normalize_header(minimal(), cam)


def test_temperatures_and_detector_values(generic: InstrumentProfile) -> None:
    norm = normalize_header(minimal(**{"CCD-TEMP": -35.03, "SET-TEMP": "-35",
                                       "RDNOISE": 9.5, "SATURATE": 60000}), generic)
    assert (norm.ccd_temp, norm.set_temp, norm.read_noise, norm.saturation) == (
        -35.03, -35.0, 9.5, 60000.0)
    with pytest.raises(InvalidValueError, match="CCD-TEMP=-300"):
        normalize_header(minimal(**{"CCD-TEMP": -300}), generic)
    with pytest.raises(InvalidValueError, match="GAIN=0"):
        normalize_header(minimal(GAIN=0), generic)


# --- Properties -------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80))
def test_arbitrary_object_and_filter_text_never_crash(obj: str, filt: str) -> None:
    profile = ProfileRegistry.from_settings().get("generic")
    try:
        norm = normalize_header(minimal(OBJECT=obj, FILTER=filt), profile)
    except HeaderError:
        return
    assert norm.object_name is None or norm.object_name == " ".join(obj.split())
    assert norm.filter is None or norm.filter.strip() == norm.filter != ""


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1951, 1, 1), max_value=dt.datetime(2199, 1, 1),
                    timezones=st.just(UTC)).map(lambda t: t.replace(microsecond=0)))
def test_three_date_forms_give_the_same_instant(t: dt.datetime) -> None:
    profile = ProfileRegistry.from_settings().get("generic")
    full = minimal(DATE_OBS=t.strftime("%Y-%m-%dT%H:%M:%S"))
    split = minimal(DATE_OBS=t.strftime("%Y-%m-%d"), TIME_OBS=t.strftime(" %H:%M:%S.00"))
    mjd = (t - dt.datetime(1858, 11, 17, tzinfo=UTC)) / dt.timedelta(days=1)
    by_mjd = minimal(DATE_OBS=None, MJD_OBS=mjd)
    a = normalize_header(full, profile).obs_time
    b = normalize_header(split, profile).obs_time
    c = normalize_header(by_mjd, profile).obs_time
    assert a == b == t
    assert abs(c - t) < dt.timedelta(microseconds=50)  # float days: ~us resolution


_spacing = st.sampled_from(["", " ", "  ", "_", "-"])


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["bias", "dark", "flat", "science"]), st.data())
def test_vocabulary_matching_ignores_case_and_spacing(kind: str, data: st.DataObject) -> None:
    profile = ProfileRegistry.from_settings().get("generic")
    word = data.draw(st.sampled_from(profile.frame_types[kind]))
    letters = [c for c in word if not c.isspace()]
    cased = [data.draw(st.sampled_from([c.lower(), c.upper()])) for c in letters]
    mangled = data.draw(_spacing) + "".join(
        c + data.draw(_spacing) for c in cased)
    assert normalize_header(minimal(IMAGETYP=mangled), profile).kind == kind


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1,
               max_size=30))
def test_words_outside_the_vocabulary_are_unknown(word: str) -> None:
    profile = ProfileRegistry.from_settings().get("generic")
    known = {re.sub(r"[\s_\-]", "", w).upper() for ws in profile.frame_types.values()
             for w in ws}
    norm = normalize_header(minimal(IMAGETYP=word), profile)
    if re.sub(r"[\s_\-]", "", word).upper() in known:
        assert norm.kind != "unknown"
    else:
        assert norm.kind == "unknown"
        assert norm.raw_type == (" ".join(word.split()) or None)


# --- The documented worked example: a new camera in TOML only -----------------------------

def _doc_example() -> dict[str, Any]:
    doc = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- profile-example -->\n```toml\n(.*?)```", doc, re.S)
    assert block is not None, "docs/profiles.md lost its worked example"
    return tomllib.loads(block.group(1))


def _kestrel_header() -> fits.Header:
    header = fits.Header()
    header.update({"NAXIS": 2, "NAXIS1": 1040, "NAXIS2": 1024,
                   "INSTRUME": "Kestrel K42", "DETECTOR": "e2v CCD42-40 #7",
                   "OBSTYPE": "dflat", "FILTERS": " V ", "CCDSUM": "2 2",
                   "EXPTIME": 4.0, "DATE-OBS": "2024-03-05", "TIME-OBS": "03:15:42.5",
                   "MJD-OBS": 60374.135908565, "BIASSEC": "[1025:1040,1:1024]"})
    return header


def test_new_camera_from_the_docs_toml() -> None:
    config = _doc_example()
    reg = ProfileRegistry.from_settings(config["instruments"])
    site = Site(timezone=config["site"]["timezone"])
    header = _kestrel_header()
    profile = reg.match(header)
    assert profile.name == "kestrel"
    norm = normalize_header(header, profile, site=site)
    assert (norm.kind, norm.raw_type, norm.filter) == ("flat", "dflat", "V")
    assert norm.binning == (2, 2) and norm.shape == (1024, 1040)
    assert norm.obs_time == dt.datetime(2024, 3, 5, 3, 15, 42, 500000, tzinfo=UTC)
    assert norm.night == dt.date(2024, 3, 4)
    assert norm.gain == 1.9 and norm.saturation == 60000.0
    assert norm.biassec == "[1025:1040,1:1024]"
    assert norm.setup_key == "Kestrel K42|e2v CCD42-40 #7|2x2|-|1024x1040"
    assert dict(profile.min_frames) == {"bias": 5, "dark": 5, "flat": 5}
    _rows, cols = profile.usable_overscan(norm.biassec, norm.shape)
    assert (cols.start, cols.stop) == (1026, 1040)
    # The camera's MJD-OBS alone gives the same instant (to float precision).
    del header["DATE-OBS"]
    by_mjd = normalize_header(header, profile, site=site)
    assert abs(by_mjd.obs_time - norm.obs_time) < dt.timedelta(milliseconds=1)
    # A detector the regex does not accept is not this camera.
    header["DETECTOR"] = "KAF-16803"
    assert reg.match(header).name == "generic"


# --- The documented CMOS worked example: the simulated ASI1600 in TOML only ---------------

def _doc_cmos_example() -> dict[str, Any]:
    doc = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- profile-example-cmos -->\n```toml\n(.*?)```", doc, re.S)
    assert block is not None, "docs/profiles.md lost its CMOS worked example"
    return tomllib.loads(block.group(1))


@pytest.fixture(scope="module")
def asi1600_headers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, fits.Header]:
    """Headers of the simulated N.I.N.A. night, given the full readout's size (the
    simulator writes them card for card; only the pixels are shrunk)."""
    from nightlog.simulate import simulate_night

    night = simulate_night(tmp_path_factory.mktemp("asi1600-doc"), camera="cmos",
                           scale=0.05, n_bias=1, n_dark=1, n_flat=1, n_science=3)
    truth = json.loads(night.truth_path.read_text(encoding="utf-8"))
    out: dict[str, fits.Header] = {}
    for entry in truth["files"]:
        header = fits.getheader(night.outdir / entry["name"])
        if entry["window"] is not None:
            header.update(NAXIS1=2328, NAXIS2=1760, XORGSUBF=1164, YORGSUBF=880)
            key = "window"
        else:
            header.update(NAXIS1=4656, NAXIS2=3520)
            key = f"{entry['kind']}_{entry['gain_setting']}"
        out.setdefault(key, header)
    return out


def test_the_cmos_camera_from_the_docs_toml(asi1600_headers: dict[str, fits.Header]) -> None:
    reg = ProfileRegistry.from_settings(_doc_cmos_example()["instruments"])
    light = asi1600_headers["science_139"]
    profile = reg.match(light)
    assert profile.name == "my_asi1600"
    norm = normalize_header(light, profile)
    assert (norm.kind, norm.gain_setting, norm.offset) == ("science", 139.0, 50.0)
    assert norm.gain == 0.0624432 and norm.saturation == 65520.0
    assert norm.extra["header_gain"] == "EGAIN=0.999091350022373"
    assert norm.setup_key == "ZWO ASI1600MM Pro|-|1x1|-|3520x4656"
    window = normalize_header(asi1600_headers["window"], profile)
    assert window.window == "[1165:3492,881:2640]" and window.setup_key == norm.setup_key
    bias = normalize_header(asi1600_headers["bias_0"], profile)
    assert (bias.kind, bias.gain_setting, bias.offset, bias.gain) == ("bias", 0.0, 10.0, 0.309375)
    assert profile.quantisation_step == 16 and profile.dark_scaling == "interpolate"


def test_the_cmos_example_reads_as_the_builtin(asi1600_headers: dict[str, fits.Header]) -> None:
    """The shipped zwo_asi1600_nina is the documented example: every header of the
    simulated night normalises the same under both (but for the profile's name)."""
    reg = ProfileRegistry.from_settings(_doc_cmos_example()["instruments"])
    assert reg.match(asi1600_headers["bias_0"]).name == "my_asi1600"
    builtin = ProfileRegistry.from_settings().get("zwo_asi1600_nina")
    assert ProfileRegistry.from_settings().match(asi1600_headers["bias_0"]) == builtin
    for header in asi1600_headers.values():
        mine = normalize_header(header, reg.get("my_asi1600"))
        shipped = normalize_header(header, builtin)
        assert dataclasses.replace(mine, profile=shipped.profile) == shipped


# --- The documented MEF worked example: the simulated Sinistro in TOML only -------------

def _doc_mef_example() -> dict[str, Any]:
    doc = (ROOT / "docs" / "profiles.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- profile-example-mef -->\n```toml\n(.*?)```", doc, re.S)
    assert block is not None, "docs/profiles.md lost its MEF worked example"
    return tomllib.loads(block.group(1))


@pytest.fixture(scope="module")
def sinistro_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file of each kind of the simulated Sinistro night."""
    from nightlog.simulate import simulate_night

    night = simulate_night(tmp_path_factory.mktemp("sinistro-doc"), camera="mef",
                           scale=0.1)
    truth = json.loads(night.truth_path.read_text(encoding="utf-8"))
    out: dict[str, Path] = {}
    for entry in truth["files"]:
        out.setdefault(entry["kind"], night.outdir / entry["name"])
    return out


def _read_mef(path: Path, registry: ProfileRegistry, name: str) -> Any:
    from nightlog.header.amplifiers import ExtensionHeader
    from nightlog.header.normalize_amplifiers import normalize_amplifiers

    with fits.open(path) as hdus:
        primary = dict(hdus[0].header)
        extensions = [ExtensionHeader(i, dict(h.header), h.data.shape)
                      for i, h in enumerate(hdus) if i > 0]
    assert registry.match(hdus[0].header).name == name
    return normalize_amplifiers(primary, primary, extensions, registry.get(name))


def test_the_mef_camera_from_the_docs_toml(sinistro_files: dict[str, Path]) -> None:
    reg = ProfileRegistry.from_settings(_doc_mef_example()["instruments"])
    norm, layout = _read_mef(sinistro_files["science"], reg, "my_sinistro")
    assert (norm.kind, norm.filter, norm.shape) == ("science", "rp", (410, 410))
    assert norm.setup_key == "fa15|-|1x1|-|410x410"
    assert [a.name for a in layout.amplifiers] == ["SCI,1", "SCI,2", "SCI,3", "SCI,4"]
    assert [a.gain for a in layout.amplifiers] == [2.01, 1.94, 2.07, 1.98]
    assert [(a.flip_x, a.flip_y) for a in layout.amplifiers] == [
        (False, False), (True, False), (True, True), (False, True)]
    assert all(a.biassec == "[208:213,1:205]" for a in layout.amplifiers)
    for kind in ("bias", "dark", "flat"):
        assert _read_mef(sinistro_files[kind], reg, "my_sinistro")[0].kind == kind


def test_the_mef_example_reads_as_the_builtin(sinistro_files: dict[str, Path]) -> None:
    """The shipped lco_sinistro is the documented example: every kind of file of the
    simulated night normalises the same under both (but for the profile's name)."""
    mine = ProfileRegistry.from_settings(_doc_mef_example()["instruments"])
    shipped = ProfileRegistry.from_settings()
    for path in sinistro_files.values():
        a, layout_a = _read_mef(path, mine, "my_sinistro")
        b, layout_b = _read_mef(path, shipped, "lco_sinistro")
        assert dataclasses.replace(a, profile=b.profile) == b
        assert layout_a == layout_b


def test_a_multi_amplifier_frame_is_warned_about_its_amplifiers(
        sinistro_files: dict[str, Path]) -> None:
    """No warning for an empty primary (no SATURATE, BIASSEC or DATASEC there) when
    every extension has its numbers; one naming the amplifier that lacks one."""
    from nightlog.header.amplifiers import ExtensionHeader
    from nightlog.header.normalize_amplifiers import normalize_amplifiers
    from nightlog.header.profile_warnings import WarningCode, profile_warnings

    profile = ProfileRegistry.from_settings().get("lco_sinistro")
    with fits.open(sinistro_files["science"]) as hdus:
        primary = dict(hdus[0].header)
        extensions = [ExtensionHeader(i, dict(h.header), h.data.shape)
                      for i, h in enumerate(hdus) if i > 0]
    norm, layout = normalize_amplifiers(primary, primary, extensions, profile)
    assert profile_warnings(primary, profile, norm, layout) == []
    values = {k: v for k, v in extensions[2].values.items() if k != "SATURATE"}
    extensions[2] = ExtensionHeader(3, values, extensions[2].shape)
    norm, layout = normalize_amplifiers(primary, primary, extensions, profile)
    (warning,) = profile_warnings(primary, profile, norm, layout)
    assert warning.code == WarningCode.NO_SATURATION and "SCI,3" in warning.message
