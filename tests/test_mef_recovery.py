"""The simulated LCO Sinistro night (four amplifiers written as MEF) through the
public flow (ingest, master builds, reduction) under the built-in ``lco_sinistro``
profile, compared with the simulator's truth: no amplifier boundary step in a
reduced sky frame, each amplifier's gain and read noise recovered, the reduced sky
at its noise floor, no file quarantined."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

from nightlog.archive import Archive
from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.quarantine import list_quarantined
from nightlog.settings import Settings
from nightlog.simulate import simulate_night
from tests.amplifier_sky import (
    amplifier_stats,
    noise_floor,
    robust_std,
    science,
    sky,
    without_plane,
)
from tests.amplifier_sky import products as ccd_products
from tests.factories import reduced_night

SCALE = 0.1


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("sinistro") / "sim"
    simulate_night(where, camera="mef", scale=SCALE, seed=5)
    return where


@pytest.fixture(scope="module")
def truth(raw: Path) -> dict[str, Any]:
    return json.loads((raw / "truth.json").read_text(encoding="utf-8"))


def _products(archive: Archive) -> dict[str, Any]:
    """Reduced products by raw file name (a file of one CCD)."""
    return {name: p for (name, _ccd), p in ccd_products(archive).items()}


@pytest.fixture(scope="module")
def night(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # No configuration: the built-in profile alone reads the camera.
    return reduced_night(tmp_path_factory.mktemp("sinistro-night"), raw)


def test_every_file_is_catalogued_under_the_builtin_profile_and_none_quarantined(
        night: Settings, truth: dict[str, Any]) -> None:
    with Archive(night) as archive:
        frames = archive.frames()
        assert len(frames) == len(truth["files"])
        assert {str(p) for p in frames["profile"]} == {"lco_sinistro"}
        # Catalogued as the assembled detector, not one extension.
        rows, cols = truth["shape"]
        assert {(int(f["naxis2"]), int(f["naxis1"])) for f in frames} == {(rows, cols)}
        assert len(archive.products()) == len(science(truth))
    engine = create_engine(night.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            assert list_quarantined(session) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("amp", [0, 1, 2, 3])
def test_each_amplifiers_gain_is_measured_on_the_flats_within_5_percent(
        night: Settings, truth: dict[str, Any], amp: int) -> None:
    """The photon-transfer gain each master flat (one per filter) records per
    amplifier, against the simulator's e-/ADU: a measurement, not the header's GAIN."""
    want = truth["amplifiers"][amp]["gain_e_per_adu"]
    with Archive(night) as archive:
        flats = amplifier_stats(archive, "flat")
    assert len(flats) == 2
    for stats in flats:
        assert stats[amp]["name"] == f"SCI,{amp + 1}"
        assert stats[amp]["source"].startswith("measured on two flats")
        assert stats[amp]["gain"] == pytest.approx(want, rel=0.05)


@pytest.mark.parametrize("amp", [0, 1, 2, 3])
def test_each_amplifiers_read_noise_is_measured_on_the_biases_within_5_percent(
        night: Settings, truth: dict[str, Any], amp: int) -> None:
    want = truth["amplifiers"][amp]
    with Archive(night) as archive:
        (stats,) = amplifier_stats(archive, "bias")
    assert stats[amp]["source"] == "measured on two biases"
    assert stats[amp]["read_noise_adu"] == pytest.approx(want["read_noise_adu"], rel=0.05)
    assert stats[amp]["read_noise_e"] == pytest.approx(want["read_noise_e"], rel=0.05)


def _boundaries(data: np.ndarray) -> dict[str, np.ndarray]:
    """Each boundary between two amplifiers: the per-pixel differences of the two
    columns (or rows) either side of it."""
    ny, nx = data.shape
    my, mx = ny // 2, nx // 2
    return {
        "amp1|amp2 (column)": data[:my, mx] - data[:my, mx - 1],
        "amp4|amp3 (column)": data[my:, mx] - data[my:, mx - 1],
        "amp1|amp4 (row)": data[my, :mx] - data[my - 1, :mx],
        "amp2|amp3 (row)": data[my, mx:] - data[my - 1, mx:],
    }


def test_no_amplifier_boundary_step_in_the_reducedsky(
        night: Settings, truth: dict[str, Any]) -> None:
    """Each of the four boundaries, over all the night's reduced frames: the mean
    step (the difference of the two columns or rows either side of it, each frame's
    step a median of its per-pixel differences, robust to the stars) at most 2
    standard errors (the median's, 1.2533 sigma / sqrt(n), combined over the frames
    by inverse variance). The raw amplifiers differ by tens of ADU in bias and by up
    to 7 % in gain: a 0.3 % gain error would be a 3-sigma step on this sky."""
    with Archive(night) as archive:
        products = _products(archive)
    per_boundary: dict[str, list[tuple[float, float]]] = {}
    for entry in science(truth):
        for name, diff in _boundaries(sky(products[entry["name"]])).items():
            diff = diff[np.isfinite(diff)]
            assert diff.size > 0.8 * truth["shape"][0] / 2, name
            error = 1.2533 * robust_std(diff) / np.sqrt(diff.size)
            per_boundary.setdefault(name, []).append((float(np.median(diff)), error))
    assert len(per_boundary) == 4
    for name, steps in per_boundary.items():
        assert len(steps) == len(science(truth))
        weights = np.array([1.0 / e**2 for _m, e in steps])
        mean = float(np.sum(weights * np.array([m for m, _e in steps])) / weights.sum())
        error = float(1.0 / np.sqrt(weights.sum()))
        assert abs(mean) <= 2.0 * error, (name, mean, error, steps)


@pytest.fixture(scope="module")
def flat_response(raw: Path) -> np.ndarray:
    """The truth's pixel response (mean 1) on the assembled detector."""
    with np.load(raw / "truth.npz") as arrays:
        return np.asarray(arrays["flat"], dtype=np.float64)


