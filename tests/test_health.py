"""Detector health: the normal band against hand-written numpy, the window, fences
restarting it, alarms per amplifier, the [health] settings, and the uncertainty of a
master's level."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nightlog.calibration.health import (
    HealthSettings,
    health_figures,
    health_from,
    health_points,
    normal_band,
)
from nightlog.catalogue.models import Fence, Master
from nightlog.coordinator.master_measurements import level_uncertainty
from nightlog.errors import ConfigurationError

T0 = dt.datetime(2025, 5, 1, 6, 0, tzinfo=dt.UTC)
GROUP = "flat|generic|instrument=CAM|binning=1x1|filter=B"


def reference_band(values: list[float], errors: list[float], own: float, k: float
                   ) -> tuple[float, float, float]:
    """The band as docs/report.md states it, written out in numpy."""
    x = np.asarray(values, dtype=float)
    med = np.median(x)
    s = 1.482602218505602 * np.median(np.abs(x - med))
    if errors:
        s = max(s, float(np.median(errors)))
    half = k * np.sqrt(s**2 + own**2)
    return float(med), float(med - half), float(med + half)


@given(values=st.lists(st.floats(-1e4, 1e4), min_size=5, max_size=40),
       errors=st.lists(st.floats(0, 100), max_size=40), own=st.floats(0, 100),
       k=st.floats(0.5, 10))
def test_band_equals_the_hand_written_rule(values: list[float], errors: list[float],
                                           own: float, k: float) -> None:
    errs = errors[: len(values)]
    band = normal_band(values, sigma=k, min_points=5, errors=errs, own_error=own)
    assert band is not None and band.n_points == len(values)
    med, lo, hi = reference_band(values, errs, own, k)
    assert band.median == pytest.approx(med)
    assert band.low == pytest.approx(lo, abs=1e-9 * max(1.0, abs(lo)))
    assert band.high == pytest.approx(hi, abs=1e-9 * max(1.0, abs(hi)))


def test_worked_band() -> None:
    # 10 11 9 10 12: median 10, |deviations| 0 1 1 0 2, MAD 1, spread 1.4826.
    band = normal_band([10.0, 11.0, 9.0, 10.0, 12.0], sigma=3.0, min_points=5)
    assert band is not None
    assert (band.median, band.spread) == (10.0, pytest.approx(1.4826, abs=1e-4))
    assert (band.low, band.high) == (pytest.approx(10 - 3 * 1.482602),
                                     pytest.approx(10 + 3 * 1.482602))
    # Equal values: the spread is floored by the measurement error, not zero.
    flat = normal_band([3.0] * 6, sigma=5.0, min_points=5, errors=[0.2] * 6, own_error=0.2)
    assert flat is not None and flat.contains(2.8) and not flat.contains(1.0)
    assert normal_band([1.0] * 4, sigma=5.0, min_points=5) is None  # too short


def _flat(i: int, gain: float, *, err: float | None = 0.01, amps: dict[str, Any] | None = None,
          quality: str = "good", hours: float = 0.0) -> Master:
    mid = T0 + dt.timedelta(days=i, hours=hours)
    stats: dict[str, Any] = {"level": 20000.0, "gain_from_flats": gain}
    if err is not None:
        stats["gain_err"] = err
    if amps is not None:
        stats["amplifiers"] = amps
    return Master(id=i + 1, kind="flat", profile="generic", instrument="CAM", setup_key="CAM|1x1",
                  group_key=GROUP, group={}, filter="B", is_rate=False,
                  night=mid.date(), version=1, path="", sha256="", size=0,
                  first_obs=mid, last_obs=mid, mid_time=mid, n_frames=5, stats=stats,
                  parameters={}, quality=quality, superseded_by_id=None, created_at=mid,
                  software_version="t")


def _fence(at: dt.datetime, instrument: str | None = "CAM") -> Fence:
    return Fence(id=1, at=at, reason="controller replaced", instrument=instrument,
                 setup_key=None, created_at=at)


def _gain(figures: dict[int, list[Any]], master_id: int, amp: str = "") -> Any:
    return next(f for f in figures[master_id] if f.metric == "gain" and f.amplifier == amp)


def test_band_is_made_of_the_last_window_masters_before() -> None:
    rng = np.random.default_rng(4)
    gains = list(rng.normal(2.0, 0.02, 12))
    masters = [_flat(i, g) for i, g in enumerate(gains)] + [_flat(12, 2.6)]
    settings = HealthSettings(window=8, sigma=5.0, min_points=5)
    figures = health_figures(masters, [], settings)
    window = gains[-8:]
    med, lo, hi = reference_band(window, [0.01] * 8, 0.01, 5.0)
    last = _gain(figures, 13)
    assert last.band.n_points == 8
    assert (last.band.median, last.band.low, last.band.high) == pytest.approx((med, lo, hi))
    assert last.alarm
    assert not any(_gain(figures, m.id).alarm for m in masters[:-1])
    # The first five have no band (fewer than min_points before them): never an alarm.
    assert [_gain(figures, i + 1).band is None for i in range(6)] == [True] * 5 + [False]


def test_a_master_marked_bad_counts_in_no_band() -> None:
    masters = [_flat(i, 2.0 + 0.001 * i) for i in range(6)]
    masters.insert(3, _flat(3, 9.0, quality="bad", hours=1))
    figures = health_figures(masters, [], HealthSettings(min_points=5))
    last = _gain(figures, 6)
    assert last.band.n_points == 5 and last.band.high < 3.0


def test_a_fence_restarts_the_band() -> None:
    masters = [_flat(i, 2.0 + 0.001 * (i % 3)) for i in range(10)]
    masters += [_flat(i, 3.0 + 0.001 * (i % 3)) for i in range(10, 17)]
    settings = HealthSettings(window=20, sigma=5.0, min_points=3)
    unfenced = health_figures(masters, [], settings)
    assert _gain(unfenced, 11).alarm  # the change itself, without a fence
    fence = _fence(T0 + dt.timedelta(days=9, hours=12))
    fenced = health_figures(masters, [fence], settings)
    # After the fence: no band until three masters are seen, then a band of the new gain.
    assert [_gain(fenced, i + 1).band is None for i in range(10, 14)] == [True] * 3 + [False]
    assert _gain(fenced, 14).band.median == pytest.approx(3.0, abs=0.01)
    assert not any(f.alarm for m in masters for f in fenced[m.id])
    # A fence of another instrument changes nothing.
    other = health_figures(masters, [_fence(fence.at, "OTHER")], settings)
    assert _gain(other, 11).alarm


def test_a_master_made_elsewhere_is_neither_judged_nor_counted() -> None:
    masters = [_flat(i, 2.0 + 0.001 * i) for i in range(6)]
    external = _flat(4, 1.0, hours=1)  # between the fifth and the sixth
    external.id = 99
    external.stats = {"external": True, "level": 1.0, "noise": 0.01}
    masters.append(external)
    figures = health_figures(masters, [], HealthSettings(min_points=5))
    assert figures[external.id] == []
    level = next(f for f in figures[6] if f.metric == "flat_level")
    assert level.band.n_points == 5 and level.band.median == 20000.0


def test_each_amplifier_is_judged_on_its_own() -> None:
    def amps(a: float, b: float) -> dict[str, Any]:
        return {"A": {"gain_from_flats": a, "gain_err": 0.01},
                "B": {"gain_from_flats": b, "gain_err": 0.01}}

    masters = [_flat(i, 2.0, amps=amps(1.9 + 0.001 * i, 2.1 - 0.001 * i)) for i in range(6)]
    masters.append(_flat(6, 2.0, amps=amps(1.9, 2.9)))  # amplifier B's gain jumped
    figures = health_figures(masters, [], HealthSettings(min_points=5))
    assert not _gain(figures, 7).alarm
    assert not _gain(figures, 7, "A").alarm
    assert _gain(figures, 7, "B").alarm
    points = health_points(masters, [], HealthSettings(min_points=5))
    assert points[-1].alarms == ("gain@B",)


def test_amplifiers_as_a_multi_amplifier_build_records_them_are_judged_too() -> None:
    """A MEF master flat records its amplifiers as a list of named records whose
    ``gain`` is the amplifier's gain from the flats."""
    def amps(a: float, b: float) -> list[dict[str, Any]]:
        return [{"name": "AMP1", "read_noise_adu": None, "read_noise_e": None, "gain": a,
                 "source": "measured"},
                {"name": "AMP2", "read_noise_adu": None, "read_noise_e": None, "gain": b,
                 "source": "measured"}]

    masters = [_flat(i, 2.0, amps=amps(1.9 + 0.002 * i, 2.1 - 0.002 * i)) for i in range(6)]
    masters.append(_flat(6, 2.0, amps=amps(2.6, 2.1)))  # amplifier 1's gain jumped
    figures = health_figures(masters, [], HealthSettings(min_points=5))
    assert _gain(figures, 7, "AMP1").alarm
    assert not _gain(figures, 7, "AMP2").alarm and not _gain(figures, 7).alarm


