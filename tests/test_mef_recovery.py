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
from nightlog.store.products import read_product
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


@pytest.fixture(scope="module")
def night(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # No configuration: the built-in profile alone reads the camera.
    return reduced_night(tmp_path_factory.mktemp("sinistro-night"), raw)


def _products(archive: Archive) -> dict[str, Any]:
    """Reduced products by raw file name."""
    frames = archive.frames()
    names = {int(f["id"]): Path(str(f["path"])).name for f in frames}
    return {names[int(r["frame_id"])]: archive.product(int(r["id"]))
            for r in archive.products()}


def _science(truth: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in truth["files"] if f["kind"] == "science"]


def test_every_file_is_catalogued_under_the_builtin_profile_and_none_quarantined(
        night: Settings, truth: dict[str, Any]) -> None:
    with Archive(night) as archive:
        frames = archive.frames()
        assert len(frames) == len(truth["files"])
        assert {str(p) for p in frames["profile"]} == {"lco_sinistro"}
        # Catalogued as the assembled detector, not one extension.
        rows, cols = truth["shape"]
        assert {(int(f["naxis2"]), int(f["naxis1"])) for f in frames} == {(rows, cols)}
        assert len(archive.products()) == len(_science(truth))
    engine = create_engine(night.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            assert list_quarantined(session) == []
    finally:
        engine.dispose()


def _amplifier_stats(archive: Archive, kind: str) -> list[list[dict[str, Any]]]:
    out = []
    for row in archive.masters(kind=kind):
        out.append(archive.master(int(row["id"])).record["stats"]["amplifiers"])
    assert out, f"no master {kind}"
    return out


@pytest.mark.parametrize("amp", [0, 1, 2, 3])
def test_each_amplifiers_gain_is_measured_on_the_flats_within_5_percent(
        night: Settings, truth: dict[str, Any], amp: int) -> None:
    """The photon-transfer gain each master flat (one per filter) records per
    amplifier, against the simulator's e-/ADU: a measurement, not the header's GAIN."""
    want = truth["amplifiers"][amp]["gain_e_per_adu"]
    with Archive(night) as archive:
        flats = _amplifier_stats(archive, "flat")
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
        (stats,) = _amplifier_stats(archive, "bias")
    assert stats[amp]["source"] == "measured on two biases"
    assert stats[amp]["read_noise_adu"] == pytest.approx(want["read_noise_adu"], rel=0.05)
    assert stats[amp]["read_noise_e"] == pytest.approx(want["read_noise_e"], rel=0.05)


def _robust_std(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _sky(product: Any) -> np.ndarray:
    """The reduced frame (e-) with flagged pixels as NaN."""
    ccd = read_product(product.path).ccd
    data = np.asarray(ccd.data, dtype=np.float64).copy()
    assert ccd.flags is not None
    data[ccd.flags != 0] = np.nan
    return data


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


def test_no_amplifier_boundary_step_in_the_reduced_sky(
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
    for entry in _science(truth):
        for name, diff in _boundaries(_sky(products[entry["name"]])).items():
            diff = diff[np.isfinite(diff)]
            assert diff.size > 0.8 * truth["shape"][0] / 2, name
            error = 1.2533 * _robust_std(diff) / np.sqrt(diff.size)
            per_boundary.setdefault(name, []).append((float(np.median(diff)), error))
    assert len(per_boundary) == 4
    for name, steps in per_boundary.items():
        assert len(steps) == len(_science(truth))
        weights = np.array([1.0 / e**2 for _m, e in steps])
        mean = float(np.sum(weights * np.array([m for m, _e in steps])) / weights.sum())
        error = float(1.0 / np.sqrt(weights.sum()))
        assert abs(mean) <= 2.0 * error, (name, mean, error, steps)


def _without_plane(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` less the plane fitted to them (the simulated sky has a linear
    gradient of up to 2 % along each axis), the fit repeated without the pixels
    beyond 4 robust sigma (stars, cosmic rays)."""
    yy, xx = np.indices(pixels.shape)
    good = np.isfinite(pixels)
    for _ in range(5):
        design = np.column_stack([np.ones(good.sum()), yy[good], xx[good]])
        coef, *_ = np.linalg.lstsq(design, pixels[good], rcond=None)
        residual = pixels - (coef[0] + coef[1] * yy + coef[2] * xx)
        good = np.isfinite(pixels) & (np.abs(residual) <= 4.0 * _robust_std(residual))
    return residual


@pytest.fixture(scope="module")
def flat_response(raw: Path) -> np.ndarray:
    """The truth's pixel response (mean 1) on the assembled detector."""
    with np.load(raw / "truth.npz") as arrays:
        return np.asarray(arrays["flat"], dtype=np.float64)


def _noise_floor(truth: dict[str, Any], entry: dict[str, Any], amp: int,
                 response: np.ndarray) -> np.ndarray:
    """The reduced sky's noise per pixel (product units), from the truth alone.

    In electrons the pixel holds ``sky x response``: its photon noise, the
    amplifier's read noise, the dark current, and the masters' own noise: the master
    bias's (read noise / sqrt(biases)), the master dark's (read noise scaled by the
    exposure ratio over sqrt(darks)). Divided by the master flat (the response over
    its median in the central box, the flat's normalisation), and the master flat's
    own relative noise, 1 / sqrt(flats x electrons per flat at that pixel), times
    the reduced sky.
    """
    files = truth["files"]
    read = truth["amplifiers"][amp]["read_noise_e"]
    sky = entry["signal_e"]
    dark = truth["dark_current_e_per_s"] * entry["exptime"]
    biases = [f for f in files if f["kind"] == "bias"]
    darks = [f for f in files if f["kind"] == "dark"]
    flats = [f for f in files if f["kind"] == "flat" and f["filter"] == entry["filter"]]
    flat_e = float(np.mean([f["signal_e"] for f in flats]))
    dark_scale = entry["exptime"] / float(np.mean([f["exptime"] for f in darks]))
    ny, nx = truth["shape"]
    norm = float(np.median(response[ny // 4: ny // 4 + ny // 2, nx // 4: nx // 4 + nx // 2]))
    electrons = (sky * response + read**2 + dark + read**2 / len(biases)
                 + (read * dark_scale) ** 2 / len(darks))
    reduced = sky * norm
    flat_part = reduced**2 / (len(flats) * flat_e * response)
    return np.sqrt(electrons * (norm / response) ** 2 + flat_part)


def test_the_reduced_sky_is_within_5_percent_of_its_noise_floor(
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
    for entry in _science(truth):
        data = _sky(products[entry["name"]])
        for amp, box in enumerate(quadrants):
            floor = _noise_floor(truth, entry, amp, flat_response)[box]
            ratios.append((entry["name"], amp + 1,
                           round(_robust_std(_without_plane(data[box]) / floor), 4)))
    assert all(0.95 <= r <= 1.05 for _n, _a, r in ratios), ratios


def test_the_products_record_each_amplifiers_gain_and_read_noise(
        night: Settings, truth: dict[str, Any]) -> None:
    with Archive(night) as archive:
        product = next(iter(_products(archive).values()))
    header = fits.getheader(product.path)
    for k, amp in enumerate(truth["amplifiers"], start=1):
        assert header[f"GAIN_A{k}"] == pytest.approx(amp["gain_e_per_adu"], rel=1e-6)
        assert header[f"RDN_A{k}"] == pytest.approx(amp["read_noise_e"], rel=1e-6)
