"""The masters' uncertainty planes say how far each master is from the simulator's truth.

A simulated night of the LFC (five frames of each kind) and of the Aspen, its
masters built with a profile that gives neither a gain nor a read noise. For each
master, ``z`` is the root mean square of its error against the truth over that
of its plane, on its good pixels: 1 when the plane states the error a reduced
frame inherits from it. Each row's median is taken out of the error first (the
overscan is measured per row, and its error is common to a row: the planes
state the pixels' own errors, as tests/test_detector_measured.py does).

Tolerances: with 85 000 (LFC) and 168 000 (Aspen) pixels the root mean square
of a normal error is known to 1/√(2N), 0.25 % and 0.17 %; the clipped
combinations' errors have heavier tails (up to twice that), and the flat's and
the dark's factors are measured on 100 000 to 200 000 draws (0.2-0.5 %). 1.5 %
for the bias and the flats, 2 % for a dark, are five of those deviations or more.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import Engine, select

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Master
from nightlog.simulate import SimulationTruth, load_truth
from tests.test_detector_measured import masters_of_a_measured_night

Night = tuple[Engine, SimulationTruth]

#: The LFC's dark, of 7, 70 and 300 s darks with three overscan columns a row: its
#: frames' per-row overscan noise is in their scatter, so in its plane, but not in
#: its error once each row's median is out; 4.8 % measured, hence its wider bound.
_LFC_DARK_TOLERANCE = 0.06


@pytest.fixture(scope="module", params=["lfc", "aspen"])
def night(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Night]:
    """The masters of a simulated night of ``camera``, in an SQLite archive of its own."""
    camera = request.param
    where = tmp_path_factory.mktemp(f"planes-{camera}")
    engine, raw, _ = masters_of_a_measured_night(where, camera)
    yield engine, load_truth(raw)
    engine.dispose()
    shutil.rmtree(where, ignore_errors=True)


def _masters(engine: Engine, kind: str) -> list[Path]:
    with make_sessionmaker(engine)() as s:
        paths = [Path(m.path) for m in s.scalars(select(Master).where(Master.kind == kind))]
    assert paths, f"no master {kind}"
    return paths


def _read(path: Path, nx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with fits.open(path) as hdul:
        data = np.asarray(hdul["PRIMARY"].data, dtype=np.float64)[:, :nx]
        sigma = np.asarray(hdul["UNCERT"].data, dtype=np.float64)[:, :nx]
        good = np.asarray(hdul["MASK"].data)[:, :nx] == 0
    return data, sigma, good & np.isfinite(data) & np.isfinite(sigma)


def _z(error: np.ndarray, sigma: np.ndarray, good: np.ndarray) -> float:
    """Root mean square of ``error`` less each row's median, over that of ``sigma``."""
    rows = np.nanmedian(np.where(good, error, np.nan), axis=1, keepdims=True)
    residual = (error - rows)[good]
    return float(np.sqrt(np.mean(residual**2) / np.mean(sigma[good] ** 2)))


def test_the_master_bias_plane_is_its_error(night: Night) -> None:
    engine, truth = night
    nx = truth.summary["image_columns"]
    (path,) = _masters(engine, "bias")
    data, sigma, good = _read(path, nx)
    assert _z(data - truth.arrays["bias_adu"][:, :nx], sigma, good) == pytest.approx(
        1.0, abs=0.015)


def test_the_master_dark_plane_is_its_error(night: Night) -> None:
    """The dark as written (the counts of 1 s) against the truth's dark current, its
    share of the master bias's error included on both sides."""
    engine, truth = night
    nx = truth.summary["image_columns"]
    (path,) = _masters(engine, "dark")
    data, sigma, good = _read(path, nx)
    rate = truth.arrays["dark_current_e"][:, :nx] / truth.summary["gain_e_per_adu"]
    tolerance = _LFC_DARK_TOLERANCE if truth.summary["camera"] == "lfc" else 0.02
    assert _z(data - rate, sigma, good) == pytest.approx(1.0, abs=tolerance)


def test_the_master_flat_plane_is_its_error(night: Night) -> None:
    """Each filter's flat against the truth's response, scaled to the flat's own
    normalisation; also pixel by pixel (the plane is a model, not the scatter of
    five values, so the ratios themselves are normal)."""
    engine, truth = night
    nx = truth.summary["image_columns"]
    response = truth.arrays["flat"][:, :nx]
    for path in _masters(engine, "flat"):
        data, sigma, good = _read(path, nx)
        good &= sigma > 0
        scale = float(np.median(data[good] / response[good]))
        error = data - scale * response
        assert _z(error, sigma, good) == pytest.approx(1.0, abs=0.015)
        assert float(np.std(error[good] / sigma[good])) == pytest.approx(1.0, abs=0.015)
