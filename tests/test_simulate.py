"""The night simulator: files, headers, night structure, physics and truth.

The reference card images below are copied from the raw header of the Palomar
LFC bias ``ccd.001.0.fits`` of 2016-01-15 (lecture dataset); the Aspen keyword
order is that of the raw MaxIm DL 6.18 light ``kelt-16-b`` of 2018-08-23.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st

from nightlog.errors import ConfigurationError
from nightlog.sections import parse_section, section_shape
from nightlog.simulate import CAMERAS, SimulatedNight, load_truth, simulate_night
from nightlog.simulate.cameras import ASPEN, LFC, scaled_geometry
from nightlog.simulate.cosmics import draw_cosmic_rays
from nightlog.simulate.headers import build_header
from nightlog.simulate.schedule import plan_night
from nightlog.simulate.skytime import format_sexagesimal, julian_date

LFC_BIAS_CARDS = """\
SIMPLE  =                    T  / STANDARD FITS
BITPIX  =                   16  / BITS/PIXEL
NAXIS   =                    2  / NUMBER OF AXES
NAXIS1  =                 2080  / NUMBER OF COLUMNS
NAXIS2  =                 4128  / NUMBER OF ROWS
BSCALE  =        1.0000000E+00  / PHYSICAL = BSCALE * DATA + BZERO
BZERO   =               32768.
DATE    = '2016-01-15'          / UT Date of file creation (DD/MM/YY)
ORIGIN  = 'California Institute of Technology'  / Palomar Observatory
LATITUDE=              33.4000  / Latitude (degrees N)
LONGITUD=            -116.9000  / Longitude (degrees E)
TELESCOP= 'Hale 5m Telescope'   / Telescope used for observation
FRATIO  =               7.5000  / Focal ratio of telescope
INSTRUME= 'LFC     '            / Instrument used for observation
DETECTOR= 'SITe SI002 x 6'      / Detector used for observation
FRAME   =                    1  / Frame number of observation
CCDPICNO=                    1  / Frame number of observation
OBJECT  = 'bias    '            / Name of object
IMAGETYP= 'BIAS    '            / Type of observation
EXPTIME =                0.000  / Integration time (seconds)
DARKTIME=                0.120  / Dark current time (seconds)
DATE-OBS= '2016-01-15'          / UT Date of observation (DD/MM/YY)
UT      = ' 23:53:30.00'        / Universal time (UTC) at exposure start
JD      =                 2457403.495486  / Julian date at exposure start
RA      = ' 23:44:32.40'        / Right Ascension
DEC     = ' 33:22:10.80'        / Declination
EQUINOX =             2000.000  / Equinox of RA and DEC
EPOCH   =             2000.000  / Equinox of RA and DEC
HA      = ' 00:00:04.00'        / Hour angle at start
ST      = ' 23:45:23.10'        / Sidereal time at start
AIRMASS =                1.000  / Airmass at start
FILTER  = 'i'      '            / Filter description
GAIN    =                1.100  / Nominal gain (e-/ADU)
SECPIX1 =                0.182  / Arcseconds per pixel in fast dir
SECPIX2 =                0.182  / Arcseconds per pixel in slow dir
CCDBIN1 =                    1  / On-chip column binning (fast dir)
CCDBIN2 =                    1  / On-chip row binning (slow dir)
ROTANGLE=                 0.00  / Rotation angle (deg)
DATASEC = '[1:2048,1:4128]'     / Image area of frame
CCDSEC  = '[1:2048,1:4128]'     / Image area relative to full chip
BIASSEC = '[2049:2080,1:4127]'  / Overscan area of frame
LOGINFO = ' Status=0x00000000'
CHIPID  =                    0
""".splitlines()

ASPEN_LIGHT_KEYS = [
    "SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "BSCALE", "BZERO", "DATE-OBS", "EXPTIME",
    "EXPOSURE", "SET-TEMP", "CCD-TEMP", "XPIXSZ", "YPIXSZ", "XBINNING", "YBINNING", "XORGSUBF",
    "YORGSUBF", "READOUTM", "FILTER", "IMAGETYP", "FOCALLEN", "APTDIA", "APTAREA", "SWCREATE",
    "SWSERIAL", "SITELAT", "SITELONG", "JD", "JD-HELIO", "OBJECT", "TELESCOP", "INSTRUME",
    "OBSERVER", "NOTES", "FLIPSTAT", "CSTRETCH", "CBLACK", "CWHITE", "PEDESTAL", "SWOWNER",
    "JD-OBS", "HJD-OBS", "BJD-OBS", "OBJCTAZ", "AZIMUTH", "OBJCTALT", "ALTITUDE", "OBJCTHA",
    "HA", "READMODE", "HISTORY", "DATE", "TIME-OBS", "UT", "TIMESYS", "RADECSYS", "AIRMASS",
    "ST", "LAT-OBS", "LONG-OBS", "ALT-OBS", "OBSERVAT", "RA", "OBJCTRA", "DEC", "OBJCTDEC",
    "BIASSEC", "TRIMSEC",
]
ASPEN_FLAT_KEYS = [
    "SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "BSCALE", "BZERO", "DATE-OBS", "EXPTIME",
    "EXPOSURE", "SET-TEMP", "CCD-TEMP", "XPIXSZ", "YPIXSZ", "XBINNING", "YBINNING", "XORGSUBF",
    "YORGSUBF", "READOUTM", "FILTER", "IMAGETYP", "FOCALLEN", "APTDIA", "APTAREA", "SWCREATE",
    "SWSERIAL", "SITELAT", "SITELONG", "JD", "TELESCOP", "INSTRUME", "OBSERVER", "NOTES",
    "FLIPSTAT", "SWOWNER", "DATE", "TIME-OBS", "UT", "TIMESYS", "RADECSYS", "BIASSEC", "TRIMSEC",
]

COUNTS = {"n_bias": 5, "n_dark": 2, "n_flat": 3, "n_science": 2}


@pytest.fixture(scope="module")
def lfc_night(tmp_path_factory: pytest.TempPathFactory) -> SimulatedNight:
    return simulate_night(tmp_path_factory.mktemp("lfc"), camera="lfc", scale=0.2, seed=3,
                          **COUNTS)


@pytest.fixture(scope="module")
def aspen_night(tmp_path_factory: pytest.TempPathFactory) -> SimulatedNight:
    return simulate_night(tmp_path_factory.mktemp("aspen"), camera="aspen", scale=0.15,
                          seed=3, **COUNTS)


def _read(path: Path) -> tuple[np.ndarray, fits.Header]:
    with fits.open(path) as hdul:
        hdul.verify("exception")
        return hdul[0].data.copy(), hdul[0].header.copy()


def _raw_cards(path: Path) -> list[str]:
    """The header's card images exactly as stored (up to END)."""
    cards: list[str] = []
    with path.open("rb") as fh:
        while True:
            block = fh.read(2880).decode("ascii")
            for i in range(0, 2880, 80):
                if block[i:i + 8] == "END     ":
                    return cards
                cards.append(block[i:i + 80])


