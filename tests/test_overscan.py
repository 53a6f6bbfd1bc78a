"""Overscan subtraction and trimming: against ccdproc, by hand, and by property."""

from __future__ import annotations

import ccdproc
import numpy as np
import pytest
from astropy.io import fits
from astropy.modeling import models
from astropy.nddata import CCDData
from hypothesis import given, settings
from hypothesis import strategies as st

from nightlog.errors import ReductionError, SectionError
from nightlog.reduction.overscan import overscan_levels, subtract_overscan
from nightlog.reduction.trim import trim_image

# A scaled-down LFC-like layout: 64 data columns, 16 overscan columns, 120 rows.
NY, NX, NDATA = 120, 80, 64
BIASSEC = f"[{NDATA + 1}:{NX},1:{NY}]"
DATASEC = f"[1:{NDATA},1:{NY}]"


def raw_frame(seed: int = 0, *, level: float = 1140.0, slope: float = 0.05,
              signal: float = 2000.0, noise: float = 5.0) -> CCDData:
    """Raw uint16 frame: row-dependent bias (in data and overscan), signal in data only."""
    rng = np.random.default_rng(seed)
    rows = np.arange(NY)[:, None]
    bias = level + slope * rows + 3.0 * np.sin(rows / 17.0)
    data = bias + rng.normal(0.0, noise, (NY, NX))
    data[:, :NDATA] += signal
    header = fits.Header({"BIASSEC": BIASSEC, "DATASEC": DATASEC, "EXPTIME": 30.0})
    return CCDData(np.round(data).astype(np.uint16), unit="adu", meta=header)


def as_float(ccd: CCDData) -> CCDData:
    """The same frame with float64 data, as ccdproc computes in float64."""
    return CCDData(ccd.data.astype(np.float64), unit=ccd.unit, meta=ccd.meta.copy())


# ccdproc subtracts from float64 data and returns float64; we return float32, so the
# comparison tolerance is float32 resolution relative to the raw level (~1e-4 ADU at 2e3).
def assert_close_float32(ours: np.ndarray, reference: np.ndarray, scale: float) -> None:
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5 * scale)


@pytest.mark.parametrize(("method", "median"), [("median", True), ("mean", False)])
def test_per_row_level_matches_ccdproc(method: str, median: bool) -> None:
    raw = raw_frame(1)
    ours = subtract_overscan(raw, method=method)  # region from BIASSEC
    theirs = ccdproc.subtract_overscan(as_float(raw), fits_section=BIASSEC, median=median)
    assert_close_float32(ours.data, theirs.data, scale=float(raw.data.max()))


@pytest.mark.parametrize("degree", [1, 3])
def test_polynomial_model_matches_ccdproc(degree: int) -> None:
    raw = raw_frame(2)
    ours = subtract_overscan(raw, method="median", model_degree=degree)
    theirs = ccdproc.subtract_overscan(as_float(raw), fits_section=BIASSEC, median=True,
                                       model=models.Polynomial1D(degree))
    # Both solve the same linear least-squares problem (numpy in a scaled domain,
    # astropy's LinearLSQFitter on raw row numbers): agreement is float32-limited.
    assert_close_float32(ours.data, theirs.data, scale=float(raw.data.max()))


def test_skip_columns_by_hand_like_the_lecture() -> None:
    raw = raw_frame(3)
    # A light leak into the first three overscan columns must not reach the level.
    leaky = raw.data.astype(np.float64)
    leaky[:, NDATA:NDATA + 3] += 400.0
    frame = CCDData(leaky.astype(np.uint16), unit="adu", meta=raw.meta.copy())
    out = subtract_overscan(frame, skip_columns=3)
    expected = leaky - np.median(leaky[:, NDATA + 3:], axis=1)[:, None]
    np.testing.assert_allclose(out.data, expected, atol=1e-3)
    assert out.header["OVERSCAN"].startswith(f"[{NDATA + 4}:{NX},1:{NY}]")


