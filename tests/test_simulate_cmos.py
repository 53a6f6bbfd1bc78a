"""The CMOS camera of the simulator: N.I.N.A.'s cards, 12-bit data, gain settings and truth.

The reference cards are the verbatim N.I.N.A. 1.10.2.90 header of a ZWO ASI294MC
Pro (PhotonFinder ``tests/sample_headers.py``, section 2a of the MEF/CMOS
reference). The physics is checked against the truth in plain numpy.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st

from nightlog.simulate import SimulatedNight, load_truth, simulate_night
from nightlog.simulate.cmos_headers import cs_double
from nightlog.simulate.night_plans import subarray_window
from nightlog.simulate.zwo import ASI1600, egain_native

NINA_REFERENCE = """\
SIMPLE  =                    T / C# FITS
BITPIX  =                   16 /
NAXIS   =                    2 / Dimensionality
NAXIS1  =                 4144 /
NAXIS2  =                 2822 /
BZERO   =                32768 /
EXTEND  =                    T / Extensions are permitted
IMAGETYP= 'LIGHT'              / Type of exposure
EXPOSURE=                 30.0 / [s] Exposure duration
EXPTIME =                 30.0 / [s] Exposure duration
DATE-LOC= '2021-03-02T21:19:00.455' / Time of observation (local)
DATE-OBS= '2021-03-02T20:19:00.455' / Time of observation (UTC)
XBINNING=                    1 / X axis binning factor
YBINNING=                    1 / Y axis binning factor
GAIN    =                  120 / Sensor gain
OFFSET  =                   30 / Sensor gain offset
EGAIN   =     1.00224268436432 / [e-/ADU] Electrons per A/D unit
XPIXSZ  =                 4.63 / [um] Pixel X axis size
YPIXSZ  =                 4.63 / [um] Pixel Y axis size
INSTRUME= 'ZWO ASI294MC Pro'   / Imaging instrument name
SET-TEMP=                -10.0 / [degC] CCD temperature setpoint
CCD-TEMP=                -10.0 / [degC] CCD temperature
BAYERPAT= 'RGGB'               / Sensor Bayer pattern
XBAYROFF=                    0 / Bayer pattern X axis offset
YBAYROFF=                    0 / Bayer pattern Y axis offset
USBLIMIT=                   40 / Camera-specific USB setting
ROWORDER= 'TOP-DOWN'           / FITS Image Orientation
SWCREATE= 'N.I.N.A. 1.10.2.90' / Software that created this file
""".splitlines()
# The reference's cards with the values this camera writes the same (a mono sensor: no
# Bayer cards; XORGSUBF/YORGSUBF only on the subarray frame; FILTER, OBJECT added).
SAME_CARDS = ("SIMPLE", "BITPIX", "BZERO", "EXTEND", "IMAGETYP", "EXPOSURE", "EXPTIME",
              "XBINNING", "YBINNING", "SET-TEMP", "USBLIMIT", "ROWORDER", "SWCREATE")
COUNTS = {"n_bias": 5, "n_dark": 3, "n_flat": 3, "n_science": 3}


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> SimulatedNight:
    return simulate_night(tmp_path_factory.mktemp("cmos"), camera="cmos", scale=0.1, seed=6,
                          **COUNTS)


def _read(path: Path) -> tuple[np.ndarray, fits.Header]:
    with fits.open(path) as hdul:
        hdul.verify("exception")
        return hdul[0].data.astype(np.float64), hdul[0].header.copy()


def _raw_cards(path: Path) -> list[str]:
    cards: list[str] = []
    with path.open("rb") as fh:
        while True:
            block = fh.read(2880).decode("ascii")
            for i in range(0, 2880, 80):
                if block[i:i + 8] == "END     ":
                    return cards
                cards.append(block[i:i + 80])


def _files(night: SimulatedNight, kind: str, gain: int | None = None,
           exptime: float | None = None) -> list[dict]:
    return [f for f in load_truth(night.outdir).summary["files"]
            if f["kind"] == kind and (gain is None or f["gain_setting"] == gain)
            and (exptime is None or f["exptime"] == exptime) and f["window"] is None]


def _stack(night: SimulatedNight, entries: list[dict]) -> np.ndarray:
    return np.stack([_read(night.outdir / f["name"])[0] for f in entries])


# ----------------------------------------------------------------------------- files


def test_every_file_is_one_hdu_of_12_bit_values_in_16_bits(night: SimulatedNight) -> None:
    truth = load_truth(night.outdir).summary
    assert truth["adc_bits"] == 12 and truth["adu_scale"] == 16
    for path, entry in zip(night.files, truth["files"], strict=True):
        with fits.open(path) as hdul:  # pytest turns any astropy warning into an error
            hdul.verify("exception")
            assert len(hdul) == 1
            raw = hdul[0].data
            header = hdul[0].header
        assert raw.dtype == np.uint16 and header["BITPIX"] == 16 and header["BZERO"] == 32768
        assert raw.shape == tuple(entry["shape"]) == (header["NAXIS2"], header["NAXIS1"])
        assert not (raw % 16).any(), path.name
        assert raw.max() <= 65520
    assert not list(night.outdir.glob("*.part"))


def test_cards_are_ninas_card_for_card(night: SimulatedNight) -> None:
    reference = {c[:8].strip(): c.ljust(80) for c in NINA_REFERENCE}
    order = [c[:8].strip() for c in NINA_REFERENCE
             if c[:8].strip() not in ("BAYERPAT", "XBAYROFF", "YBAYROFF")]
    light = next(f for f in _files(night, "science") if f["exptime"] == 30.0)
    cards = _raw_cards(night.outdir / light["name"])
    keys = [c[:8].strip() for c in cards]
    cut = order.index("USBLIMIT")
    assert keys == [*order[:cut], "FILTER", "OBJECT", *order[cut:]]
    by_key = dict(zip(keys, cards, strict=True))
    for key in SAME_CARDS:
        assert by_key[key] == reference[key], key
    for key in ("GAIN", "OFFSET", "EGAIN", "XPIXSZ", "CCD-TEMP", "NAXIS1", "INSTRUME"):
        # Same layout: value ending in column 30 (strings from column 11), then " / ".
        assert by_key[key][30:33] == reference[key][30:33] or by_key[key][8:11] == "= '"
        assert by_key[key][30:].rstrip() == reference[key][30:].rstrip()


def test_card_values_have_ninas_types_and_meanings(night: SimulatedNight) -> None:
    truth = load_truth(night.outdir).summary
    settings = {s["gain"]: s for s in truth["settings"]}
    for path, entry in zip(night.files, truth["files"], strict=True):
        header = _read(path)[1]
        for key, kind in (("GAIN", int), ("OFFSET", int), ("XBINNING", int),
                          ("YBINNING", int), ("USBLIMIT", int), ("EGAIN", float),
                          ("EXPOSURE", float), ("EXPTIME", float), ("SET-TEMP", float),
                          ("CCD-TEMP", float), ("XPIXSZ", float), ("ROWORDER", str),
                          ("SWCREATE", str), ("IMAGETYP", str), ("INSTRUME", str)):
            assert type(header[key]) is kind, key
        assert header["IMAGETYP"] == entry["imagetyp"]
        assert header["GAIN"] == entry["gain_setting"]
        assert header["OFFSET"] == settings[header["GAIN"]]["offset"]
        assert header["EGAIN"] == pytest.approx(
            settings[header["GAIN"]]["egain_e_per_native_adu"], rel=1e-14)
        assert header["ROWORDER"] == "TOP-DOWN" and header["SWCREATE"].startswith("N.I.N.A.")
        assert "BAYERPAT" not in header and "READOUTM" not in header
        local = dt.datetime.fromisoformat(header["DATE-LOC"])
        assert local - dt.datetime.fromisoformat(header["DATE-OBS"]) == dt.timedelta(hours=1)
        assert header["DATE-OBS"] == entry["date_obs"]
        assert ("XORGSUBF" in header) == (entry["window"] is not None)
    assert {f["imagetyp"] for f in truth["files"]} == {"BIAS", "DARK", "FLAT", "LIGHT"}


def test_doubles_are_written_as_csharp_does() -> None:
    assert [cs_double(v) for v in (30.0, -10.0, 4.63, 1.00224268436432, 3.2e-05)] == [
        "30.0", "-10.0", "4.63", "1.00224268436432", "3.2E-05"]


def test_egain_follows_the_tenth_of_a_decibel_law() -> None:
    # 0.1 dB steps: a voltage gain of 10 ** (G / 200); unity gain at GAIN 139.
    assert egain_native(0) / egain_native(139) == pytest.approx(10 ** (139 / 200))
    assert egain_native(139) == pytest.approx(1.0, abs=0.002)
    assert egain_native(0) / egain_native(60) == pytest.approx(10 ** 0.3)


# --------------------------------------------------------------------------- physics


def test_gain_settings_give_their_own_offset_and_gain(night: SimulatedNight) -> None:
    """Masters of one setting do not fit the other: their levels differ by far more
    than the noise, and each setting's flat pair gives its own e-/ADU."""
    truth = load_truth(night.outdir).summary
    masters = {}
    for s in truth["settings"]:
        biases = _stack(night, _files(night, "bias", s["gain"]))
        masters[s["gain"]] = biases.mean(axis=0)
        assert np.median(biases) == pytest.approx(s["offset_level_file_adu"], abs=16)
        flats = _stack(night, _files(night, "flat", s["gain"]))[:2] - masters[s["gain"]]
        a, b = flats[0][5:-5, 5:-5], flats[1][5:-5, 5:-5]
        b = b * (a.mean() / b.mean())
        assert 2 * a.mean() / np.var(a - b) == pytest.approx(s["e_per_file_adu"], rel=0.05)
        assert np.median(flats) == pytest.approx(truth["flat_levels_adu"]["L"], rel=0.05)
    low, high = (masters[s["gain"]] for s in truth["settings"])
    noise = max(s["read_noise_file_adu"] for s in truth["settings"])
    assert abs(np.median(high - low)) > 10 * noise / math.sqrt(COUNTS["n_bias"])


