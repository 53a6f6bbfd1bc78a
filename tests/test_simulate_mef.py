"""The four-amplifier MEF camera of the simulator: LCO Sinistro conventions and truth.

The layout is checked against BANZAI's table (``banzai/lco.py::_munge_data_cube``,
section 1a of the MEF/CMOS reference); the physics against the truth with plain
numpy following the lecture (bias pairs for read noise, flat pairs for gain).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from nightlog.cli.app import app
from nightlog.errors import ConfigurationError
from nightlog.sections import parse_section, section_shape
from nightlog.simulate import SimulatedNight, load_truth, simulate_night
from nightlog.simulate.cameras import SINISTRO, Geometry
from nightlog.simulate.detector import DetectorMaps
from nightlog.simulate.mef_physics import build_amp_bias, expose_mef
from nightlog.simulate.schedule import PlannedFrame
from nightlog.simulate.sinistro import AMPLIFIERS, CROSSTALK, mef_layout

# BANZAI's full-frame ("full" mode) sections, verbatim.
BANZAI_DATASEC = ["[1:2048,1:2048]", "[1:2048,1:2048]", "[1:2048,2:2049]", "[1:2048,2:2049]"]
BANZAI_DETSEC = ["[1:2048,1:2048]", "[4096:2049,1:2048]", "[4096:2049,4096:2049]",
                 "[1:2048,4096:2049]"]
BANZAI_BIASSEC = "[2055:2080,1:2048]"
COUNTS = {"n_bias": 6, "n_dark": 2, "n_flat": 3, "n_science": 2}


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> SimulatedNight:
    return simulate_night(tmp_path_factory.mktemp("mef"), camera="mef", scale=0.1, seed=4,
                          **COUNTS)


def _amps(path: Path) -> tuple[fits.Header, list[tuple[fits.Header, np.ndarray]]]:
    with fits.open(path) as hdul:
        hdul.verify("exception")
        return hdul[0].header.copy(), [(h.header.copy(), h.data.astype(np.float64))
                                       for h in hdul[1:]]


def _names(night: SimulatedNight, kind: str, filt: str | None = None) -> list[Path]:
    return [night.outdir / f["name"] for f in load_truth(night.outdir).summary["files"]
            if f["kind"] == kind and (filt is None or f["filter"] == filt)]


def _stack(paths: list[Path], k: int) -> np.ndarray:
    return np.stack([_amps(p)[1][k][1] for p in paths])


# ----------------------------------------------------------------------- conventions


def test_full_size_layout_is_banzais() -> None:
    layout = mef_layout(1.0)
    assert [a.datasec for a in layout.amps] == BANZAI_DATASEC
    assert [a.detsec for a in layout.amps] == BANZAI_DETSEC
    assert {a.biassec for a in layout.amps} == {BANZAI_BIASSEC}
    assert layout.amp_shape == (2049, 2080)


def test_every_file_is_an_empty_primary_and_four_amplifiers(night: SimulatedNight) -> None:
    truth = load_truth(night.outdir).summary
    assert len(night.files) == len(truth["files"]) == 6 + 2 * 2 + 3 * 2 + 2
    for path, entry in zip(night.files, truth["files"], strict=True):
        with fits.open(path) as hdul:  # pytest turns any astropy warning into an error
            hdul.verify("exception")
            primary = hdul[0]
            assert primary.header["NAXIS"] == 0 and primary.data is None
            assert primary.header["EXTEND"] is True
            for key in ("SITEID", "INSTRUME", "OBSTYPE", "DATE-OBS", "DAY-OBS", "EXPTIME",
                        "CCDSUM"):
                assert key in primary.header
            assert primary.header["OBSTYPE"] == entry["obstype"]
            assert primary.header["EXPTIME"] == entry["exptime"]
            assert ("FILTER" in primary.header) == (entry["kind"] in ("flat", "science"))
            assert len(hdul) == 5
            for k, hdu in enumerate(hdul[1:], start=1):
                assert hdu.header["EXTNAME"] == "SCI" and hdu.header["EXTVER"] == k
                assert hdu.data.dtype == np.uint16
                assert hdu.data.shape == tuple(truth["amp_shape"])
                assert hdu.header["BZERO"] == 32768 and hdu.header["BITPIX"] == 16
                for key, kind in (("GAIN", float), ("RDNOISE", float), ("SATURATE", float),
                                  ("CCDSUM", str), ("BIASSEC", str), ("DATASEC", str),
                                  ("DETSEC", str)):
                    assert isinstance(hdu.header[key], kind), key
    assert {f["obstype"] for f in truth["files"]} == {"BIAS", "DARK", "SKYFLAT", "EXPOSE"}
    assert not list(night.outdir.glob("*.part"))


def test_sections_parse_and_detsec_tiles_the_detector(night: SimulatedNight) -> None:
    truth = load_truth(night.outdir).summary
    ny, nx = truth["shape"]
    cover = np.zeros((ny, nx), dtype=int)
    _, amps = _amps(night.files[0])
    flips = []
    for header, data in amps:
        datasec = parse_section(header["DATASEC"], data.shape)
        detsec = parse_section(header["DETSEC"], (ny, nx))
        biassec = parse_section(header["BIASSEC"], data.shape)
        assert section_shape(datasec, data.shape) == section_shape(detsec, (ny, nx))
        cover[detsec] += 1
        # The overscan comes after the data columns.
        assert biassec[1].start >= datasec[1].stop
        assert biassec[1].stop == data.shape[1]
        flips.append((detsec[1].step == -1, detsec[0].step == -1))
    assert (cover == 1).all()
    assert flips == [(False, False), (True, False), (True, True), (False, True)]
    assert [(a["flip_x"], a["flip_y"]) for a in truth["amplifiers"]] == flips


def test_raw_pixel_one_one_is_the_outer_corner(night: SimulatedNight) -> None:
    """Placing each amplifier by its DETSEC rebuilds the flat field the truth holds.

    Reversed DETSEC slices flip the raw pixels back; had the simulator not flipped
    them, the vignetting and the dust shadows would not line up with the truth.
    """
    truth = load_truth(night.outdir)
    ny, nx = truth.summary["shape"]
    flats = _names(night, "flat", "rp")
    mosaic = np.zeros((ny, nx))
    for k, amp in enumerate(truth.summary["amplifiers"]):
        bias = _stack(_names(night, "bias"), k).mean(axis=0)
        flat = _stack(flats, k).mean(axis=0) - bias
        header = _amps(flats[0])[1][k][0]
        datasec = parse_section(header["DATASEC"], flat.shape)
        mosaic[parse_section(header["DETSEC"], (ny, nx))] = flat[datasec] * amp["gain_e_per_adu"]
    mosaic /= mosaic.mean()
    expected = truth.arrays["flat"]
    assert np.corrcoef(mosaic.ravel(), expected.ravel())[0, 1] > 0.9
    # Without the flips, the same pixels land elsewhere and the match is lost.
    unflipped = np.zeros_like(mosaic)
    n = ny // 2
    for k, amp in enumerate(truth.summary["amplifiers"]):
        bias = _stack(_names(night, "bias"), k).mean(axis=0)
        flat = (_stack(flats, k).mean(axis=0) - bias)
        rows = slice(1, n + 1) if k >= 2 else slice(0, n)
        unflipped[(k >= 2) * n:(k >= 2) * n + n, (k in (1, 2)) * n:(k in (1, 2)) * n + n] = (
            flat[rows, :n] * amp["gain_e_per_adu"])
    unflipped /= unflipped.mean()
    assert np.corrcoef(unflipped.ravel(), expected.ravel())[0, 1] < 0.8


# --------------------------------------------------------------------------- physics


def test_per_amplifier_bias_level_and_read_noise_match_the_truth(night: SimulatedNight
                                                                 ) -> None:
    truth = load_truth(night.outdir)
    s = truth.summary
    n = s["amp_shape"][1] - s["overscan_columns"]
    biases = _names(night, "bias")
    entries = [truth.file_entry(p.name) for p in biases]
    levels = []
    for k, amp in enumerate(s["amplifiers"]):
        stack = _stack(biases, k)
        # Read noise: a difference of two biases, each row's own level taken out
        # (the row drift and the frame offset differ between the two frames).
        diff = stack[0, :, :n] - stack[1, :, :n]
        diff -= np.median(diff, axis=1, keepdims=True)
        assert diff.std() / np.sqrt(2) == pytest.approx(amp["read_noise_adu"], rel=0.03)
        # Level: the master bias equals the fixed structure plus the frames' mean
        # offsets and row drifts.
        offsets = np.mean([e["amps"][k]["bias_offset_adu"] for e in entries])
        drift = np.mean([truth.arrays[e["row_drift_key"]][k] for e in entries], axis=0)
        expected = truth.arrays[f"bias_adu_amp{k + 1}"] + offsets + drift[:, None]
        residual = stack.mean(axis=0) - expected
        assert abs(np.median(residual)) < 0.1
        assert residual.std() == pytest.approx(amp["read_noise_adu"] / np.sqrt(len(biases)),
                                               rel=0.05)
        levels.append(np.median(stack[:, :, :n]))
        assert np.median(stack[:, :, :n]) == pytest.approx(amp["bias_level_adu"], abs=1.5)
    # Four different levels: a step at every amplifier boundary of a raw mosaic.
    assert min(abs(a - b) for i, a in enumerate(levels) for b in levels[i + 1:]) > 10


def test_gain_per_amplifier_from_a_flat_pair(night: SimulatedNight) -> None:
    truth = load_truth(night.outdir).summary
    n = truth["amp_shape"][1] - truth["overscan_columns"]
    flats = _names(night, "flat", "gp")
    for k, amp in enumerate(truth["amplifiers"]):
        bias = _stack(_names(night, "bias"), k).mean(axis=0)
        pair = _stack(flats[:2], k)[:, 2:-2, 2:n - 2] - bias[2:-2, 2:n - 2]
        a, b = pair[0], pair[1] * (pair[0].mean() / pair[1].mean())
        gain = 2 * a.mean() / np.var(a - b)
        assert gain == pytest.approx(amp["gain_e_per_adu"], rel=0.05)
        assert _amps(flats[0])[1][k][0]["GAIN"] == amp["header_gain"]


def test_the_row_drift_is_seen_in_the_overscan_and_the_data(night: SimulatedNight) -> None:
    truth = load_truth(night.outdir)
    s = truth.summary
    n = s["amp_shape"][1] - s["overscan_columns"]
    path = _names(night, "bias")[0]
    entry = truth.file_entry(path.name)
    drift = truth.arrays[entry["row_drift_key"]]
    for k, ((header, data), amp) in enumerate(zip(_amps(path)[1], s["amplifiers"],
                                                  strict=True)):
        overscan = data[parse_section(header["BIASSEC"], data.shape)]
        rows = parse_section(header["BIASSEC"], data.shape)[0]
        over_rows = overscan.mean(axis=1) - amp["bias_level_adu"]
        expected = drift[k][rows] + entry["amps"][k]["bias_offset_adu"]
        # The overscan follows the truth's drift to within its own read noise.
        noise = amp["read_noise_adu"] / np.sqrt(overscan.shape[1])
        residual = over_rows - expected
        assert abs(residual.mean()) < 3 * noise / np.sqrt(residual.size)
        assert residual.std() == pytest.approx(noise, rel=0.15)
        # The first rows read sit higher by the settling amplitude.
        assert over_rows[:2].mean() - over_rows[-20:].mean() > 0.5 * amp["drift_settle_adu"]
        # The data rows carry the same drift: one value per amplifier would leave it.
        data_rows = data[rows, :n].mean(axis=1) - amp["bias_level_adu"] - expected
        data_rows -= np.median(data_rows)
        assert data_rows.std() < 0.5
        assert np.corrcoef(data[rows, :n].mean(axis=1), expected)[0, 1] > 0.95


def test_amplifier_boundaries_vanish_with_the_true_gains(night: SimulatedNight) -> None:
    """Raw flats step at the vertical boundary; overscan-subtracted electrons do not."""
    truth = load_truth(night.outdir).summary
    n = truth["amp_shape"][1] - truth["overscan_columns"]
    path = _names(night, "flat", "rp")[0]
    _, amps = _amps(path)
    ny, nx = truth["shape"]
    raw = np.zeros((ny, nx))
    electrons = np.zeros((ny, nx))
    for (header, data), amp in zip(amps, truth["amplifiers"], strict=True):
        over = data[parse_section(header["BIASSEC"], data.shape)].mean(axis=1)
        corrected = (data[:, :n] - np.append(over, over[-1])[:, None]) * amp["gain_e_per_adu"]
        datasec = parse_section(header["DATASEC"], data.shape)
        detsec = parse_section(header["DETSEC"], (ny, nx))
        raw[detsec] = data[datasec]
        electrons[detsec] = np.pad(corrected, ((0, 0), (0, data.shape[1] - n)))[datasec]
    m = nx // 2
    rows = slice(5, ny // 2 - 5)

    def step(image: np.ndarray) -> float:
        left = np.median(image[rows, m - 4:m])
        right = np.median(image[rows, m:m + 4])
        return abs(right / left - 1)

    assert step(raw) > 0.02
    assert step(electrons) < 0.01


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    kwargs = {"camera": "mef", "scale": 0.04, "n_bias": 1, "n_dark": 1, "n_flat": 1,
              "n_science": 1}
    a = simulate_night(tmp_path / "a", seed=9, **kwargs)
    b = simulate_night(tmp_path / "b", seed=9, **kwargs)
    c = simulate_night(tmp_path / "c", seed=10, **kwargs)
    for pa, pb in zip([*a.files, a.truth_path, a.arrays_path],
                      [*b.files, b.truth_path, b.arrays_path], strict=True):
        assert pa.name == pb.name and pa.read_bytes() == pb.read_bytes()
    assert a.files[-1].read_bytes() != c.files[-1].read_bytes()


def test_truth_carries_what_the_recovery_tests_need(night: SimulatedNight) -> None:
    truth = load_truth(night.outdir)
    s = truth.summary
    assert s["camera"] == "mef" and s["layout"] == "mef" and len(s["amplifiers"]) == 4
    for amp in s["amplifiers"]:
        for key in ("gain_e_per_adu", "read_noise_e", "bias_level_adu", "drift_settle_adu",
                    "flip_x", "flip_y", "datasec", "detsec", "biassec"):
            assert key in amp
        assert 1.9 <= amp["gain_e_per_adu"] <= 2.1 and 7.5 <= amp["read_noise_e"] <= 8.0
    assert len(s["crosstalk"]) == 4 and all(row[i] == 0 for i, row in enumerate(s["crosstalk"]))
    assert truth.arrays["flat"].shape == tuple(s["shape"])
    assert truth.hot_pixel_mask().sum() == s["hot_pixels"] > 0
    for f in s["files"]:
        assert truth.arrays[f["row_drift_key"]].shape == (4, s["amp_shape"][0])
        assert truth.cosmic_ray_mask(f["name"]).sum() == f["cosmic_ray_pixels"]


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


def test_too_small_a_scale_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        simulate_night(tmp_path, camera="mef", scale=0.005)
    assert not list(tmp_path.iterdir())


def test_the_cli_writes_a_mef_night(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", str(tmp_path / "out"), "--camera", "mef",
                                      "--scale", "0.03", "--seed", "2"])
    assert result.exit_code == 0, result.output
    truth = load_truth(tmp_path / "out")
    assert truth.summary["camera"] == "mef" and truth.summary["seed"] == 2
    assert all((tmp_path / "out" / f["name"]).is_file() for f in truth.summary["files"])


def test_crosstalk_puts_a_fraction_of_each_amplifier_on_the_others() -> None:
    """Light on amplifier 1 only: the others read CROSSTALK[0][j] of its signal."""
    layout = mef_layout(0.02)
    ny, nx = layout.detector_shape
    geom = Geometry(scale=layout.scale, ny=ny, nx_data=nx, n_overscan=0, leak_columns=0)
    lit = np.zeros((ny, nx), dtype=np.float32)
    lit[layout.amps[0].det_rows, layout.amps[0].det_cols] = 1.0
    zeros = np.zeros((ny, nx), dtype=np.float32)
    maps = DetectorMaps(bias_adu=zeros, dark_e=zeros, flat=lit, hot=zeros > 0, dead=zeros > 0)
    amp_bias = build_amp_bias(layout, np.random.default_rng(1))
    frame = PlannedFrame(index=0, kind="flat", filename="x.fits",
                         start=dt.datetime(2019, 4, 5, 23, tzinfo=dt.UTC), exptime=1.0,
                         darktime=0.0, filter="rp", object_name="flat", frame_number=1,
                         illumination_e=40000.0)
    exposed = expose_mef(frame, SINISTRO, geom, layout, maps, amp_bias, None,
                         np.random.default_rng(2))
    n = layout.n
    source = 40000.0 / AMPLIFIERS[0].gain
    for j in range(1, 4):
        rows = layout.amps[j].data_rows
        above = (exposed.data[j].astype(np.float64) - amp_bias[j]
                 - exposed.row_drift_adu[j][:, None] - exposed.offsets_adu[j])[rows, :n]
        assert np.mean(above) == pytest.approx(CROSSTALK[0][j] * source, abs=0.3)
    assert CROSSTALK[0][1] * source > 5  # well above that tolerance


@given(scale=st.floats(min_value=0.008, max_value=1.0))
def test_the_layout_keeps_banzais_conventions_at_every_scale(scale: float) -> None:
    layout = mef_layout(scale)
    ny, nx = layout.detector_shape
    amp_shape = layout.amp_shape
    cover = np.zeros((ny, nx), dtype=np.int8)
    for amp, where in zip(AMPLIFIERS, layout.amps, strict=True):
        datasec = parse_section(where.datasec, amp_shape)
        detsec = parse_section(where.detsec, (ny, nx))
        biassec = parse_section(where.biassec, amp_shape)
        assert section_shape(datasec, amp_shape) == section_shape(detsec, (ny, nx)) == (
            layout.n, layout.n)
        assert (detsec[1].step == -1, detsec[0].step == -1) == (amp.flip_x, amp.flip_y)
        assert biassec[1].start > datasec[1].stop and biassec[1].stop == amp_shape[1]
        assert biassec[1].stop - biassec[1].start >= 6
        cover[detsec] += 1
    assert (cover == 1).all()