def _by_kind(night: SimulatedNight, kind: str, filt: str | None = None) -> list[Path]:
    truth = load_truth(night.outdir).summary
    return [night.outdir / f["name"] for f in truth["files"]
            if f["kind"] == kind and (filt is None or f["filter"] == filt)]


def _stack(paths: list[Path]) -> np.ndarray:
    return np.stack([_read(p)[0].astype(np.float64) for p in paths])


# ----------------------------------------------------------------------------- files


@pytest.mark.parametrize("which", ["lfc_night", "aspen_night"])
def test_every_file_reads_cleanly_as_uint16_of_the_declared_shape(
        which: str, request: pytest.FixtureRequest) -> None:
    night: SimulatedNight = request.getfixturevalue(which)
    assert night.files and all(p.exists() for p in night.files)
    for path in night.files:
        data, header = _read(path)  # pytest turns any astropy warning into an error
        assert data.dtype == np.uint16
        assert data.shape == night.shape == (header["NAXIS2"], header["NAXIS1"])
        assert header["BITPIX"] == 16 and header["BZERO"] == 32768
    assert not list(night.outdir.glob("*.part")), "temporary files left behind"


def test_file_names_follow_the_cameras(lfc_night: SimulatedNight,
                                       aspen_night: SimulatedNight) -> None:
    assert [p.name for p in lfc_night.files][:3] == ["ccd.001.0.fits", "ccd.002.0.fits",
                                                     "ccd.003.0.fits"]
    names = {p.name for p in aspen_night.files}
    for expected in ("Bias-S001-R001-C001-NoFilt.fit", "Dark-S001-R001-C001-NoFilt.fit",
                     "AutoFlat-PANoRot-r-Bin1-001.fit", "AutoFlat-PANoRot-g-Bin1-001.fit",
                     "kelt-16-b-S001-R001-C001-r.fit"):
        assert expected in names