def test_read_noise_map_and_high_noise_pixels_match_the_truth(night: SimulatedNight) -> None:
    truth = load_truth(night.outdir)
    s = truth.summary
    main = s["settings"][s["main_setting"]]
    biases = _stack(night, _files(night, "bias", main["gain"]))
    # Per-pixel variance over the biases (unbiased), in native ADU.
    measured = biases.var(axis=0, ddof=1) / s["adu_scale"] ** 2
    egain = main["egain_e_per_native_adu"]
    row_noise = s["offset_pattern_native"]["row_noise_per_frame"]
    expected = (truth.arrays[main["total_noise_key"]] / egain) ** 2 + row_noise**2 + 1 / 12
    assert np.mean(measured / expected) == pytest.approx(1.0, abs=0.03)
    high = truth.arrays["high_noise_pixels"]
    assert high.size == s["high_noise_pixels"]["count"] > 100
    assert truth.high_noise_pixel_mask().sum() == high.size
    flat_measured, flat_expected = measured.reshape(-1), expected.reshape(-1)
    assert np.mean(flat_measured[high] / flat_expected[high]) == pytest.approx(1.0, abs=0.12)
    # They stand out: their scatter is several times the typical one.
    typical = np.median(flat_measured)
    assert np.median(flat_measured[high]) > 4 * typical
    rn = truth.arrays[main["read_noise_key"]]
    assert np.median(rn) == pytest.approx(main["read_noise_map_e"]["median"])
    assert main["read_noise_map_e"]["median"] == pytest.approx(main["read_noise_e"], rel=0.02)