def test_skip_columns_on_the_data_side_when_overscan_is_on_the_left() -> None:
    data = np.zeros((10, 20))
    data[:, :5] = 100.0  # overscan on the left, next to the data at column 6
    data[:, 4] = 900.0   # the overscan column touching the data leaks
    frame = CCDData(data, unit="adu", meta={"BIASSEC": "[1:5,1:10]", "DATASEC": "[6:20,1:10]"})
    out = subtract_overscan(frame, skip_columns=1)
    np.testing.assert_allclose(out.data[:, 10], -100.0)


def test_clipped_mean_ignores_a_hot_overscan_pixel() -> None:
    raw = raw_frame(4)
    data = raw.data.copy()
    data[50, NX - 2] = 60000
    frame = CCDData(data, unit="adu", meta=raw.meta.copy())
    clipped = overscan_levels(frame, method="clipped_mean")
    mean = overscan_levels(frame, method="mean")
    reference = overscan_levels(raw, method="clipped_mean")
    assert mean[50] - reference[50] > 1000
    assert abs(clipped[50] - reference[50]) < 5.0


def test_single_level_for_the_whole_frame() -> None:
    raw = raw_frame(5, slope=0.0)
    out = subtract_overscan(raw, per_row=False)
    level = np.median(raw.data[:, NDATA:].astype(np.float64))
    np.testing.assert_allclose(out.data, raw.data - level, atol=1e-3)
    assert "/frame" in out.header["OVERSCAN"]


def test_rows_outside_the_region_take_the_nearest_level() -> None:
    # The LFC's BIASSEC stops one row short of the image.
    raw = raw_frame(6)
    region = f"[{NDATA + 1}:{NX},1:{NY - 1}]"
    levels = overscan_levels(raw, region=region)
    assert levels[-1] == levels[-2]
    history = "".join(subtract_overscan(raw, region=region).header["HISTORY"])
    assert "1 rows outside the region" in history


def test_masked_overscan_pixels_are_ignored() -> None:
    raw = raw_frame(7)
    data = raw.data.copy()
    data[10, NDATA:] = 65000
    mask = np.zeros(raw.shape, dtype=bool)
    mask[10, NDATA:NX - 1] = True  # all but one overscan pixel of row 10 masked
    frame = CCDData(data, unit="adu", meta=raw.meta.copy(), mask=mask)
    assert overscan_levels(frame)[10] == 65000  # the one unmasked pixel
    mask[10, NX - 1] = True
    frame = CCDData(data, unit="adu", meta=raw.meta.copy(), mask=mask)
    levels = overscan_levels(frame)
    assert levels[10] == pytest.approx(0.5 * (levels[9] + levels[11]))


def test_refuses_a_second_overscan_or_one_after_a_bias() -> None:
    once = subtract_overscan(raw_frame(8))
    with pytest.raises(ReductionError, match="never both"):
        subtract_overscan(once)
    biased = raw_frame(8)
    biased.meta["ZEROCOR"] = "master bias subtracted"
    with pytest.raises(ReductionError, match="never both"):
        subtract_overscan(biased)


def test_header_records_the_step_with_legal_keywords() -> None:
    out = subtract_overscan(raw_frame(9), skip_columns=2, model_degree=2)
    assert out.header["OVERSCAN"] == f"[{NDATA + 3}:{NX},1:{NY}] median/row poly2"
    assert isinstance(out.header["OVSCLEV"], float)
    for card in out.header.cards:
        assert len(card.keyword) <= 8
    out.header.tostring()  # no HIERARCH / verification problems


def test_bad_requests_fail_clearly() -> None:
    raw = raw_frame(10)
    with pytest.raises(ReductionError):
        subtract_overscan(raw, method="mode")  # type: ignore[arg-type]
    with pytest.raises(ReductionError):
        subtract_overscan(raw, skip_columns=NX - NDATA)
    with pytest.raises(ReductionError):
        subtract_overscan(raw, model_degree=2, per_row=False)
    with pytest.raises(SectionError):
        subtract_overscan(raw, region="[1:500,1:10]")
    with pytest.raises(ReductionError, match="BIASSEC"):
        subtract_overscan(CCDData(np.zeros((4, 4)), unit="adu"))


