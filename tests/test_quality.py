"""The quality step of the reduction core, its plate scale and airmass, and the rules.

Stars are drawn by the simulator's own renderer (Moffat, β = 2.5) and by a
hand-written Gaussian, with known FWHM and sky; the measured FWHM must come back
within 5 % and the sky within its noise. Airmass is checked against the
spherical-astronomy formula written out here, and the rules against hand-made
figures.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from nightlog.errors import ConfigurationError, ReductionError
from nightlog.header.pointing import airmass_of, hardie_airmass, pixel_scale_of
from nightlog.quality_rules import QualityRule, QualitySettings, judge, quality_from, rules_for
from nightlog.reduction.mask import MaskBit
from nightlog.reduction.psf import fit_moffat, moffat_fwhm
from nightlog.reduction.quality import QualityOptions, measure_quality
from nightlog.simulate.starfield import StarField
from nightlog.states import QualityVerdict

SHAPE = (512, 512)


def _field(fwhm: float, *, n: int = 60, sky: float = 800.0, seed: int = 1,
           gaussian: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A frame in electrons with ``n`` stars of FWHM ``fwhm`` on a flat sky, and its
    noise-free stars."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(10, SHAPE[1] - 10, n)
    y = rng.uniform(10, SHAPE[0] - 10, n)
    flux = rng.uniform(2e4, 2e5, n)
    if gaussian:
        yy, xx = np.indices(SHAPE, dtype=np.float64)
        sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
        stars = np.zeros(SHAPE)
        for xi, yi, fi in zip(x, y, flux, strict=True):
            stars += fi / (2 * math.pi * sigma**2) * np.exp(
                -((xx - xi) ** 2 + (yy - yi) ** 2) / (2 * sigma**2))
    else:
        stars = StarField(x=x, y=y, flux_e=flux, fwhm_px=fwhm).render(
            SHAPE, exptime=1.0, throughput=1.0, airmass=1.0, seeing=1.0,
            shift=(0.0, 0.0)).electrons.astype(np.float64)
    mean = stars + sky
    data = mean + rng.standard_normal(SHAPE) * np.sqrt(mean + 25.0)
    return data.astype(np.float32), stars


@pytest.mark.parametrize("fwhm", [1.8, 2.6, 4.0])
@pytest.mark.parametrize("gaussian", [False, True])
def test_fwhm_and_sky_are_recovered(fwhm: float, gaussian: bool) -> None:
    data, _ = _field(fwhm, gaussian=gaussian)
    q = measure_quality(CCDData(data, unit="electron"))
    assert q.n_psf_stars >= 20
    assert q.fwhm_px == pytest.approx(fwhm, rel=0.05)
    expected_noise = math.sqrt(800.0 + 25.0)
    assert abs(q.sky - 800.0) < expected_noise
    assert q.sky_noise == pytest.approx(expected_noise, rel=0.1)
    assert q.sky_e == q.sky and q.unit == "electron"
    assert q.ellipticity is not None and q.ellipticity < 0.15  # round stars
    assert q.n_sources >= q.n_psf_stars


@settings(max_examples=12, deadline=None)
@given(fwhm=st.floats(1.8, 4.5), sky=st.floats(50.0, 5000.0), seed=st.integers(0, 10**6))
def test_fwhm_recovery_property(fwhm: float, sky: float, seed: int) -> None:
    data, _ = _field(fwhm, sky=sky, seed=seed)
    q = measure_quality(CCDData(data, unit="electron"))
    if q.n_psf_stars >= 20:
        assert q.fwhm_px == pytest.approx(fwhm, rel=0.05)
    assert abs(q.sky - sky) < math.sqrt(sky + 25.0)


def test_gain_gives_electrons_and_its_absence_is_said() -> None:
    data, _ = _field(2.5)
    adu = CCDData(data / 2.0, unit="adu")
    with_gain = measure_quality(adu, gain=2.0)
    assert with_gain.sky_e == pytest.approx(2.0 * with_gain.sky)
    assert with_gain.sky == pytest.approx(400.0, abs=math.sqrt(825.0) / 2)
    without = measure_quality(adu)
    assert without.sky_e is None and without.sky_noise_e is None
    assert any("gain is not known" in n for n in without.notes)
    assert any("no plate scale" in n for n in without.notes)
    assert any("no airmass" in n for n in without.notes)
    scaled = measure_quality(adu, pixel_scale_arcsec=0.5, pixel_scale_source="profile x",
                             airmass=1.2, airmass_source="header AIRMASS")
    assert scaled.fwhm_arcsec == pytest.approx(0.5 * scaled.fwhm_px)
    assert scaled.airmass == 1.2 and not any("airmass" in n for n in scaled.notes)


def test_saturated_and_cosmic_pixels_are_counted_and_keep_stars_out() -> None:
    data, stars = _field(2.5, n=40)
    bits = np.zeros(SHAPE, np.uint16)
    # Flag the brightest pixels (the cores of the brightest stars) as saturated, and a
    # few cosmic rays.
    peaks = np.argwhere(stars > np.quantile(stars, 0.9995))
    bits[tuple(peaks.T)] |= np.uint16(MaskBit.SATURATED)
    bits[5, 5:12] |= np.uint16(MaskBit.COSMIC_RAY)
    clean = measure_quality(CCDData(data, unit="electron"))
    flagged = measure_quality(CCDData(data, unit="electron"), bits=bits)
    assert flagged.saturated_fraction == pytest.approx(len(peaks) / data.size)
    assert flagged.cosmic_ray_pixels == 7
    assert flagged.n_psf_stars < clean.n_psf_stars
    assert flagged.fwhm_px == pytest.approx(2.5, rel=0.05)


def test_a_frame_without_stars_has_no_fwhm_and_says_why() -> None:
    rng = np.random.default_rng(3)
    q = measure_quality(CCDData(rng.normal(100.0, 10.0, SHAPE).astype(np.float32),
                                unit="adu"), gain=1.5)
    assert q.fwhm_px is None and q.ellipticity is None and q.n_psf_stars == 0
    assert any(n.startswith("no FWHM") for n in q.notes)
    assert q.sky == pytest.approx(100.0, abs=1.0)


def test_too_few_clean_stars_give_no_fwhm() -> None:
    data, _ = _field(2.5, n=3)
    q = measure_quality(CCDData(data, unit="electron"))
    assert q.n_psf_stars <= 3 and q.fwhm_px is None and q.ellipticity is None
    assert any("at least 5 are needed" in n for n in q.notes)
    some = measure_quality(CCDData(data, unit="electron"),
                           options=QualityOptions(min_psf_stars=1))
    assert some.fwhm_px == pytest.approx(2.5, rel=0.05)


def test_bad_frames_are_refused() -> None:
    with pytest.raises(ReductionError, match="no finite pixel"):
        measure_quality(CCDData(np.full(SHAPE, np.nan, np.float32), unit="adu"))
    with pytest.raises(ReductionError, match="adu or electron"):
        measure_quality(CCDData(np.ones(SHAPE, np.float32), unit="m"))
    with pytest.raises(ReductionError, match="bit plane"):
        measure_quality(CCDData(np.ones(SHAPE, np.float32), unit="adu"),
                        bits=np.zeros((3, 3), np.uint16))


@settings(max_examples=30, deadline=None)
@given(alpha=st.floats(0.8, 5.0), beta=st.floats(1.5, 8.0), dx=st.floats(-0.5, 0.5),
       dy=st.floats(-0.5, 0.5))
def test_moffat_fit_finds_the_profile(alpha: float, beta: float, dx: float, dy: float) -> None:
    assume(moffat_fwhm(alpha, beta) >= 1.0)  # a star narrower than a pixel has no profile
    half = max(6, math.ceil(3 * moffat_fwhm(alpha, beta)))
    yy, xx = np.indices((2 * half + 1, 2 * half + 1), dtype=np.float64)
    r2 = (xx - half - dx) ** 2 + (yy - half - dy) ** 2
    stamp = 1000.0 * (1 + r2 / alpha**2) ** -beta
    fit = fit_moffat(stamp, x0=half, y0=half, fwhm0=2.0)
    assert fit is not None
    assert fit.fwhm == pytest.approx(moffat_fwhm(alpha, beta), rel=3e-3)
    assert (fit.x, fit.y) == pytest.approx((half + dx, half + dy), abs=1e-3)


def test_moffat_fit_refuses_nothing() -> None:
    assert fit_moffat(np.zeros((9, 9)), x0=4, y0=4, fwhm0=2) is None
    assert fit_moffat(np.full((3, 3), np.nan), x0=1, y0=1, fwhm0=2) is None


# -- plate scale and airmass ------------------------------------------------------------

def test_plate_scale_from_profile_header_and_wcs() -> None:
    assert pixel_scale_of({"SECPIX1": 0.182, "SECPIX2": 0.184}) == (
        pytest.approx(0.183), "header SECPIX1/SECPIX2")
    assert pixel_scale_of({"SECPIX1": 0.182}, 0.3, "lfc") == (0.3, "profile lfc "
                                                                "pixel_scale_arcsec")
    assert pixel_scale_of({"PIXSCALE": "0.39"})[0] == pytest.approx(0.39)
    cd = {"CD1_1": -1e-4, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 1e-4}
    assert pixel_scale_of(cd) == (pytest.approx(0.36), "header CD matrix")
    assert pixel_scale_of({"CDELT1": -2e-4, "CDELT2": 2e-4})[0] == pytest.approx(0.72)
    value, why = pixel_scale_of({"OBJECT": "M31"})
    assert value is None and "pixel_scale_arcsec" in why


def _airmass_by_hand(lat: float, lon: float, ra: float, dec: float, when: dt.datetime
                     ) -> float:
    """sec z of the geometric altitude, from the mean sidereal time (IAU 1982 GMST)."""
    jd = when.timestamp() / 86400.0 + 2440587.5
    d = jd - 2451545.0
    gmst = (280.46061837 + 360.98564736629 * d) % 360.0
    hour_angle = math.radians((gmst + lon - ra) % 360.0)
    phi, delta = math.radians(lat), math.radians(dec)
    sin_alt = (math.sin(phi) * math.sin(delta)
               + math.cos(phi) * math.cos(delta) * math.cos(hour_angle))
    return hardie_airmass(1.0 / sin_alt)


def test_airmass_from_header_else_computed_else_none() -> None:
    assert airmass_of({"AIRMASS": 1.234}) == (1.234, "header AIRMASS")
    assert airmass_of({"SECZ": "1.5"}) == (1.5, "header SECZ")
    when = dt.datetime(2016, 1, 16, 6, 0, tzinfo=dt.UTC)
    header = {"RA": "08:30:00", "DEC": "+40:00:00"}
    lat, lon = 33.356, -116.863  # Palomar
    value, source = airmass_of(header, latitude_deg=lat, longitude_deg=lon, mid_time=when)
    assert source.startswith("computed")
    # Precession (J2000 to the date) and nutation move the pointing by ~0.2°: well under
    # 1 % of the airmass at this altitude.
    assert value == pytest.approx(_airmass_by_hand(lat, lon, 127.5, 40.0, when), rel=0.01)
    numeric = airmass_of({"OBJCTRA": 127.5, "OBJCTDEC": 40.0}, latitude_deg=lat,
                         longitude_deg=lon, mid_time=when)[0]
    assert numeric == pytest.approx(value, rel=1e-6)
    assert airmass_of(header)[0] is None
    assert "no site" in airmass_of(header)[1]
    assert "no RA/DEC" in airmass_of({}, latitude_deg=lat, longitude_deg=lon,
                                      mid_time=when)[1]
    below = airmass_of({"RA": "20:30:00", "DEC": "-60:00:00"}, latitude_deg=lat,
                       longitude_deg=lon, mid_time=when)
    assert below[0] is None and "horizon" in below[1]


def test_hardie_is_sec_z_at_the_zenith_and_below_it_lower() -> None:
    assert hardie_airmass(1.0) == 1.0
    assert hardie_airmass(2.0) < 2.0


def test_pointing_reads_a_fits_header() -> None:
    header = fits.Header({"AIRMASS": 1.1, "SECPIX1": 0.182, "SECPIX2": 0.182})
    assert airmass_of(header)[0] == 1.1
    assert pixel_scale_of(header)[0] == pytest.approx(0.182)


# -- rules ------------------------------------------------------------------------------

FIGURES = {"fwhm_arcsec": 1.9, "fwhm_px": 10.4, "sky_e": 3000.0, "sky": 1266.0,
           "n_sources": 40, "ellipticity": 0.08, "saturated_fraction": 1e-4,
           "cosmic_ray_pixels": 60, "airmass": 1.3}


def test_rules_parse_and_refuse_unknown_keys() -> None:
    settings_ = quality_from({"program_keyword": "progid", "rules": {
        "seeing": {"fwhm_arcsec_max": 2.5, "sources_min": 20},
        "lfc-dark": {"profiles": ["lfc"], "programs": "2016A-042", "sky_e_max": 4000}}})
    assert settings_.program_keyword == "PROGID"
    assert [r.name for r in settings_.rules] == ["seeing", "lfc-dark"]
    assert settings_.rule("lfc-dark").programs == ("2016A-042",)
    assert settings_.rule("seeing").thresholds == (("fwhm_arcsec_max", 2.5),
                                                   ("sources_min", 20.0))
    with pytest.raises(ConfigurationError, match="did you mean 'fwhm_arcsec_max'"):
        quality_from({"rules": {"x": {"fwhm_arcsec_mx": 2}}})
    with pytest.raises(ConfigurationError, match="no threshold"):
        quality_from({"rules": {"x": {"profiles": ["lfc"]}}})
    with pytest.raises(ConfigurationError, match="must be a number"):
        quality_from({"rules": {"x": {"sky_max": "high"}}})
    with pytest.raises(ConfigurationError, match="unknown key 'rule'"):
        quality_from({"rule": {}})
    with pytest.raises(ConfigurationError, match="no quality rule 'nope'"):
        settings_.rule("nope")


def test_scope_by_profile_and_program() -> None:
    s = QualitySettings(rules=(QualityRule("all", thresholds=(("airmass_max", 2.0),)),
                               QualityRule("lfc", profiles=("lfc",),
                                           thresholds=(("airmass_max", 2.0),)),
                               QualityRule("p", programs=("A",),
                                           thresholds=(("airmass_max", 2.0),))))
    assert [r.name for r in rules_for(s, "lfc", "A")] == ["all", "lfc", "p"]
    assert [r.name for r in rules_for(s, "aspen", None)] == ["all"]


def test_judge_gives_poor_with_reasons_good_or_unjudged() -> None:
    seeing = QualityRule("seeing", thresholds=(("fwhm_arcsec_max", 1.5), ("sources_min", 50)))
    verdict, reasons = judge(FIGURES, [seeing])
    assert verdict == QualityVerdict.POOR
    assert reasons == ["seeing: FWHM 1.9″ > 1.5″", "seeing: sources 40 < 50"]
    assert judge(FIGURES, [QualityRule("ok", thresholds=(("airmass_max", 2.0),))]) == (
        QualityVerdict.GOOD, [])
    assert judge(FIGURES, []) == (QualityVerdict.UNJUDGED, [])
    # A figure that is missing never passes silently.
    missing = dict(FIGURES, fwhm_arcsec=None)
    verdict, reasons = judge(missing, [QualityRule("s", thresholds=(("fwhm_arcsec_max", 3),))])
    assert verdict == QualityVerdict.UNJUDGED and reasons == ["s: FWHM not checked: not measured"]
    assert judge({"error": "no finite pixel"}, [seeing]) == (
        QualityVerdict.UNJUDGED, ["quality not measured: no finite pixel"])


@settings(max_examples=60, deadline=None)
@given(value=st.floats(0.0, 10.0), limit=st.floats(0.0, 10.0))
def test_a_maximum_marks_poor_exactly_above_it(value: float, limit: float) -> None:
    rule = QualityRule("r", thresholds=(("fwhm_arcsec_max", limit),))
    verdict, _ = judge(dict(FIGURES, fwhm_arcsec=value), [rule])
    assert (verdict == QualityVerdict.POOR) == (value > limit)
