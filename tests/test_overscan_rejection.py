"""Rejection of outlying rows from the overscan fit (IRAF ``ccdproc``'s ``niterate``,
``low_reject``, ``high_reject``), against a reference written here from the ``icfit``
help: the residual sigma of the points still in the fit, points beyond
``low_reject``/``high_reject`` sigma below/above it rejected (a zero limit: none on
that side), the fit repeated at most ``niterate`` times, rejected points staying out,
no growing."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from hypothesis import given, settings
from hypothesis import strategies as st

from nightlog.errors import ReductionError
from nightlog.reduction.overscan import overscan_levels, subtract_overscan

NY, NX, NDATA = 200, 48, 32
BIASSEC = f"[{NDATA + 1}:{NX},1:{NY}]"
DATASEC = f"[1:{NDATA},1:{NY}]"


def _truth(rows: np.ndarray) -> np.ndarray:
    return 1140.0 + 0.04 * rows - 2e-4 * (rows - 100.0) ** 2


def raw_frame(seed: int, bad_rows: tuple[int, ...] = (), jump: float = 40.0) -> CCDData:
    """A row-dependent bias, read noise, and a few rows whose whole overscan is high
    (a bright star's trail read out through it)."""
    rng = np.random.default_rng(seed)
    rows = np.arange(NY, dtype=np.float64)[:, None]
    data = _truth(rows) + rng.normal(0.0, 4.0, (NY, NX))
    data[:, :NDATA] += 1500.0
    for row in bad_rows:
        data[row, NDATA:] += jump
    header = fits.Header({"BIASSEC": BIASSEC, "DATASEC": DATASEC})
    return CCDData(np.round(data).astype(np.float32), unit="adu", meta=header)


def reference_levels(ccd: CCDData, degree: int, niterate: int, low: float, high: float
                     ) -> np.ndarray:
    """Median of each row's overscan, then an iterated least-squares polynomial."""
    strip = np.asarray(ccd.data, dtype=np.float64)[:, NDATA:]
    levels = np.median(strip, axis=1)
    rows = np.arange(NY, dtype=np.float64)
    use = np.ones(NY, dtype=bool)
    coef = np.polyfit(rows, levels, degree)
    for _ in range(niterate):
        resid = levels - np.polyval(coef, rows)
        sigma = np.sqrt(np.sum(resid[use] ** 2) / (use.sum() - 1))
        new = np.zeros(NY, dtype=bool)
        if low > 0:
            new |= resid < -low * sigma
        if high > 0:
            new |= resid > high * sigma
        new &= use
        if not new.any():
            break
        use &= ~new
        coef = np.polyfit(rows[use], levels[use], degree)
    return np.polyval(coef, rows)


BAD = (20, 21, 22, 90, 150, 151)


@pytest.mark.parametrize(("niterate", "low", "high"), [(0, 3.0, 3.0), (1, 3.0, 3.0),
                                                       (5, 3.0, 3.0), (5, 0.0, 2.5),
                                                       (5, 2.5, 0.0)])
def test_the_fit_matches_the_icfit_reference(niterate: int, low: float, high: float) -> None:
    ccd = raw_frame(1, BAD)
    ours = overscan_levels(ccd, model_degree=2, niterate=niterate, low_reject=low,
                           high_reject=high)
    np.testing.assert_allclose(ours, reference_levels(ccd, 2, niterate, low, high),
                               rtol=0, atol=1e-7)


def test_rejection_recovers_the_bias_under_bad_rows() -> None:
    ccd = raw_frame(2, BAD)
    rows = np.arange(NY, dtype=np.float64)
    plain = overscan_levels(ccd, model_degree=2)
    clean = overscan_levels(ccd, model_degree=2, niterate=5)
    # The six high rows pull a plain fit up by about 6/200 of 40 ADU everywhere;
    # rejected, the fit is back within the noise of 200 row medians.
    assert np.max(np.abs(plain - _truth(rows))) > 1.0
    assert np.max(np.abs(clean - _truth(rows))) < 0.6
    out = subtract_overscan(ccd, model_degree=2, niterate=5)
    assert out.header["OVERSCAN"].endswith("median/row poly2 rej3/3x5")
    assert any("6 rows rejected from the fit" in str(h) for h in out.header["HISTORY"])


def test_without_niterate_nothing_changes() -> None:
    ccd = raw_frame(3, BAD)
    before = subtract_overscan(ccd, model_degree=2)
    after = subtract_overscan(ccd, model_degree=2, niterate=0, low_reject=1.0,
                              high_reject=1.0)
    np.testing.assert_array_equal(before.data, after.data)
    assert before.header["OVERSCAN"] == after.header["OVERSCAN"]
    assert "rej" not in before.header["OVERSCAN"]


def test_bad_rejection_options_are_refused() -> None:
    ccd = raw_frame(4)
    with pytest.raises(ReductionError, match="model_degree"):
        overscan_levels(ccd, niterate=3)
    with pytest.raises(ReductionError, match=">= 0"):
        overscan_levels(ccd, model_degree=1, niterate=-1)
    with pytest.raises(ReductionError, match=">= 0"):
        overscan_levels(ccd, model_degree=1, niterate=1, low_reject=-2.0)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), niterate=st.integers(0, 6),
       bad=st.lists(st.integers(0, NY - 1), max_size=8, unique=True))
def test_any_bad_rows_give_the_reference_fit(seed: int, niterate: int,
                                                       bad: list[int]) -> None:
    ccd = raw_frame(seed, tuple(bad))
    ours = overscan_levels(ccd, model_degree=2, niterate=niterate)
    np.testing.assert_allclose(ours, reference_levels(ccd, 2, niterate, 3.0, 3.0),
                               rtol=0, atol=1e-7)


def test_profile_keys_reach_the_preparation() -> None:
    from nightlog.errors import ProfileError
    from nightlog.header.profiles import ProfileRegistry
    from nightlog.reduction.preparation import Preparation

    text = ('[instruments.fitted]\nextends = "lfc"\noverscan_fit_degree = 2\n'
            'overscan_niterate = 5\noverscan_low_reject = 2.5\n')
    profile = ProfileRegistry.from_settings(tomllib.loads(text)["instruments"]).get("fitted")
    assert (profile.overscan_fit_degree, profile.overscan_niterate,
            profile.overscan_low_reject, profile.overscan_high_reject) == (2, 5, 2.5, 3.0)
    with pytest.raises(ProfileError, match="overscan_fit_degree"):
        ProfileRegistry.from_settings(tomllib.loads(
            '[instruments.bad]\nextends = "lfc"\noverscan_niterate = 5\n')["instruments"])
    ccd = raw_frame(5, BAD)
    prep = Preparation(overscan=BIASSEC, skip_columns=0, trim=DATASEC, model_degree=2,
                       niterate=5, low_reject=2.5)
    expected = subtract_overscan(ccd, region=BIASSEC, model_degree=2, niterate=5,
                                 low_reject=2.5).data[:, :NDATA]
    np.testing.assert_array_equal(prep(ccd).data, expected)
    assert prep.describe()["overscan"]["rejection"] == {
        "niterate": 5, "low_reject": 2.5, "high_reject": 3.0}
    # The characterisation's one level per frame has no fit to reject from.
    assert prep.one_level().niterate == 0 and prep.one_level().model_degree is None
    plain = Preparation(overscan=BIASSEC, skip_columns=0, trim=DATASEC)
    assert set(plain.describe()["overscan"]) == {"region", "skip_columns", "statistic"}
