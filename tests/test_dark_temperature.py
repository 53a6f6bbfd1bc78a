"""The doubling temperature of dark current, fitted robustly with its uncertainty, and a
master dark scaled across set temperature (the pure step and the profile's rules)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.nddata import CCDData, StdDevUncertainty
from hypothesis import given, settings
from hypothesis import strategies as st

from nightlog.calibration.dark_temperature import DoublingFit, FitPoint, fit_doubling
from nightlog.errors import ProfileError, ReductionError
from nightlog.header.profiles import ProfileRegistry
from nightlog.reduction.dark_temperature import scale_dark_temperature


def _points(temps: list[float], rates: list[float], errs: list[float | None]
            ) -> list[FitPoint]:
    return [FitPoint(i, t, r, e) for i, (t, r, e) in enumerate(zip(temps, rates, errs,
                                                                   strict=True))]


@settings(max_examples=60, deadline=None)
@given(doubling=st.floats(3.0, 15.0), d0=st.floats(1e-4, 10.0),
       temps=st.lists(st.integers(-40, 10), min_size=3, max_size=8, unique=True))
def test_exact_exponential_gives_its_doubling_temperature(doubling: float, d0: float,
                                                         temps: list[int]) -> None:
    rates = [d0 * 2.0 ** ((t + 20) / doubling) for t in temps]
    fit = fit_doubling(_points([float(t) for t in temps], rates, [r * 0.01 for r in rates]))
    assert isinstance(fit, DoublingFit)
    assert fit.doubling_k == pytest.approx(doubling, rel=1e-9)
    # Exact points: the uncertainty is the one the errors give (χ² < 1 never shrinks it).
    assert fit.doubling_err is not None and fit.doubling_err > 0


def test_uncertainty_matches_the_scatter_of_repeated_fits() -> None:
    """Over many noisy archives the stated σ of T_d is the spread of the fitted T_d."""
    rng = np.random.default_rng(3)
    temps = [-20.0, -15.0, -10.0, -5.0, 0.0]
    truth, fits, sigmas = 6.3, [], []
    for _ in range(400):
        rates = [0.01 * 2 ** ((t + 20) / truth) for t in temps]
        errs = [0.03 * r for r in rates]
        noisy = [r * math.exp(rng.normal(0, 0.03)) for r in rates]
        fit = fit_doubling(_points(temps, noisy, errs))
        assert isinstance(fit, DoublingFit)
        fits.append(fit.doubling_k)
        sigmas.append(fit.doubling_err)
    assert np.std(fits) == pytest.approx(np.median(sigmas), rel=0.15)
    # About 68 % of the fits lie within their σ of the truth.
    inside = np.mean(np.abs(np.array(fits) - truth) <= np.array(sigmas))
    assert 0.6 < inside < 0.76


def test_one_warm_master_does_not_pull_the_fit() -> None:
    temps = [-25.0, -20.0, -15.0, -10.0, -5.0, 0.0]
    rates = [0.01 * 2 ** ((t + 20) / 6.3) for t in temps]
    rates[2] *= 3.0  # a master of a night the cooler did not hold its set point
    errs = [0.02 * r for r in rates]
    robust = fit_doubling(_points(temps, rates, errs))
    assert isinstance(robust, DoublingFit)
    # Plain least squares on ln(rate) (numpy's polyfit, the independent reference).
    slope = np.polyfit(temps, np.log(rates), 1)[0]
    assert abs(robust.doubling_k - 6.3) < abs(math.log(2) / slope - 6.3) / 3
    weights = {p.set_temp: p.weight for p in robust.points}
    assert weights[-15.0] < 0.3 and min(w for t, w in weights.items() if t != -15.0) > 0.9


def test_without_errors_the_scatter_gives_the_uncertainty() -> None:
    temps = [-20.0, -10.0, 0.0, 10.0]
    rates = [0.01 * 2 ** ((t + 20) / 7.0) * f for t, f in zip(temps, (1.02, 0.97, 1.03, 0.99),
                                                               strict=True)]
    fit = fit_doubling(_points(temps, rates, [None] * 4))
    assert isinstance(fit, DoublingFit)
    y = np.log(rates)
    coef, cov = np.polyfit(temps, y, 1, cov=True)
    assert fit.doubling_k == pytest.approx(math.log(2) / coef[0], rel=0.02)
    assert fit.doubling_err == pytest.approx(
        math.log(2) / coef[0] * math.sqrt(cov[0, 0]) / coef[0], rel=0.3)


@pytest.mark.parametrize(("temps", "why"), [
    ([-20.0, -20.0, -10.0, -10.0], "at 2"),
    ([-20.0, -10.0], "have 2 master(s)"),
])
def test_too_few_set_temperatures_say_so(temps: list[float], why: str) -> None:
    fit = fit_doubling(_points(temps, [0.01 * 2 ** ((t + 20) / 6) for t in temps],
                               [None] * len(temps)))
    assert isinstance(fit, str) and why in fit and "3 set temperatures" in fit


def test_dark_current_falling_with_temperature_is_refused() -> None:
    temps = [-20.0, -10.0, 0.0]
    fit = fit_doubling(_points(temps, [0.03, 0.02, 0.01], [0.001] * 3))
    assert isinstance(fit, str) and "does not rise" in fit


def test_factor_and_its_uncertainty() -> None:
    fit = DoublingFit(setup="s", doubling_k=6.3, doubling_err=0.2, source="fitted")
    f = fit.factor(-20.0, -25.0)
    assert f == pytest.approx(2 ** (-5 / 6.3))
    # Numerical derivative of the factor in T_d, times σ.
    h = 1e-6
    slope = (2 ** (-5 / (6.3 + h)) - 2 ** (-5 / (6.3 - h))) / (2 * h)
    assert fit.factor_err(-20.0, -25.0) == pytest.approx(abs(slope) * 0.2, rel=1e-6)
    assert fit.describe() == "doubling 6.3 ± 0.2 K, fitted on 0 masters"


def test_scaled_dark_data_and_variance() -> None:
    rng = np.random.default_rng(1)
    data = rng.gamma(2.0, 0.05, (20, 30)).astype(np.float32)
    sigma = rng.uniform(0.01, 0.02, data.shape).astype(np.float32)
    dark = CCDData(data.copy(), unit="adu / s", uncertainty=StdDevUncertainty(sigma.copy()),
                   meta={"EXPTIME": 1.0})
    out = scale_dark_temperature(dark, factor=0.6, factor_err=0.03, from_c=-20, to_c=-25,
                                 note="master 4")
    np.testing.assert_allclose(out.data, data * 0.6, rtol=1e-6)
    expected = np.sqrt((0.6 * sigma.astype(np.float64)) ** 2 + (data * 0.03) ** 2)
    np.testing.assert_allclose(out.uncertainty.array, expected, rtol=1e-5)
    assert out.unit == dark.unit and out.header["DARKTSCL"] == pytest.approx(0.6)
    assert "from set temperature -20 C to -25 C (master 4)" in str(out.header["HISTORY"])
    # The input is untouched.
    np.testing.assert_array_equal(dark.data, data)
    np.testing.assert_array_equal(dark.uncertainty.array, sigma)
    assert "DARKTSCL" not in dark.header


@pytest.mark.parametrize("factor", [0.0, -1.0, float("nan"), float("inf")])
def test_scaled_dark_refuses_a_meaningless_factor(factor: float) -> None:
    dark = CCDData(np.ones((2, 2), np.float32), unit="adu / s")
    with pytest.raises(ReductionError):
        scale_dark_temperature(dark, factor=factor, from_c=-20, to_c=-25)


def _profile(**keys: object) -> object:
    return ProfileRegistry.from_settings({"cam": dict(keys)}).get("cam")


def test_profile_keys() -> None:
    p = _profile(dark_temperature_scaling="profile", dark_doubling_temperature=6.5,
                 dark_doubling_temperature_err=0.4)
    assert (p.dark_temperature_scaling, p.dark_doubling_temperature,  # type: ignore[attr-defined]
            p.dark_doubling_temperature_err) == ("profile", 6.5, 0.4)  # type: ignore[attr-defined]
    assert _profile().dark_temperature_scaling == "off"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("keys", "said"), [
    ({"dark_temperature_scaling": "fitted", "dark_scaling": "exact_exposure"},
     "needs dark_scaling = 'linear'"),
    ({"dark_temperature_scaling": "fitted", "dark_scaling": "interpolate"},
     "amplifier glow"),
    ({"dark_temperature_scaling": "profile"}, "needs dark_doubling_temperature"),
    ({"dark_temperature_scaling": "always"}, "dark_temperature_scaling"),
    ({"dark_doubling_temperature": -3.0}, "dark_doubling_temperature"),
])
def test_profile_refuses(keys: dict[str, object], said: str) -> None:
    with pytest.raises(ProfileError, match=said):
        _profile(**keys)


def test_reduce_science_subtracts_the_dark_scaled_to_the_frame_temperature() -> None:
    """Differential: ``raw − bias − f·t·dark`` by hand, and the variance with ``σ_f``."""
    from nightlog.reduction.cosmics import CosmicRaySettings
    from nightlog.reduction.dark_temperature import DarkTemperature
    from nightlog.reduction.science import ScienceParameters, reduce_science

    rng = np.random.default_rng(5)
    shape = (24, 32)
    raw = CCDData(rng.normal(1500.0, 10.0, shape).astype(np.float32), unit="adu",
                  meta={"EXPTIME": 90.0})
    bias = CCDData(np.full(shape, 1000.0, np.float32), unit="adu")
    rate = rng.gamma(2.0, 0.5, shape).astype(np.float32)  # ADU/s, as a 1 s master
    dark = CCDData(rate.copy(), unit="adu", meta={"EXPTIME": 1.0},
                   uncertainty=StdDevUncertainty(np.full(shape, 0.01, np.float32)))
    scaling = DarkTemperature(factor=0.6, factor_err=0.03, from_c=-20.0, to_c=-25.0,
                              note="master 4, doubling 6.8 +- 0.5 K, fitted on 5 masters")
    params = ScienceParameters(gain=2.0, read_noise=5.0, saturation=None, exptime=90.0,
                               dark_is_rate=False, dark_exposure=1.0,
                               cosmic_rays=CosmicRaySettings(enabled=False),
                               dark_temperature=scaling)
    plain = reduce_science(raw, bias=bias, dark=dark, flat=None,
                           params=ScienceParameters(**{**params.__dict__,
                                                       "dark_temperature": None}))
    out = reduce_science(raw, bias=bias, dark=dark, flat=None, params=params)
    expected = raw.data.astype(np.float64) - 1000.0 - 0.6 * 90.0 * rate
    np.testing.assert_allclose(out.ccd.data, expected, rtol=1e-5, atol=1e-3)
    # The scaled dark's variance: (t f σ_D)² + (t D σ_f)² instead of (t σ_D)².
    added = (90 * 0.6 * 0.01) ** 2 + (90.0 * rate * 0.03) ** 2 - (90 * 0.01) ** 2
    np.testing.assert_allclose(out.ccd.uncertainty.array ** 2,
                               plain.ccd.uncertainty.array.astype(np.float64) ** 2 + added,
                               rtol=1e-4)
    assert out.ccd.header["DARKTSCL"] == pytest.approx(0.6)
    assert "scaled x0.6 from -20 C to -25 C (master 4" in "".join(out.ccd.header["HISTORY"])
    step = next(s for s in out.steps if s.name == "dark")
    assert step.parameters["temperature_factor"] == 0.6
    assert "DARKTSCL" not in dark.header and np.array_equal(dark.data, rate)


def _dark_master(i: int, temp: float, rate: float, *, binning: str = "1x1",
                 quality: str = "good", superseded: int | None = None) -> object:
    from nightlog.catalogue.models import Master

    return Master(id=i, kind="dark", profile="aspen", instrument="CAM", is_rate=True,
                  group={"instrument": "CAM", "binning": binning, "set_temp": temp},
                  stats={"level": rate, "level_err": 0.02 * rate}, quality=quality,
                  superseded_by_id=superseded, exptime=None)


def test_each_set_up_has_its_own_fit_of_its_good_current_masters() -> None:
    from nightlog.calibration.dark_temperature import temperature_fits

    masters = [_dark_master(i, t, 0.01 * 2 ** ((t + 20) / 6.0))
               for i, t in enumerate((-20.0, -10.0, 0.0))]
    masters += [_dark_master(10 + i, t, 0.04 * 2 ** ((t + 20) / 8.0), binning="2x2")
                for i, t in enumerate((-20.0, -15.0, -10.0, -5.0))]
    # Neither a bad master nor a superseded version counts.
    masters += [_dark_master(20, -5.0, 1.0, quality="bad"),
                _dark_master(21, -15.0, 1.0, superseded=1)]
    fits = temperature_fits(masters)  # type: ignore[arg-type]
    assert len(fits) == 2
    by_binning = {("2x2" if "binning=2x2" in k else "1x1"): f for k, f in fits.items()}
    one, two = by_binning["1x1"], by_binning["2x2"]
    assert isinstance(one, DoublingFit) and isinstance(two, DoublingFit)
    assert one.doubling_k == pytest.approx(6.0) and two.doubling_k == pytest.approx(8.0)
    assert sorted(p.master_id for p in one.points) == [0, 1, 2]