def test_glow_grows_faster_than_the_exposure(night: SimulatedNight) -> None:
    truth = load_truth(night.outdir)
    s = truth.summary
    main = s["settings"][s["main_setting"]]
    bias = _stack(night, _files(night, "bias", main["gain"])).mean(axis=0)
    glow = s["glow"]
    template = truth.arrays["glow_template"]
    corner = (slice(0, 4), slice(glow["column"] - 3, glow["column"] + 1))
    far = (slice(-20, None), slice(0, 20))
    dark_rate = truth.arrays["dark_current_e"]
    measured = {}
    for t in s["dark_exptimes"]:
        darks = _stack(night, _files(night, "dark", main["gain"], t)).mean(axis=0)
        electrons = (darks - bias) * main["e_per_file_adu"]
        measured[t] = float(np.mean(electrons[corner] - dark_rate[corner] * t))
        model = glow["corner_e_at_reference"] * float(np.mean(template[corner])) \
            * (t / glow["reference_exptime"]) ** glow["exponent"]
        assert measured[t] == pytest.approx(model, rel=0.1, abs=3.0)
        assert float(np.mean(truth.glow_electrons(t)[corner])) == pytest.approx(model, rel=1e-5)
        # Away from the corner only the dark current grows with the exposure.
        far_e = electrons[far] - dark_rate[far] * t
        assert abs(float(np.median(far_e))) < 1.5
    shortest, longest = min(measured), max(measured)
    per_second = (measured[longest] / longest) / (measured[shortest] / shortest)
    assert per_second > 2.0  # a linear dark scaling would give 1


