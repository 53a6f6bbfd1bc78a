"""A master dark's HOT limit found once by its builder and read back by the frames'
bit plane: the same HOT pixels as finding it again, in memory and from a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData

from nightlog.reduction.bad_pixels import role_bits
from nightlog.reduction.dark_temperature import scale_dark_temperature
from nightlog.reduction.hot_limit import HOT_CARDS, forget_hot_limit, recorded_hot_limit
from nightlog.reduction.mask import MaskBit, hot_pixels_from_dark
from nightlog.reduction.masters import make_master_dark
from tests.test_science import PARAMS

SHAPE = (64, 80)


@pytest.fixture(scope="module")
def dark() -> CCDData:
    """A master dark of 5 simulated darks of 300 s with hot pixels (ADU/s)."""
    rng = np.random.default_rng(11)
    rate = np.full(SHAPE, 0.02)
    hot = rng.random(SHAPE) < 0.01
    rate[hot] = rng.uniform(0.5, 20, int(hot.sum()))
    frames = [(rng.poisson(rate * 300) + rng.normal(0, 5, SHAPE)).astype(np.float32)
              for _ in range(5)]
    return make_master_dark(frames, [300.0] * 5).ccd


def _recomputed(dark: CCDData) -> np.ndarray:
    """The dark's bits with its limit found again (its HOT cards removed)."""
    header = dark.header.copy()
    forget_hot_limit(header)
    return role_bits("dark", CCDData(dark.data, unit=dark.unit, flags=dark.flags,
                                     mask=dark.mask, meta=header), PARAMS)


def test_the_recorded_limit_gives_the_hot_pixels_found_again(dark: CCDData) -> None:
    assert recorded_hot_limit(dark, PARAMS.hot_nsigma) is not None
    bits = role_bits("dark", dark, PARAMS)
    np.testing.assert_array_equal(bits, _recomputed(dark))
    hot = (bits & MaskBit.HOT) != 0
    np.testing.assert_array_equal(hot, hot_pixels_from_dark(dark, nsigma=PARAMS.hot_nsigma))
    assert 0.005 < hot.mean() < 0.02


def test_pixels_at_the_limit_fall_as_the_whole_frame_rule_puts_them(dark: CCDData) -> None:
    limit = recorded_hot_limit(dark, PARAMS.hot_nsigma)
    assert limit is not None
    data = np.array(dark.data, copy=True)
    edge = [limit, np.nextafter(limit, np.float32(np.inf)),
            np.nextafter(limit, np.float32(-np.inf))]
    # Three hot pixels moved to the limit: still above the median and more than a
    # MAD off it, so the median and the MAD, and the limit, stay what they were.
    where = np.unravel_index(np.flatnonzero(data > limit)[:3], SHAPE)
    data[where] = edge
    found = hot_pixels_from_dark(data, nsigma=PARAMS.hot_nsigma)
    np.testing.assert_array_equal(found[where], [False, True, False])
    edged = CCDData(data, unit=dark.unit, meta=dark.header.copy())
    bits = role_bits("dark", edged, PARAMS)
    np.testing.assert_array_equal((bits[where] & MaskBit.HOT) != 0, [False, True, False])


def test_the_limit_survives_the_file(dark: CCDData, tmp_path: Path) -> None:
    path = tmp_path / "dark.fits"
    fits.PrimaryHDU(dark.data, header=dark.header).writeto(path)
    with fits.open(path) as hdul:
        read = CCDData(hdul[0].data.astype(np.float32), unit=u.adu / u.s,
                       meta=hdul[0].header, flags=dark.flags)
    assert recorded_hot_limit(read, PARAMS.hot_nsigma) == recorded_hot_limit(
        dark, PARAMS.hot_nsigma)
    np.testing.assert_array_equal(role_bits("dark", read, PARAMS), _recomputed(dark))


def test_no_limit_for_another_rule_or_changed_values(dark: CCDData) -> None:
    assert recorded_hot_limit(dark, PARAMS.hot_nsigma + 1) is None
    scaled = scale_dark_temperature(dark, factor=2.0, factor_err=0.0, from_c=-10.0,
                                    to_c=-5.0, note="test")
    assert not any(key in scaled.header for key in HOT_CARDS)
    assert recorded_hot_limit(scaled, PARAMS.hot_nsigma) is None
