"""The masters' bits found once for a batch, and the reduction's arithmetic done in
place on its own arrays only."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from astropy.nddata import CCDData, VarianceUncertainty

from nightlog.errors import ReductionError
from nightlog.reduction.bad_pixels import master_plane
from nightlog.reduction.mask import MaskBit
from nightlog.reduction.science import reduce_science
from tests.test_science import PARAMS, expose, make_night, masters


@pytest.fixture(scope="module")
def frames() -> tuple[CCDData, CCDData, CCDData, CCDData]:
    night = make_night(seed=3)
    rng = np.random.default_rng(5)
    return (expose(night, rng), *masters(night, rng))


def _same(a: CCDData, b: CCDData) -> None:
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.uncertainty.array, b.uncertainty.array)
    np.testing.assert_array_equal(a.flags, b.flags)
    assert dict(a.meta) == dict(b.meta)


def test_a_plane_found_once_gives_every_frame_what_it_would_find_alone(
        frames: tuple[CCDData, ...]) -> None:
    raw, bias, dark, flat = frames
    plane = master_plane(bias=bias, dark=dark, flat=flat, params=PARAMS)
    assert plane.plane[np.unravel_index(np.argmax(dark.data), dark.shape)] & MaskBit.HOT
    for shift in (0, 7):
        frame = CCDData(raw.data + np.uint16(shift), unit="adu", meta=raw.meta)
        alone = reduce_science(frame, bias=bias, dark=dark, flat=flat, params=PARAMS)
        batch = reduce_science(frame, bias=bias, dark=dark, flat=flat, params=PARAMS,
                               masters=plane)
        _same(alone.ccd, batch.ccd)
        np.testing.assert_array_equal(alone.bits, batch.bits)
        assert not np.shares_memory(batch.bits, plane.plane)
    assert not plane.plane.flags.writeable


def test_a_window_uses_the_plane_cut_for_it(frames: tuple[CCDData, ...]) -> None:
    raw, bias, dark, flat = frames
    crop = (10, 60, 5, 45)
    crops = {"bias": crop, "dark": crop, "flat": crop}
    y0, y1, x0, x1 = crop
    nover = raw.shape[1] - flat.shape[1]
    window = CCDData(np.hstack([raw.data[y0:y1, x0:x1], raw.data[y0:y1, -nover:]]),
                     unit="adu", meta=raw.meta.copy())
    window.meta["BIASSEC"] = f"[{x1 - x0 + 1}:{x1 - x0 + nover},1:{y1 - y0}]"
    window.meta["DATASEC"] = f"[1:{x1 - x0},1:{y1 - y0}]"
    plane = master_plane(bias=bias, dark=dark, flat=flat, params=PARAMS, crops=crops)
    alone = reduce_science(window, bias=bias, dark=dark, flat=flat, params=PARAMS, crops=crops)
    batch = reduce_science(window, bias=bias, dark=dark, flat=flat, params=PARAMS,
                           crops=crops, masters=plane)
    np.testing.assert_array_equal(alone.bits, batch.bits)
    full = master_plane(bias=bias, dark=dark, flat=flat, params=PARAMS)
    with pytest.raises(ReductionError, match="window"):
        reduce_science(window, bias=bias, dark=dark, flat=flat, params=PARAMS,
                       crops=crops, masters=full)


def test_a_plane_found_with_other_thresholds_is_refused(frames: tuple[CCDData, ...]) -> None:
    raw, bias, dark, flat = frames
    plane = master_plane(bias=bias, dark=dark, flat=flat, params=PARAMS)
    with pytest.raises(ReductionError, match="thresholds"):
        reduce_science(raw, bias=bias, dark=dark, flat=flat,
                       params=replace(PARAMS, hot_nsigma=8.0), masters=plane)


def test_float32_inputs_and_variance_masters_are_not_written_to(
        frames: tuple[CCDData, ...]) -> None:
    """The in-place arithmetic touches only arrays the reduction allocated: a float32
    raw frame (which the first step could take without a copy) and masters carrying
    a variance (which the steps could use without a copy) come back as they went in."""
    raw, bias, dark, flat = frames
    raw32 = CCDData(raw.data.astype(np.float32), unit="adu", meta=raw.meta.copy())
    as_variance = [CCDData(m.data.copy(), unit=m.unit, meta=m.meta.copy(),
                           uncertainty=VarianceUncertainty(m.uncertainty.array ** 2))
                   for m in (bias, dark, flat)]
    inputs = [raw32, *as_variance]
    before = [(f.data.copy(), None if f.uncertainty is None else f.uncertainty.array.copy())
              for f in inputs]
    reduced = reduce_science(raw32, bias=as_variance[0], dark=as_variance[1],
                             flat=as_variance[2], params=PARAMS)
    for frame, (data, unc) in zip(inputs, before, strict=True):
        np.testing.assert_array_equal(frame.data, data)
        if unc is not None:
            np.testing.assert_array_equal(frame.uncertainty.array, unc)
            assert not np.shares_memory(reduced.ccd.uncertainty.array, frame.uncertainty.array)
        assert not np.shares_memory(reduced.ccd.data, frame.data)
    # The same numbers as with standard-deviation masters.
    plain = reduce_science(raw, bias=bias, dark=dark, flat=flat, params=PARAMS)
    np.testing.assert_allclose(reduced.ccd.data, plain.ccd.data, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(reduced.ccd.uncertainty.array, plain.ccd.uncertainty.array,
                               rtol=1e-5)
