"""Mask bits that mean one thing: vignetting apart from dead pixels, thresholds from
the profile, each bit documented in the docs and in cards a product can carry."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData

from nightlog.catalogue.models import Frame
from nightlog.coordinator.reduce_plan import science_parameters
from nightlog.header.profiles import InstrumentProfile
from nightlog.reduction.cosmics import CosmicRaySettings
from nightlog.reduction.mask import UNUSABLE, MaskBit, bit_cards, pixels_with
from nightlog.reduction.masters import make_master_flat
from nightlog.reduction.science import ScienceParameters, reduce_science

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (160, 240)


def _vignetting() -> np.ndarray:
    """A field whose illumination falls to 15 % in the corners (radial, r**4)."""
    yy, xx = np.mgrid[:SHAPE[0], :SHAPE[1]]
    r = np.hypot((xx - SHAPE[1] / 2) / (SHAPE[1] / 2),
                 (yy - SHAPE[0] / 2) / (SHAPE[0] / 2)) / np.sqrt(2)
    return 1.0 - 0.85 * r**4


def _flat(seed: int = 21) -> tuple[CCDData, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    light = _vignetting()
    response = rng.normal(1.0, 0.01, SHAPE)
    dead = np.zeros(SHAPE, dtype=bool)
    dead.flat[rng.choice(dead.size, 40, replace=False)] = True
    dead[:, 37] = True  # a dead column, through the vignetted edge too
    response[dead] *= 0.2
    flat = light * response
    return (CCDData((flat / np.median(flat)).astype(np.float32), unit=""), dead, light)


def _reduce(flat: CCDData, params: ScienceParameters) -> np.ndarray:
    sky = 2000.0 * np.asarray(flat.data)
    raw = CCDData(sky.astype(np.float32), unit="adu", meta={"EXPTIME": 30.0})
    return reduce_science(raw, bias=None, dark=None, flat=flat, params=params).bits


PARAMS = ScienceParameters(gain=2.0, read_noise=5.0, saturation=None,
                           cosmic_rays=CosmicRaySettings(enabled=False))


def test_a_vignetted_field_is_unilluminated_and_only_its_dead_pixels_are_dead() -> None:
    flat, dead, light = _flat()
    bits = _reduce(flat, PARAMS)
    # DEAD is the pixels' defects, and nothing of the vignetted edge.
    np.testing.assert_array_equal(pixels_with(bits, MaskBit.DEAD), dead)
    # UNILLUMINATED is the edge where the large-scale response is below half the median.
    truth = light < 0.5 * np.median(light)
    assert truth.mean() > 0.02  # a real vignetted edge
    vignetted = pixels_with(bits, MaskBit.UNILLUMINATED)
    assert np.mean(vignetted == truth) > 0.99
    assert not vignetted[light > 0.6 * np.median(light)].any()
    # A reader of the unusable bits keeps the vignetted pixels and drops the dead ones.
    usable = ~pixels_with(bits, UNUSABLE)
    assert usable[truth & ~dead].all() and not usable[dead].any()
    # No other reason is claimed anywhere.
    assert not (bits & ~np.uint16(MaskBit.DEAD | MaskBit.UNILLUMINATED)).any()


def test_thresholds_move_the_flags() -> None:
    flat, dead, light = _flat()
    strict = _reduce(flat, ScienceParameters(gain=2.0, read_noise=5.0, saturation=None,
                                             dead_low=0.1, low_response=0.4,
                                             cosmic_rays=CosmicRaySettings(enabled=False)))
    assert not pixels_with(strict, MaskBit.DEAD).any()  # 0.2 of the neighbours' is above 0.1
    assert 0 < pixels_with(strict, MaskBit.UNILLUMINATED).sum() < (
        (light < 0.5 * np.median(light)).sum())
    off = _reduce(flat, ScienceParameters(gain=2.0, read_noise=5.0, saturation=None,
                                          low_response=None,
                                          cosmic_rays=CosmicRaySettings(enabled=False)))
    assert not pixels_with(off, MaskBit.UNILLUMINATED).any()
    np.testing.assert_array_equal(pixels_with(off, MaskBit.DEAD), dead)


def test_the_profile_thresholds_reach_the_reduction() -> None:
    profile = InstrumentProfile(name="vignetted", dead_low=0.3, dead_high=1.7,
                                low_response=0.2, hot_nsigma=8.0)
    frame = Frame(gain=2.0, read_noise=5.0, saturation=60000.0, exptime=30.0, biassec=None,
                  trimsec=None, datasec=None, naxis1=SHAPE[1], naxis2=SHAPE[0])
    params = science_parameters(frame, profile, skip_columns=0)
    assert (params.dead_low, params.dead_high, params.low_response, params.hot_nsigma) == (
        0.3, 1.7, 0.2, 8.0)


def test_the_master_flat_tells_the_dark_edge_from_a_dead_pixel() -> None:
    rng = np.random.default_rng(4)
    light = np.ones(SHAPE)
    light[:40, :48] = 0.03  # a corner no light reaches
    frames = []
    for level in (20000.0, 22000.0, 18000.0):
        signal = level * light * rng.normal(1.0, 0.005, SHAPE)
        signal[100, 150] = 0.02 * level  # one dead pixel in the lit field
        frames.append(CCDData(signal.astype(np.float32), unit="adu"))
    result = make_master_flat(frames, scale_region="[100:140,60:100]")
    flags = result.ccd.flags
    assert flags[100, 150] == MaskBit.DEAD
    corner = flags[:40, :48]
    assert np.all(corner == MaskBit.UNILLUMINATED)
    assert result.low_pixels == 40 * 48 + 1
    assert np.all(result.ccd.data[:40, :48] == 1.0)


def test_every_bit_has_a_header_card_and_a_row_in_the_docs() -> None:
    cards = bit_cards()
    assert [value for _, value, _ in cards] == [bit.name for bit in MaskBit]
    header = fits.Header()
    for keyword, value, comment in cards:
        card = fits.Card(keyword, value, comment)
        assert len(str(card)) == 80 and comment in str(card)  # nothing cut off
        header.append(card)
    assert header["MASKB2"] == "DEAD" and header["MASKB5"] == "UNILLUMINATED"
    doc = (ROOT / "docs" / "reduction.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| \d+ \| (\d+) \| `(\w+)` \|", doc, flags=re.MULTILINE))
    assert {int(v): name for v, name in table.items()} == {int(b): b.name for b in MaskBit}


def test_unusable_leaves_out_only_the_vignetted_bit() -> None:
    assert not UNUSABLE & MaskBit.UNILLUMINATED
    assert all(UNUSABLE & bit for bit in MaskBit if bit is not MaskBit.UNILLUMINATED)
    with pytest.raises(AttributeError):
        MaskBit.VIGNETTED  # noqa: B018 - one name per reason, the stored values unchanged


def test_the_block_means_given_once_flag_what_each_test_would_alone() -> None:
    from nightlog.reduction.flat_response import large_scale_response, vignetted_from_flat
    from nightlog.reduction.mask import dead_pixels_from_flat

    flat, _, _ = _flat()
    response = large_scale_response(flat, box=16)
    assert np.array_equal(dead_pixels_from_flat(flat, low=0.5, box=16, response=response),
                          dead_pixels_from_flat(flat, low=0.5, box=16))
    assert np.array_equal(vignetted_from_flat(flat, low=0.5, response=response),
                          vignetted_from_flat(flat, low=0.5))