# --------------------------------------------------------------------------- headers


def test_lfc_bias_header_is_the_reference_card_for_card() -> None:
    geom = scaled_geometry(LFC, 1.0)
    first = plan_night(LFC, LFC.reference_night, (1, 0, 0, 0), np.random.default_rng(0))[0]
    cards = build_header(LFC, geom, first, np.zeros((1, 1), np.uint16),
                         np.random.default_rng(0))
    reference = [c.ljust(80) for c in LFC_BIAS_CARDS]
    # fits.info() of the real file reports 43 cards: len(header), END not counted.
    assert len(cards) == len(reference) == 43
    assert [c[:8] for c in cards] == [c[:8] for c in reference]
    # RA and DEC are the J2000 place of the parked telescope: equal to a few seconds.
    for ours, theirs in zip(cards, reference, strict=True):
        if ours[:8] in ("RA      ", "DEC     "):
            assert ours[:12] == theirs[:12] and ours[31:] == theirs[31:]
        else:
            assert ours == theirs


def test_lfc_filter_card_is_written_unescaped_and_reads_back(
        lfc_night: SimulatedNight) -> None:
    flats = _by_kind(lfc_night, "flat", "g'")
    card = next(c for c in _raw_cards(flats[0]) if c.startswith("FILTER  ="))
    assert card == "FILTER  = 'g'      '            / Filter description".ljust(80)
    values = {_read(p)[1]["FILTER"] for p in lfc_night.files}
    assert values <= {"g'", "i'", "r'"} and {"g'", "i'"} <= values


def test_lfc_headers_have_the_reference_layout_and_scaled_sections(
        lfc_night: SimulatedNight) -> None:
    keys = [c[:8].strip() for c in LFC_BIAS_CARDS]
    types = set()
    for path in lfc_night.files:
        data, header = _read(path)
        assert list(header.keys()) == keys
        types.add(header["IMAGETYP"])
        datasec = parse_section(header["DATASEC"], data.shape)
        overscan = load_truth(lfc_night.outdir).summary["overscan_columns"]
        assert section_shape(datasec, data.shape) == (data.shape[0], data.shape[1] - overscan)
        rows, cols = parse_section(header["BIASSEC"], data.shape)
        assert cols.start == datasec[1].stop and cols.stop == data.shape[1]
        assert rows.stop == data.shape[0] - 1
        assert header["UT"].startswith(" ") and header["GAIN"] == 1.1
        assert header["DATE-OBS"] == header["DATE"]
    assert types == {"BIAS", "DARK", "FLATFIELD", "OBJECT"}


def test_aspen_headers_follow_maximdl(aspen_night: SimulatedNight) -> None:
    nxd = _aspen_image_cols(aspen_night)
    types = set()
    for path in aspen_night.files:
        data, header = _read(path)
        kind = header["IMAGETYP"]
        types.add(kind)
        keys = [k for k in header if k]
        if kind == "LIGHT":
            assert keys == ASPEN_LIGHT_KEYS
            assert header["OBJECT"] == "kelt-16-b" and header["CBLACK"] < header["CWHITE"]
        elif kind == "FLAT":
            assert keys == ASPEN_FLAT_KEYS
        else:
            assert keys == [k for k in ASPEN_FLAT_KEYS if k != "FILTER"]
            assert "NoFilt" in path.name
        start = dt.datetime.fromisoformat(header["DATE-OBS"]).replace(tzinfo=dt.UTC)
        assert header["TIME-OBS"] == header["UT"] == start.strftime("%H:%M:%S")
        assert header["DATE"] == start.strftime("%d/%m/%y")
        assert header["JD"] == pytest.approx(julian_date(start), abs=1e-8)
        assert header["EXPTIME"] == header["EXPOSURE"]
        assert header["SET-TEMP"] == -20.0 and abs(header["CCD-TEMP"] + 20.0) < 0.1
        assert header["SWCREATE"] == "MaxIm DL Version 6.18 190601 00KPP"
        # The dataset's own (non-standard) sections: from the last image column on.
        assert header["BIASSEC"] == f"[{nxd}:{data.shape[1]}]"
        assert header["TRIMSEC"] == f"[1:{nxd}, :]"
    assert types == {"BIAS", "DARK", "FLAT", "LIGHT"}


