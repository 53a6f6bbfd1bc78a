"""Master bias, dark and flat builders, region scaling and the illumination model."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData

from nightlog.errors import CombineError, ReductionError
from nightlog.reduction.combine import ClipSpec
from nightlog.reduction.illumination import fit_illumination
from nightlog.reduction.mask import MaskBit
from nightlog.reduction.master_options import CombineOptions
from nightlog.reduction.masters import make_master_bias, make_master_dark, make_master_flat
from nightlog.reduction.scaling import mode, region_level

SHAPE = (80, 60)
BIAS_LEVEL = 1100.0
READ_NOISE_ADU = 5.0


def biases(n: int = 5, seed: int = 0) -> list[CCDData]:
    rng = np.random.default_rng(seed)
    pattern = np.linspace(0.0, 20.0, SHAPE[1])[None, :] * np.ones((SHAPE[0], 1))
    return [CCDData((BIAS_LEVEL + pattern + rng.normal(0, READ_NOISE_ADU, SHAPE))
                    .astype(np.float32), unit="adu") for _ in range(n)]


def test_master_bias_statistics_and_cosmic_ray_rejected() -> None:
    frames = biases(5)
    frames[1].data[30:33, 40:43] += 4000.0
    before = [f.data.copy() for f in frames]
    result = make_master_bias(frames)
    master = result.ccd
    assert master.unit == u.adu and result.n_frames == 5
    assert master.data.dtype == np.float32
    assert master.flags.dtype == np.uint16 and not master.flags.any()
    assert master.mask.dtype == bool and not master.mask.any()
    # The robust one-pass MAD clip removes the hit from 1 of 5 frames.
    assert np.all(np.abs(master.data[30:33, 40:43] - BIAS_LEVEL - 13.5) < 15)
    assert result.level == pytest.approx(BIAS_LEVEL + 10.0, abs=1.0)
    # The master's pixel scatter is the read noise / sqrt(5) plus the column pattern.
    assert len(result.frame_stats) == 5
    assert result.frame_stats[0].median == pytest.approx(BIAS_LEVEL + 10.0, abs=1.0)
    assert np.nanmedian(master.uncertainty.array) == pytest.approx(
        READ_NOISE_ADU / np.sqrt(5) * np.sqrt(4 / 5), rel=0.25)
    for f, b in zip(frames, before, strict=True):
        np.testing.assert_array_equal(f.data, b)


def test_master_bias_with_noise_model_and_prepare() -> None:
    frames = biases(5, seed=1)
    frames[3].data[5, 5] += 500.0
    result = make_master_bias(
        frames, prepare=lambda c: CCDData(c.data[:, 4:], unit=c.unit, meta=c.meta),
        options=CombineOptions(clip=ClipSpec(spread="noise", read_noise=10.0, gain=2.0)))
    assert result.ccd.shape == (SHAPE[0], SHAPE[1] - 4)
    expected = np.mean([f.data[5, 5] for i, f in enumerate(frames) if i != 3])
    assert result.ccd.data[5, 1] == pytest.approx(expected, rel=1e-6)


def darks(exptimes: list[float], rate: np.ndarray, seed: int = 2) -> list[CCDData]:
    rng = np.random.default_rng(seed)
    return [CCDData((BIAS_LEVEL + rate * t + rng.normal(0, READ_NOISE_ADU, SHAPE))
                    .astype(np.float32), unit="adu") for t in exptimes]


def test_master_dark_is_a_rate_with_hot_pixels() -> None:
    rate = np.full(SHAPE, 0.05)
    rate[10, 10] = rate[50, 20] = 20.0
    times = [60.0, 120.0, 300.0, 300.0, 600.0]
    bias = CCDData(np.full(SHAPE, BIAS_LEVEL, dtype=np.float32), unit="adu")
    result = make_master_dark(darks(times, rate), times, bias=bias, hot_threshold=1.0)
    dark = result.ccd
    assert dark.unit == u.adu / u.s
    assert dark.header["EXPTIME"] == 1.0
    assert result.level == pytest.approx(0.05, abs=0.01)
    assert dark.data[10, 10] == pytest.approx(20.0, rel=0.01)
    assert result.hot_pixels == 2
    assert dark.flags[10, 10] & MaskBit.HOT and dark.flags[50, 20] & MaskBit.HOT
    assert dark.mask[10, 10] and dark.mask.sum() == 2
    np.testing.assert_allclose(result.scales, [1 / t for t in times])


def test_master_dark_fixed_exposure_and_errors() -> None:
    rate = np.full(SHAPE, 0.1)
    frames = darks([100.0] * 3, rate)
    result = make_master_dark(frames, [100.0] * 3, scale_to_rate=False)
    assert result.ccd.unit == u.adu and result.ccd.header["EXPTIME"] == 100.0
    assert result.level == pytest.approx(BIAS_LEVEL + 10.0, abs=1.0)
    with pytest.raises(CombineError):
        make_master_dark(frames, [100.0, 100.0, 50.0], scale_to_rate=False)
    with pytest.raises(CombineError):
        make_master_dark(frames, [100.0, 100.0])
    with pytest.raises(CombineError):
        make_master_dark(frames, [100.0, 0.0, 100.0])


# --- flats -------------------------------------------------------------------------------

FLAT_SHAPE = (120, 160)
REGION = "[61:100,41:80]"  # FITS: columns 61-100, rows 41-80 (the centre)


def response(seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(1.0, 0.01, FLAT_SHAPE)


def gradient_flats(levels: list[float], slopes: list[float], seed: int = 4) -> list[CCDData]:
    """Flats = level x illumination x response. The illumination is a linear
    gradient across the columns, pivoting on the centre of ``GRADIENT_REGION``
    (left of the frame's centre), steeper in some exposures than in others."""
    rng = np.random.default_rng(seed)
    columns = np.arange(FLAT_SHAPE[1])
    pixel = response()
    frames = []
    for level, slope in zip(levels, slopes, strict=True):
        illum = 1.0 + slope * (columns - 39.5) / FLAT_SHAPE[1]
        signal = level * illum[None, :] * pixel
        frames.append(CCDData((signal + rng.normal(0, np.sqrt(signal / 2))).astype(np.float32),
                              unit="adu"))
    return frames


GRADIENT_REGION = "[21:60,41:80]"  # columns 21-60, rows 41-80: centred on column 40


def test_flat_scaling_by_region_not_fooled_by_changing_gradient() -> None:
    levels = [20000.0, 30000.0, 25000.0, 15000.0]
    slopes = [0.0, 0.1, 0.3, 0.05]
    frames = gradient_flats(levels, slopes)
    pixel = response()
    region = (slice(40, 80), slice(20, 60))
    true_levels = np.array(levels) * np.median(pixel[region])

    by_region = make_master_flat(frames, scale_region=GRADIENT_REGION)
    whole = make_master_flat(frames, scale_region=f"[1:{FLAT_SHAPE[1]},1:{FLAT_SHAPE[0]}]")
    region_levels = 1 / np.array(by_region.scales)
    whole_levels = 1 / np.array(whole.scales)
    # The gradient pivots in the region: its level is that of the lamp alone.
    np.testing.assert_allclose(region_levels, true_levels, rtol=2e-3)
    # On the whole frame each gradient lifts the level differently: a percent or more.
    relative = whole_levels / whole_levels[0] / (np.array(levels) / levels[0])
    assert np.max(np.abs(relative - 1)) > 0.01
    # The region-scaled flat is 1 in the region and reproduces the response there.
    flat = by_region.ccd
    assert np.median(flat.data[region]) == pytest.approx(1.0, abs=1e-6)
    expected = pixel * (1.0 + np.mean(slopes) * (np.arange(FLAT_SHAPE[1]) - 39.5)
                        / FLAT_SHAPE[1])[None, :]
    residual = flat.data[region] - (expected / np.median(expected[region]))[region]
    # Photon noise of four ~20000 ADU flats: about 0.5% per pixel.
    assert abs(residual.mean()) < 1e-3 and residual.std() < 0.007
    assert by_region.level == pytest.approx(np.median(true_levels), rel=2e-3)


def test_flat_low_pixels_set_to_one_and_flagged_and_calibrations_applied() -> None:
    bias = CCDData(np.full(FLAT_SHAPE, 500.0, dtype=np.float32), unit="adu")
    dark = CCDData(np.full(FLAT_SHAPE, 2.0, dtype=np.float32), unit=u.adu / u.s)
    frames = gradient_flats([20000.0, 22000.0, 18000.0], [0.0, 0.0, 0.0])
    times = [5.0, 10.0, 20.0]
    raw = []
    for f, t in zip(frames, times, strict=True):
        data = f.data + 500.0 + 2.0 * t
        data[:, 7] = 500.0 + 2.0 * t  # a dead column: no signal at all
        data[3, 3] = 500.0 + 2.0 * t + 0.05 * 20000  # a low pixel (5% response)
        raw.append(CCDData(data, unit="adu"))
    result = make_master_flat(raw, bias=bias, dark=dark, exptimes=times, scale_region=REGION,
                              scale_stat="mode")
    flat = result.ccd
    assert flat.unit == u.dimensionless_unscaled
    assert np.all(flat.data[:, 7] == 1.0) and flat.data[3, 3] == 1.0
    assert np.all(flat.flags[:, 7] & MaskBit.DEAD) and flat.flags[3, 3] & MaskBit.DEAD
    assert flat.mask.sum() == result.low_pixels
    assert result.low_pixels == FLAT_SHAPE[0] + 1
    # Bias and dark removed before scaling: the levels are the illumination alone.
    np.testing.assert_allclose(1 / np.array(result.scales), [20000, 22000, 18000], rtol=5e-3)
    with pytest.raises(CombineError):
        make_master_flat(raw, dark=dark)


def test_hot_pixels_of_the_dark_keep_their_flat_value_and_are_flagged_in_the_product() -> None:
    """A hot pixel's flat value comes from the flats: the dark's HOT mask is not carried
    into the flat frames (which would leave the master flat at 1, NO_DATA, there)."""
    rng = np.random.default_rng(11)
    rate = np.full(FLAT_SHAPE, 0.02)
    hot = [(5, 9), (30, 40), (60, 100), (90, 150), (110, 12), (70, 70)]
    for y, x in hot:
        rate[y, x] = 40.0
    dark_times = [100.0, 200.0, 300.0, 300.0, 400.0]
    darks_raw = [CCDData((500.0 + rate * t + rng.normal(0, 3.0, FLAT_SHAPE))
                         .astype(np.float32), unit="adu") for t in dark_times]
    bias = CCDData(np.full(FLAT_SHAPE, 500.0, dtype=np.float32), unit="adu")
    dark = make_master_dark(darks_raw, dark_times, bias=bias, hot_threshold=1.0).ccd
    assert all(dark.flags[y, x] & MaskBit.HOT for y, x in hot)
    pixel = response()
    pixel[30, 40], pixel[60, 100] = 0.87, 1.12  # hot pixels that also respond unusually
    flat_times = [10.0, 12.0, 8.0, 10.0, 11.0]
    flats = []
    for level, t in zip([20000.0, 24000.0, 16000.0, 21000.0, 19000.0], flat_times,
                        strict=True):
        signal = level * pixel
        flats.append(CCDData((500.0 + rate * t + signal + rng.normal(0, np.sqrt(signal / 2)))
                             .astype(np.float32), unit="adu"))
    result = make_master_flat(flats, bias=bias, dark=dark, exptimes=flat_times,
                              scale_region=REGION)
    flat = result.ccd
    # The hand-written reference: bias- and dark-subtracted flats, each divided by its
    # median in the region, averaged, and normalised by the region's median.
    region = (slice(40, 80), slice(60, 100))
    normed = []
    for f, t in zip(flats, flat_times, strict=True):
        clean = f.data.astype(np.float64) - 500.0 - dark.data.astype(np.float64) * t
        normed.append(clean / np.median(clean[region]))
    reference = np.mean(normed, axis=0)
    reference /= np.median(reference[region])
    for y, x in hot:
        assert not flat.flags[y, x] & MaskBit.NO_DATA
        assert flat.data[y, x] == pytest.approx(reference[y, x], rel=2e-3)
        assert flat.data[y, x] == pytest.approx(pixel[y, x] / np.median(pixel[region]),
                                                abs=0.01)
    assert result.low_pixels == 0 and not flat.mask.any()

    from nightlog.reduction.cosmics import CosmicRaySettings
    from nightlog.reduction.science import ScienceParameters, reduce_science

    sky = 1000.0 * pixel
    science = CCDData((500.0 + rate * 60.0 + sky).astype(np.float32), unit="adu",
                      meta={"EXPTIME": 60.0})
    params = ScienceParameters(gain=2.0, read_noise=6.0, saturation=None, hot_threshold=1.0,
                               cosmic_rays=CosmicRaySettings(enabled=False))
    reduced = reduce_science(science, bias=bias, dark=dark, flat=flat, params=params)
    for y, x in hot:
        # Flagged HOT in the product, and flat-fielded like its neighbours.
        assert reduced.bits[y, x] & MaskBit.HOT
        assert not reduced.bits[y, x] & MaskBit.NO_DATA
        assert reduced.ccd.data[y, x] == pytest.approx(1000.0 * np.median(pixel[region]),
                                                       rel=0.02)


def test_mode_and_region_level() -> None:
    rng = np.random.default_rng(5)
    values = np.round(rng.normal(1000, 4, 20000))
    values[:200] = 1000.0 + 7  # a spike off the peak
    from scipy import stats

    assert mode(values) == stats.mode(values).mode
    smooth = rng.normal(3.0, 0.5, 200000)
    assert mode(smooth) == pytest.approx(3.0, abs=0.1)  # a fifth of sigma
    image = np.arange(100.0).reshape(10, 10)
    assert region_level(image, "[1:2,1:1]") == 0.5
    assert region_level(image) == np.median(image[2:8, 2:8])


# --- illumination model ------------------------------------------------------------------

def test_fit_illumination_recovers_a_smooth_surface() -> None:
    ny, nx = 200, 300
    y, x = np.mgrid[0:ny, 0:nx]
    surface = 1.0 + 0.1 * (x / nx) - 0.2 * ((y - ny / 2) / ny) ** 2 + 0.05 * (x / nx) * (y / ny)
    rng = np.random.default_rng(6)
    data = (surface * rng.normal(1.0, 0.01, (ny, nx))).astype(np.float32)
    mask = np.zeros((ny, nx), bool)
    mask[50:60, 50:60] = True
    data[50:60, 50:60] = 0.0  # masked garbage must not matter
    flat = CCDData(data, unit="", mask=mask)
    before = data.copy()
    model = fit_illumination(flat, degree=2, block=10)
    assert model.data.dtype == np.float32 and model.shape == (ny, nx)
    np.testing.assert_allclose(model.data, surface, atol=2e-3)
    assert model.header["ILLUMDEG"] == 2 and "ILLUMC0" in model.header
    np.testing.assert_array_equal(flat.data, before)
    with pytest.raises(ReductionError):
        fit_illumination(flat, degree=-1)


def test_masters_prepared_on_several_threads_equal_those_prepared_in_turn() -> None:
    # Each flat's dark is scaled to its own exposure: frames prepared in parallel
    # must each get theirs, and every master must be the one-thread master's bits.
    rng = np.random.default_rng(5)
    bias = CCDData(np.full(FLAT_SHAPE, 500.0, dtype=np.float32), unit="adu")
    dark = CCDData(rng.uniform(20.0, 40.0, FLAT_SHAPE).astype(np.float32), unit=u.adu / u.s)
    times = [3.0, 30.0, 7.0, 60.0, 12.0]
    raw = [CCDData((f.data + 510.0 + dark.data * t).astype(np.float32), unit="adu")
           for f, t in zip(gradient_flats([20000.0, 22000.0, 18000.0, 21000.0, 19000.0],
                                          [0.0] * 5), times, strict=True)]

    def prepare(ccd: CCDData) -> CCDData:  # a pedestal, as an overscan would take away
        return CCDData(ccd.data - np.float32(10.0), unit=ccd.unit)

    built = {}
    for threads in (1, 3):
        options = CombineOptions(threads=threads)
        built[threads] = (
            make_master_bias([CCDData(bias.data + 10.0, unit="adu")] * 3, prepare=prepare,
                             options=options).ccd,
            make_master_dark(raw[:3], times[:3], bias=bias, prepare=prepare,
                             options=options).ccd,
            make_master_flat(raw, bias=bias, dark=dark, exptimes=times, prepare=prepare,
                             scale_region=REGION, options=options).ccd)
    for one, three in zip(built[1], built[3], strict=True):
        np.testing.assert_array_equal(one.data, three.data)
        np.testing.assert_array_equal(one.uncertainty.array, three.uncertainty.array)
    # The flat's frames lost their own dark: the levels are the illumination alone.
    flat = make_master_flat(raw, bias=bias, dark=dark, exptimes=times, prepare=prepare,
                            scale_region=REGION, options=CombineOptions(threads=3))
    np.testing.assert_allclose(1 / np.array(flat.scales),
                               [20000, 22000, 18000, 21000, 19000], rtol=5e-3)