def test_the_subarray_frame_is_the_window_its_origin_says(night: SimulatedNight) -> None:
    truth = load_truth(night.outdir).summary
    sub = truth["subarray"]
    entry = next(f for f in truth["files"] if f["window"] is not None)
    assert entry["name"] == sub["file"] and entry["kind"] == "science"
    data, header = _read(night.outdir / entry["name"])
    assert (header["NAXIS1"], header["NAXIS2"]) == (sub["nx"], sub["ny"])
    assert (header["XORGSUBF"], header["YORGSUBF"]) == (sub["x0"], sub["y0"])
    assert sub["nx"] % 8 == 0 and sub["ny"] % 2 == 0
    assert sub["nx"] < truth["shape"][1] and sub["ny"] < truth["shape"][0]
    main = truth["settings"][truth["main_setting"]]
    assert header["GAIN"] == main["gain"]
    bias = _stack(night, _files(night, "bias", main["gain"])).mean(axis=0)
    x0, y0, nx, ny = sub["x0"], sub["y0"], sub["nx"], sub["ny"]
    window = bias[y0:y0 + ny, x0:x0 + nx]
    sky = np.median(data - window)
    assert sky == pytest.approx(entry["signal_adu"], rel=0.1)
    # The hot pixels of the full-frame truth light up at the recorded origin only.
    dark = load_truth(night.outdir).arrays["dark_current_e"]
    excess = (data - window - sky).ravel()

    def match(dx: int, dy: int) -> float:
        cut = dark[y0 + dy:y0 + dy + ny, x0 + dx:x0 + dx + nx]
        return float(np.corrcoef(excess, cut.ravel())[0, 1])

    assert match(0, 0) > 0.3
    assert max(abs(match(dx, dy)) for dx, dy in ((8, 0), (-8, 0), (0, 2), (0, -2))) < 0.1