def _aspen_image_cols(night: SimulatedNight) -> int:
    return int(load_truth(night.outdir).summary["image_columns"])


def test_aspen_light_cards_keep_maximdl_and_acp_notations(aspen_night: SimulatedNight) -> None:
    light = _by_kind(aspen_night, "science")[0]
    cards = {c[:8].strip(): c for c in _raw_cards(light)}
    assert cards["EXPTIME"].startswith("EXPTIME =   9.00000000000E+001 / [sec] Duration")
    assert cards["SET-TEMP"].startswith("SET-TEMP=  -20.000000000000000 /CCD temperature")
    assert cards["IMAGETYP"].startswith("IMAGETYP= 'LIGHT   ' /          Type of image")
    assert cards["LONG-OBS"].startswith("LONG-OBS=  -9.84532750000E+001 / [deg +E WGS84]")
    header = _read(light)[1]
    # ACP's sidereal time uses its own (LONG-OBS) longitude; HA = ST - RA.
    ra = 20 + 57 / 60 + 4.40 / 3600
    st_hours = sum(float(x) / 60**i for i, x in enumerate(header["ST"].split()))
    ha = sum(float(x) / 60**i for i, x in enumerate(header["HA"].lstrip("-").split()))
    ha = -ha if header["HA"].startswith("-") else ha
    assert ((st_hours - ra - ha + 12) % 24 - 12) == pytest.approx(0, abs=2e-4)


# --------------------------------------------------------------------- night structure


def _night_of(when: dt.datetime, longitude: float) -> dt.date:
    local = when + dt.timedelta(hours=longitude / 15.0)
    return (local - dt.timedelta(hours=12)).date()


@pytest.mark.parametrize("which", ["lfc_night", "aspen_night"])
def test_frames_are_in_time_order_and_belong_to_the_night(
        which: str, request: pytest.FixtureRequest) -> None:
    night: SimulatedNight = request.getfixturevalue(which)
    camera = CAMERAS[night.camera]
    files = load_truth(night.outdir).summary["files"]
    assert [f["name"] for f in files] == [p.name for p in night.files]
    times = [dt.datetime.fromisoformat(f["obs_time"]) for f in files]
    assert all(a < b for a, b in itertools.pairwise(times))
    assert {_night_of(t, camera.longitude_deg) for t in times} == {night.night}
    assert night.night == camera.reference_night


def test_lfc_night_order_and_reference_times(lfc_night: SimulatedNight) -> None:
    files = load_truth(lfc_night.outdir).summary["files"]
    kinds = [f["kind"] for f in files]
    assert kinds == ["bias"] * 5 + ["dark"] * 6 + ["flat"] * 6 + ["science"] * 2
    assert files[0]["obs_time"] == "2016-01-15T23:53:30Z"
    first_flat = files[kinds.index("flat")]
    assert first_flat["obs_time"] == "2016-01-16T04:17:28Z" and first_flat["filter"] == "g'"
    assert sorted({f["exptime"] for f in files if f["kind"] == "dark"})[0] == 7.0
    assert {round(f["exptime"]) for f in files if f["kind"] == "dark"} == {7, 70, 300}
    assert all(300.0 <= f["exptime"] < 300.1 for f in files if f["kind"] == "science")


def test_aspen_night_order_and_reference_times(aspen_night: SimulatedNight) -> None:
    files = load_truth(aspen_night.outdir).summary["files"]
    kinds = [f["kind"] for f in files]
    assert kinds == ["flat"] * 6 + ["science"] * 2 + ["dark"] * 6 + ["bias"] * 5
    assert files[0]["obs_time"] == "2018-08-23T01:25:17Z"
    assert files[kinds.index("dark")]["obs_time"] == "2018-08-23T10:42:41Z"
    flats = [f for f in files if f["kind"] == "flat" and f["filter"] == "r"]
    exptimes = [f["exptime"] for f in flats]
    assert exptimes == sorted(exptimes) and exptimes[0] == 1.0
    levels = np.array([f["signal_adu"] for f in flats])
    assert levels.std() / levels.mean() > 0.01  # twilight: each flat at its own level