def test_no_uncertainty_recorded_means_the_mad_alone() -> None:
    masters = [_flat(i, g, err=None) for i, g in enumerate([2.0, 2.01, 1.99, 2.0, 2.02])]
    masters.append(_flat(5, 2.05, err=None))
    band = _gain(health_figures(masters, [], HealthSettings()), 6).band
    assert band.spread == pytest.approx(1.482602218505602 * 0.01)
    assert _gain(health_figures(masters, [], HealthSettings()), 6).uncertainty is None


@pytest.mark.parametrize(("table", "message"), [
    ({"window": 0}, "window"), ({"sigma": -1}, "sigma"), ({"min_points": 1.5}, "min_points"),
    ({"window": 3, "min_points": 4}, "exceeds"), ({"windo": 3}, "did you mean 'window'"),
])
def test_health_settings_refuse_bad_values(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        health_from(table)
    assert health_from({}) == HealthSettings(window=20, sigma=5.0, min_points=5)


@given(st.lists(st.floats(1.0, 1e5), min_size=2, max_size=30))
def test_level_uncertainty_is_the_standard_error(levels: list[float]) -> None:
    # A bias's frames at scale 1; a flat's levels are the inverses of its scales.
    expected = np.std(levels, ddof=1) / math.sqrt(len(levels))
    assert level_uncertainty("bias", levels, [1.0] * len(levels)) == pytest.approx(expected)
    assert level_uncertainty("flat", [0.0] * len(levels), [1.0 / v for v in levels]) == \
        pytest.approx(expected, rel=1e-9, abs=1e-12 * max(levels))  # 1/(1/v) rounds
    times = [2.0] * len(levels)
    assert level_uncertainty("dark", levels, [1.0 / t for t in times]) == \
        pytest.approx(expected / 2.0)
    assert level_uncertainty("bias", levels[:1], [1.0]) is None