def test_the_reduced_sky_is_within_5_percent_of_itsnoise_floor(
        night: Settings, truth: dict[str, Any], flat_response: np.ndarray) -> None:
    """Per amplifier's quadrant of each reduced frame: the robust standard deviation
    (1.4826 MAD) of the sky pixels, the sky's gradient taken out, each pixel in units
    of its noise floor from the truth: at most 1.05, and not below 0.95 (a lower
    scatter would mean lost noise, or wrong units). What the floor leaves out (the
    overscan's own noise, a read noise / sqrt(6) per row; the faint wings of stars)
    must fit in the 5 %."""
    with Archive(night) as archive:
        products = _products(archive)
    ny, nx = truth["shape"]
    quadrants = [np.s_[: ny // 2, : nx // 2], np.s_[: ny // 2, nx // 2:],
                 np.s_[ny // 2:, nx // 2:], np.s_[ny // 2:, : nx // 2]]
    ratios = []
    for entry in science(truth):
        data = sky(products[entry["name"]])
        for amp, box in enumerate(quadrants):
            floor = noise_floor(truth, entry, amp, flat_response)[box]
            ratios.append((entry["name"], amp + 1,
                           round(robust_std(without_plane(data[box]) / floor), 4)))
    assert all(0.95 <= r <= 1.05 for _n, _a, r in ratios), ratios


def test_the_products_record_each_amplifiers_gain_and_read_noise(
        night: Settings, truth: dict[str, Any]) -> None:
    with Archive(night) as archive:
        product = next(iter(_products(archive).values()))
    header = fits.getheader(product.path)
    for k, amp in enumerate(truth["amplifiers"], start=1):
        assert header[f"GAIN_A{k}"] == pytest.approx(amp["gain_e_per_adu"], rel=1e-6)
        assert header[f"RDN_A{k}"] == pytest.approx(amp["read_noise_e"], rel=1e-6)