def test_another_night_moves_with_the_sun(tmp_path: Path) -> None:
    night = simulate_night(tmp_path, camera="lfc", night=dt.date(2016, 6, 20), scale=0.05,
                           n_bias=1, n_dark=0, n_flat=1, n_science=2)
    files = load_truth(tmp_path).summary["files"]
    times = [dt.datetime.fromisoformat(f["obs_time"]) for f in files]
    assert {_night_of(t, LFC.longitude_deg) for t in times} == {dt.date(2016, 6, 20)}
    # Summer sunset is ~2.5 h later than in January; the afternoon biases follow it.
    assert times[0] > dt.datetime(2016, 6, 21, 1, 30, tzinfo=dt.UTC)
    assert night.night == dt.date(2016, 6, 20)


# --------------------------------------------------------------------------- physics


def test_bias_noise_and_level_match_the_truth(lfc_night: SimulatedNight) -> None:
    truth = load_truth(lfc_night.outdir)
    s = truth.summary
    nxd = s["image_columns"]
    biases = _stack(_by_kind(lfc_night, "bias"))
    diff = (biases[0] - biases[1])[10:-10, 80:nxd - 5]
    assert diff.std() / math.sqrt(2) == pytest.approx(s["read_noise_adu"], rel=0.04)
    assert s["read_noise_adu"] == pytest.approx(5.485, abs=0.01)
    master = biases.mean(axis=0)
    # Level ~1140 ADU, and > 1350 ADU at the left edge.
    assert np.median(master[:, nxd // 2:nxd]) == pytest.approx(1142, abs=8)
    assert np.median(master[:, 0]) > 1350
    offsets = [f["bias_offset_adu"] for f in s["files"] if f["kind"] == "bias"]
    expected = truth.arrays["bias_adu"] + np.mean(offsets)
    assert np.abs(master - expected)[:, :nxd].mean() < 3.0


def test_flat_ratio_recovers_the_flat_pattern_and_the_gain(lfc_night: SimulatedNight) -> None:
    truth = load_truth(lfc_night.outdir)
    nxd = truth.summary["image_columns"]
    master_bias = _stack(_by_kind(lfc_night, "bias")).mean(axis=0)
    flats = _stack(_by_kind(lfc_night, "flat", "g'")) - master_bias
    flats = flats[:, :, :nxd]
    pattern = flats.mean(axis=0)
    pattern /= pattern.mean()
    residual = pattern - truth.arrays["flat"]
    assert np.std(residual) < 0.006
    assert np.corrcoef(pattern.ravel(), truth.arrays["flat"].ravel())[0, 1] > 0.95
    # Lecture: G = 2 S / var(difference), the two flats scaled to one level first.
    a, b = flats[0][20:-20, 20:-20], flats[1][20:-20, 20:-20]
    b = b * (a.mean() / b.mean())
    gain = 2 * a.mean() / np.var(a - b)
    assert gain == pytest.approx(truth.summary["gain_e_per_adu"], rel=0.05)
    raw_median = float(np.median(_read(_by_kind(lfc_night, "flat", "g'")[0])[0][:, :nxd]))
    assert 20500 < raw_median < 22500  # g' 70 s flats read ~21500 ADU


def test_lfc_overscan_tracks_bias_and_sees_leaked_light(lfc_night: SimulatedNight) -> None:
    s = load_truth(lfc_night.outdir).summary
    nxd, leak = s["image_columns"], s["leak_columns"]
    bias = _read(_by_kind(lfc_night, "bias")[0])[0].astype(float)
    flat = _read(_by_kind(lfc_night, "flat", "g'")[0])[0].astype(float)
    science = _read(_by_kind(lfc_night, "science")[0])[0].astype(float)
    clean = slice(nxd + leak, None)
    assert np.median(flat[:, nxd]) - np.median(flat[:, clean]) > 20
    assert abs(np.median(bias[:, nxd]) - np.median(bias[:, clean])) < 2
    # Long exposures: the bias level (and the overscan with it) sits ~20 ADU higher.
    assert 10 < np.median(science[:, clean]) - np.median(bias[:, clean]) < 32


def test_aspen_darks_scale_with_exposure_and_show_hot_pixels(
        aspen_night: SimulatedNight) -> None:
    truth = load_truth(aspen_night.outdir)
    s = truth.summary
    nxd, gain = s["image_columns"], s["gain_e_per_adu"]
    bias = _stack(_by_kind(aspen_night, "bias")).mean(axis=0)[:, :nxd]
    rates = {}
    for f in s["files"]:
        if f["kind"] == "dark":
            data = _read(aspen_night.outdir / f["name"])[0][:, :nxd].astype(float)
            rates.setdefault(f["exptime"], []).append((data - bias) * gain / f["exptime"])
    long = np.median(np.stack(rates[300.0]), axis=0)
    hot = truth.hot_pixel_mask()[:, :nxd]
    assert hot.sum() == s["hot_pixels"] > 50
    # Hot pixels (> 4 e-/s) recovered from the 300 s darks; their rates agree.
    truth_rate = truth.arrays["dark_current_e"]
    assert np.median(long[hot] / truth_rate[hot]) == pytest.approx(1.0, abs=0.05)
    assert np.mean(long[hot] > 3.0) > 0.95
    # The typical dark current is ~0.01 ADU/s; exposures scale it.
    typical = np.median(long[~hot])
    assert typical / gain == pytest.approx(s["dark_current_adu_per_s"], abs=0.004)
    short = np.median(np.stack(rates[30.0]), axis=0)
    assert np.median(short[hot] * 30.0) < 0.2 * np.median(long[hot] * 300.0)


def test_aspen_overscan_is_higher_in_illuminated_frames(aspen_night: SimulatedNight) -> None:
    nxd = _aspen_image_cols(aspen_night)
    bias = _read(_by_kind(aspen_night, "bias")[0])[0].astype(float)
    flat = _read(_by_kind(aspen_night, "flat")[0])[0].astype(float)
    assert np.median(bias[:, nxd:]) > np.median(bias[:, :nxd]) + 10
    assert np.median(flat[:, nxd:]) - np.median(bias[:, nxd:]) == pytest.approx(50, abs=12)


def test_cosmic_rays_are_where_the_truth_says_and_grow_with_exposure(
        lfc_night: SimulatedNight) -> None:
    truth = load_truth(lfc_night.outdir)
    files = truth.summary["files"]
    events = {}
    for f in files:
        mask = truth.cosmic_ray_mask(f["name"])
        assert mask.sum() == f["cosmic_ray_pixels"]
        events.setdefault(round(f["exptime"]), []).append(f["cosmic_ray_events"])
        if f["kind"] == "dark" and f["exptime"] > 200:
            data = _read(lfc_night.outdir / f["name"])[0].astype(float)
            level = np.median(data[:, : truth.summary["image_columns"]])
            assert mask.any()
            assert np.median(data[mask]) > level + 100  # sharp, far above the noise
    assert max(events[0]) == 0  # biases
    assert sum(events[300]) > sum(events[7])


def test_cosmic_ray_count_is_proportional_to_exposure() -> None:
    rng = np.random.default_rng(5)
    rate = 4e-6  # per pixel per second: 400 events in 100 s on 1000×1000 pixels
    counts = {t: [draw_cosmic_rays((1000, 1000), t, rate, rng).events for _ in range(20)]
              for t in (100.0, 1000.0)}
    assert np.mean(counts[100.0]) == pytest.approx(400, rel=0.05)
    assert np.mean(counts[1000.0]) == pytest.approx(4000, rel=0.03)
    hits = draw_cosmic_rays((1000, 1000), 100.0, rate, rng)
    assert hits.rows.size >= hits.events  # one to a few pixels each
    assert hits.rows.size < 3 * hits.events
    assert np.median(hits.charge_e) > 500


def test_science_frames_have_sky_and_stars(lfc_night: SimulatedNight) -> None:
    truth = load_truth(lfc_night.outdir)
    nxd = truth.summary["image_columns"]
    entry = next(f for f in truth.summary["files"] if f["kind"] == "science")
    data = _read(lfc_night.outdir / entry["name"])[0][:, :nxd].astype(float)
    bias = _stack(_by_kind(lfc_night, "bias")).mean(axis=0)[:, :nxd]
    sky = np.median(data - bias) - entry["bias_offset_adu"]
    assert sky == pytest.approx(entry["signal_adu"], rel=0.05)
    cosmic = truth.cosmic_ray_mask(entry["name"])[:, :nxd]
    bright = (data - bias > sky + 20 * truth.summary["read_noise_adu"]) & ~cosmic
    assert bright.sum() > 30  # star images
    assert entry["saturated_pixels"] == int((data >= 65535).sum())


# ----------------------------------------------------------------- seeds and truth


def test_same_seed_same_bytes_other_seed_other_pixels(tmp_path: Path) -> None:
    kwargs = {"camera": "aspen", "scale": 0.05, "n_bias": 1, "n_dark": 1, "n_flat": 1,
              "n_science": 1}
    a = simulate_night(tmp_path / "a", seed=11, **kwargs)
    b = simulate_night(tmp_path / "b", seed=11, **kwargs)
    c = simulate_night(tmp_path / "c", seed=12, **kwargs)
    for pa, pb in zip([*a.files, a.truth_path, a.arrays_path],
                      [*b.files, b.truth_path, b.arrays_path], strict=True):
        assert pa.name == pb.name and pa.read_bytes() == pb.read_bytes()
    assert not np.array_equal(_read(a.files[-1])[0], _read(c.files[-1])[0])


def test_truth_is_complete(lfc_night: SimulatedNight) -> None:
    truth = load_truth(lfc_night.truth_path)
    s = truth.summary
    assert s["camera"] == "lfc" and s["night"] == "2016-01-15" and s["seed"] == 3
    assert s["gain_e_per_adu"] == 2.37 and s["header_gain"] == 1.1
    assert s["read_noise_e"] == 13.0 and s["bias_level_adu"] == 1140.0
    assert set(s["flat_levels_adu"]) == {"g'", "i'"}
    assert len(s["files"]) == len(lfc_night.files)
    ny, nx = lfc_night.shape
    assert truth.arrays["bias_adu"].shape == (ny, nx)
    assert truth.arrays["flat"].shape == truth.arrays["dark_current_e"].shape == (
        ny, s["image_columns"])
    assert truth.arrays["flat"].mean() == pytest.approx(1.0, abs=1e-4)
    assert truth.dead_pixel_mask().sum() == s["dead_pixels"] > 0
    for f in s["files"]:
        assert f["cosmic_ray_key"] in truth.arrays
        for key in ("kind", "exptime", "darktime", "filter", "obs_time", "jd", "signal_adu",
                    "cosmic_ray_events", "bias_offset_adu"):
            assert key in f


def test_progress_reports_every_frame(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    night = simulate_night(tmp_path, camera="lfc", scale=0.05, n_bias=2, n_dark=0, n_flat=1,
                           n_science=1, progress=lambda done, total: calls.append((done, total)))
    total = len(night.files)
    assert calls == [(i, total) for i in range(total + 1)]


@pytest.mark.parametrize("kwargs", [
    {"camera": "nope"}, {"scale": 0.0}, {"scale": 1.5}, {"scale": float("nan")},
    {"scale": 0.001}, {"n_bias": -1}, {"seed": -3}, {"night": "2016-01-15"},
])
def test_bad_arguments_raise_configuration_error(tmp_path: Path, kwargs: dict[str, object]
                                                 ) -> None:
    with pytest.raises(ConfigurationError):
        simulate_night(tmp_path, **kwargs)  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


@given(scale=st.floats(min_value=0.01, max_value=1.0), name=st.sampled_from(["lfc", "aspen"]))
def test_scaled_geometry_is_consistent(scale: float, name: str) -> None:
    camera = CAMERAS[name]
    geom = scaled_geometry(camera, scale)
    assert geom.nx == geom.nx_data + geom.n_overscan and geom.shape == (geom.ny, geom.nx)
    assert geom.n_overscan >= 4 and 0 <= geom.leak_columns <= geom.n_overscan - 2
    assert abs(geom.ny - camera.ny * scale) <= 0.5 and abs(geom.nx_data - camera.nx_data
                                                            * scale) <= 0.5


@given(st.floats(min_value=-89.9999, max_value=89.9999))
def test_sexagesimal_round_trips(value: float) -> None:
    text = format_sexagesimal(value, decimals=2)
    sign = -1 if text.startswith("-") else 1
    d, m, s = (float(x) for x in text.lstrip("-").split(":"))
    assert sign * (d + m / 60 + s / 3600) == pytest.approx(value, abs=0.006 / 3600)


def test_full_size_lfc_frames(tmp_path: Path) -> None:
    night = simulate_night(tmp_path, camera="lfc", n_bias=1, n_dark=1, n_flat=1, n_science=1)
    data, header = _read(night.files[-1])
    assert data.shape == (4128, 2080) and header["NAXIS1"] == 2080
    assert header["BIASSEC"] == "[2049:2080,1:4127]" and header["DATASEC"] == "[1:2048,1:4128]"
    assert ASPEN.ny == 4096 and ASPEN.nx_data + ASPEN.n_overscan == 4109