@settings(max_examples=40, deadline=None)
@given(
    levels=st.lists(st.floats(-1e4, 1e4), min_size=3, max_size=30),
    ncols=st.integers(2, 12),
    method=st.sampled_from(["median", "mean", "clipped_mean"]),
)
def test_a_pure_per_row_level_is_removed_exactly(levels: list[float], ncols: int,
                                                 method: str) -> None:
    level = np.array(levels, dtype=np.float32)[:, None]
    frame = CCDData(np.repeat(level, ncols + 4, axis=1), unit="adu")
    out = subtract_overscan(frame, region=(slice(None), slice(4, ncols + 4)),
                            method=method)  # type: ignore[arg-type]
    np.testing.assert_allclose(out.data, 0.0, atol=1e-3 * max(1.0, float(np.abs(level).max())))


# --- trimming -------------------------------------------------------------------


def test_trim_matches_ccdproc_and_defaults_to_datasec() -> None:
    raw = subtract_overscan(raw_frame(11))
    ours = trim_image(raw)
    theirs = ccdproc.trim_image(raw, fits_section=DATASEC)
    assert ours.shape == (NY, NDATA)
    np.testing.assert_array_equal(ours.data, theirs.data)
    assert "BIASSEC" not in ours.header
    assert ours.header["DATASEC"] == f"[1:{NDATA},1:{NY}]"
    assert ours.header["TRIM"] == DATASEC


def test_trim_prefers_trimsec_and_moves_sections() -> None:
    raw = raw_frame(12)
    raw.meta["TRIMSEC"] = "[3:60,11:110]"
    raw.meta["CCDSEC"] = DATASEC
    raw.meta["LTV1"] = 0
    raw.meta["CRPIX1"] = 40.5
    out = trim_image(raw)
    assert out.shape == (100, 58)
    np.testing.assert_array_equal(out.data, raw.data[10:110, 2:60])
    assert "TRIMSEC" not in out.header
    assert out.header["DATASEC"] == "[1:58,1:100]"
    assert out.header["CCDSEC"] == "[3:60,11:110]"
    assert out.header["LTV1"] == -2
    assert out.header["CRPIX1"] == pytest.approx(38.5)


def test_trim_cuts_uncertainty_mask_and_flags_and_copies() -> None:
    raw = raw_frame(13)
    from astropy.nddata import StdDevUncertainty

    mask = np.zeros(raw.shape, dtype=bool)
    mask[5, 5] = True
    flags = np.zeros(raw.shape, dtype=np.uint16)
    flags[5, 5] = 2
    frame = CCDData(raw.data, unit="adu", meta=raw.meta.copy(), mask=mask, flags=flags,
                    uncertainty=StdDevUncertainty(np.ones(raw.shape)))
    out = trim_image(frame, (slice(5, 20), slice(5, 30)))
    assert out.mask[0, 0] and out.flags[0, 0] == 2 and out.uncertainty.array.shape == (15, 25)
    out.data[0, 0] = 0
    assert frame.data[5, 5] != 0 or raw.data[5, 5] == 0


def test_trim_refuses_reversed_or_missing_sections() -> None:
    raw = raw_frame(14)
    with pytest.raises(SectionError):
        trim_image(raw, "[10:1,1:10]")
    with pytest.raises(ReductionError):
        trim_image(CCDData(np.zeros((4, 4)), unit="adu"))


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_trim_section_roundtrip(data: st.DataObject) -> None:
    ny, nx = data.draw(st.integers(2, 30)), data.draw(st.integers(2, 30))
    y0 = data.draw(st.integers(0, ny - 1))
    y1 = data.draw(st.integers(y0 + 1, ny))
    x0 = data.draw(st.integers(0, nx - 1))
    x1 = data.draw(st.integers(x0 + 1, nx))
    array = np.arange(ny * nx, dtype=np.float32).reshape(ny, nx)
    section = f"[{x0 + 1}:{x1},{y0 + 1}:{y1}]"
    out = trim_image(CCDData(array, unit="adu"), section)
    np.testing.assert_array_equal(out.data, array[y0:y1, x0:x1])
    assert out.header["TRIM"] == section