def test_calibration_frames_at_every_setting_and_exposure(night: SimulatedNight) -> None:
    truth = load_truth(night.outdir).summary
    for s in truth["settings"]:
        assert len(_files(night, "bias", s["gain"])) == COUNTS["n_bias"]
        assert len(_files(night, "flat", s["gain"])) == COUNTS["n_flat"]
        for t in truth["dark_exptimes"]:
            assert len(_files(night, "dark", s["gain"], t)) == COUNTS["n_dark"]
        # Darks match each setting's science exposure.
        assert s["science_exptime"] in truth["dark_exptimes"]
        assert {f["exptime"] for f in _files(night, "science", s["gain"])} == {
            s["science_exptime"]}
    assert {f["exptime"] for f in _files(night, "bias")} == {truth["bias_exptime"]}
    times = [f["date_obs"] for f in truth["files"]]
    assert times == sorted(times)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    kwargs = {"camera": "cmos", "scale": 0.04, "n_bias": 1, "n_dark": 1, "n_flat": 1,
              "n_science": 1}
    a = simulate_night(tmp_path / "a", seed=9, **kwargs)
    b = simulate_night(tmp_path / "b", seed=9, **kwargs)
    c = simulate_night(tmp_path / "c", seed=10, **kwargs)
    for pa, pb in zip([*a.files, a.truth_path, a.arrays_path],
                      [*b.files, b.truth_path, b.arrays_path], strict=True):
        assert pa.name == pb.name and pa.read_bytes() == pb.read_bytes()
    assert a.files[0].read_bytes() != c.files[0].read_bytes()


def test_every_file_passes_fitsverify(night: SimulatedNight) -> None:
    tool = shutil.which("fitsverify")
    if tool is None:
        if os.environ.get("NIGHTLOG_REQUIRE_FITSVERIFY") == "1":
            pytest.fail("NIGHTLOG_REQUIRE_FITSVERIFY=1 but fitsverify is not installed")
        pytest.skip("fitsverify is not installed (Debian package fitsverify)")
    for path in night.files:
        run = subprocess.run([tool, "-e", str(path)], capture_output=True, text=True,
                             check=False)
        assert run.returncode == 0 and "0 error(s)" in run.stdout, run.stdout


def test_the_colour_model_writes_its_bayer_pattern(tmp_path: Path) -> None:
    night = simulate_night(tmp_path, camera="cmos-colour", scale=0.06, seed=2, n_bias=2,
                           n_dark=0, n_flat=2, n_science=1)
    truth = load_truth(tmp_path).summary
    assert truth["bayer"]["pattern"] == "RGGB" and truth["instrument"] == "ZWO ASI1600MC Pro"
    light = next(f for f in truth["files"] if f["kind"] == "science" and f["window"] is None)
    keys = [c[:8].strip() for c in _raw_cards(tmp_path / light["name"])]
    reference = [c[:8].strip() for c in NINA_REFERENCE]
    cut = reference.index("USBLIMIT")
    assert keys == [*reference[:cut], "FILTER", "OBJECT", *reference[cut:]]
    header = _read(tmp_path / light["name"])[1]
    assert header["BAYERPAT"] == "RGGB" and header["XBAYROFF"] == header["YBAYROFF"] == 0
    # The flat shows the colour filters: R, G, G, B in each 2 × 2 cell.
    main = truth["settings"][truth["main_setting"]]["gain"]
    bias = _stack(night, _files(night, "bias", main)).mean(axis=0)
    flat = _stack(night, _files(night, "flat", main)).mean(axis=0) - bias
    cells = [np.median(flat[dy::2, dx::2]) for dy, dx in ((0, 0), (0, 1), (1, 0), (1, 1))]
    r, g1, g2, b = (c / np.mean(cells[1:3]) for c in cells)
    response = truth["bayer"]["response_rgb"]
    assert (r, g1, g2, b) == pytest.approx((response[0], 1.0, 1.0, response[2]), abs=0.02)
    sub = truth["subarray"]
    assert sub["x0"] % 2 == 0 and sub["y0"] % 2 == 0  # the window keeps the pattern's phase


@given(ny=st.integers(min_value=16, max_value=4000), nx=st.integers(min_value=16,
                                                                    max_value=5000))
def test_the_subarray_window_is_a_legal_roi_of_any_frame(ny: int, nx: int) -> None:
    x0, y0, wx, wy = subarray_window(ASI1600, (ny, nx))
    assert wx % 8 == 0 and wy % 2 == 0 and x0 % 2 == 0 and y0 % 2 == 0
    assert x0 >= 0 and x0 + wx <= nx and y0 >= 0 and y0 + wy <= ny
    assert wx >= 8 and wy >= 2
