"""Dark current across set temperatures: the doubling temperature, and a master dark
of another temperature scaled to a frame's.

Silicon's dark current roughly doubles every few kelvin:

    D(T) = D(T₀) · 2^((T − T₀) / T_d)

so ``ln D`` is a straight line in the set temperature ``T`` (°C or K alike: only
differences count) of slope ``ln 2 / T_d``. :func:`fit_doubling` fits that line to
the master darks of one set-up at several set temperatures (:func:`temperature_fits`
reads them from the catalogue), robustly (Huber-weighted least squares, so one
master of a warm night does not pull the line) and with its uncertainty: the
covariance of the weighted fit, widened by the reduced χ² when the masters scatter
more than their own errors say. A profile may give ``T_d`` instead
(``dark_temperature_scaling = "profile"``).

When the profile allows it (``dark_temperature_scaling`` ``fitted`` or ``profile``)
a frame with no master dark within ``dark_temp_tolerance`` gets the usable master
nearest in set temperature (:func:`scale_across_temperature`), scaled by the
factor ``2^((T_frame − T_dark) / T_d)``. Only the dark current scales: the profile
must have ``dark_scaling = "linear"`` (a bias-subtracted master dark is all dark
current); a CMOS camera's darks hold amplifier glow and offsets that follow no
such law, and profiles refuse the combination. A fitted scaling is not
extrapolated beyond the fitted set temperatures (by more than the tolerance).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.catalogue.history import TrendMaster
from nightlog.catalogue.models import Frame, Master
from nightlog.header.profiles import InstrumentProfile
from nightlog.states import MasterQuality

__all__ = ["DoublingFit", "FitPoint", "TemperatureScaling", "fit_doubling",
           "scale_across_temperature", "setup_of", "temperature_fits"]

#: Fewest distinct set temperatures (and masters) a doubling temperature is fitted on.
MIN_TEMPERATURES = 3
#: Huber's tuning constant (95 % efficiency for normal errors).
_HUBER = 1.345
_LN2 = math.log(2.0)
#: 1 / Φ⁻¹(3/4), as in :mod:`nightlog.calibration.trends`.
MAD_SCALE = 1.482602218505602


@dataclass(frozen=True, slots=True)
class FitPoint:
    """One master dark in a fit: its set temperature (°C), dark rate and error (any
    unit per second, one per set-up) and its Huber weight in the final fit."""

    master_id: int
    set_temp: float
    rate: float
    rate_err: float | None
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class DoublingFit:
    """The doubling temperature of one set-up's dark current.

    Attributes
    ----------
    setup : str
        The set-up's key (the darks' grouping fields but set temperature).
    doubling_k, doubling_err : float
        ``T_d`` and its one-sigma uncertainty, K.
    source : {'fitted', 'profile'}
    points : tuple of FitPoint
        The masters fitted on (empty for a profile's figure).
    """

    setup: str
    doubling_k: float
    doubling_err: float | None
    source: str
    points: tuple[FitPoint, ...] = ()

    @property
    def temperature_range(self) -> tuple[float, float] | None:
        """Lowest and highest set temperature fitted on (°C)."""
        if not self.points:
            return None
        temps = [p.set_temp for p in self.points]
        return min(temps), max(temps)

    def factor(self, from_c: float, to_c: float) -> float:
        """Dark current at ``to_c`` over that at ``from_c``."""
        return float(2.0 ** ((to_c - from_c) / self.doubling_k))

    def factor_err(self, from_c: float, to_c: float) -> float | None:
        """One-sigma uncertainty of :meth:`factor` from that of the doubling temperature."""
        if self.doubling_err is None:
            return None
        return abs(self.factor(from_c, to_c) * _LN2 * (to_c - from_c)
                   / self.doubling_k ** 2) * self.doubling_err

    def describe(self) -> str:
        """``doubling 6.3 ± 0.2 K, fitted on 5 masters`` (or ``given by the profile``)."""
        err = (" (uncertainty not given)" if self.doubling_err is None
               else f" ± {self.doubling_err:.2g}")
        where = (f"fitted on {len(self.points)} masters" if self.source == "fitted"
                 else "given by the profile")
        return f"doubling {self.doubling_k:.3g}{err} K, {where}"

    def as_dict(self) -> dict[str, Any]:
        """Plain values (``calib history --format json``, ``match``)."""
        span = self.temperature_range
        return {"setup": self.setup, "doubling_k": self.doubling_k,
                "doubling_k_err": self.doubling_err, "source": self.source,
                "n_masters": len(self.points),
                "set_temp_range": None if span is None else list(span),
                "masters": [p.master_id for p in self.points],
                "weights": [round(p.weight, 4) for p in self.points]}


def fit_doubling(points: Sequence[FitPoint], *, setup: str = "",
                 iterations: int = 20) -> DoublingFit | str:
    """Fit ``ln(rate) = a + b·T``; the doubling temperature is ``ln 2 / b``.

    Parameters
    ----------
    points : sequence of FitPoint
        Master darks of one set-up: set temperature (°C), rate (> 0, per second)
        and its one-sigma error (``None``: the points are weighted equally and the
        uncertainty comes from their scatter alone).
    setup : str
        Key of the set-up, carried into the result.
    iterations : int
        Most passes of the Huber reweighting.

    Returns
    -------
    DoublingFit or str
        The fit, or why there is none (fewer than three masters or distinct set
        temperatures, or a dark current that does not rise with temperature).
    """
    pts = [p for p in points if p.rate > 0 and math.isfinite(p.rate)]
    temps = np.array([p.set_temp for p in pts], dtype=float)
    distinct = len({round(t, 3) for t in temps})
    if len(pts) < MIN_TEMPERATURES or distinct < MIN_TEMPERATURES:
        return (f"a doubling temperature needs master darks at {MIN_TEMPERATURES} set "
                f"temperatures at least; have {len(pts)} master(s) at {distinct}")
    y = np.log([p.rate for p in pts])
    errs = [p.rate_err for p in pts]
    known = all(e is not None and e > 0 for e in errs)
    # σ of ln(rate) is σ_rate / rate; without errors, one common unknown σ.
    sigma = (np.array([e / p.rate for e, p in zip(errs, pts, strict=True)])  # type: ignore[operator]
             if known else np.ones(len(pts)))
    design = np.column_stack([np.ones_like(temps), temps])
    huber = np.ones(len(pts))
    for _ in range(iterations):
        w = huber / sigma**2
        cov = np.linalg.inv(design.T @ (design * w[:, None]))
        coef = cov @ (design.T @ (w * y))
        z = (y - design @ coef) / sigma
        scale = MAD_SCALE * float(np.median(np.abs(z)))
        scale = max(scale, 1.0) if known else max(scale, 1e-12)
        new = np.minimum(1.0, _HUBER / np.maximum(np.abs(z) / scale, 1e-12))
        if np.allclose(new, huber, atol=1e-6):
            break
        huber = new
    w = huber / sigma**2
    cov = np.linalg.inv(design.T @ (design * w[:, None]))
    coef = cov @ (design.T @ (w * y))
    resid = y - design @ coef
    dof = len(pts) - 2
    chi2 = float(np.sum(w * resid**2)) / dof
    cov = cov * (max(chi2, 1.0) if known else chi2)
    slope, slope_err = float(coef[1]), math.sqrt(float(cov[1, 1]))
    if not slope > 0:
        return (f"the dark current does not rise with set temperature on these "
                f"{len(pts)} masters (slope {slope:.3g} per K of ln rate)")
    doubling = _LN2 / slope
    out = tuple(FitPoint(p.master_id, p.set_temp, p.rate, p.rate_err, float(h))
                for p, h in zip(pts, huber, strict=True))
    return DoublingFit(setup=setup, doubling_k=doubling,
                       doubling_err=doubling * slope_err / slope, source="fitted",
                       points=out)


def setup_of(master: TrendMaster) -> str:
    """The key of a master dark's set-up: profile, instrument and its grouping fields
    but set temperature and exposure, the series a doubling temperature is fitted on."""
    group = master.group or {}
    fields = [f"{k}={group[k]}" for k in sorted(group) if k not in ("set_temp", "exptime")]
    return "|".join([master.profile, master.instrument or "-", *fields])


def _rate(master: TrendMaster) -> tuple[float, float | None] | None:
    """The master's dark rate (ADU/s or e⁻/s, one unit per set-up) and its error."""
    stats = master.stats or {}
    level, err = stats.get("level"), stats.get("level_err")
    if not isinstance(level, int | float) or isinstance(level, bool):
        return None
    per = 1.0
    if not master.is_rate:
        if not master.exptime:
            return None
        per = float(master.exptime)
    e = float(err) / per if isinstance(err, int | float) and not isinstance(err, bool) else None
    return float(level) / per, e


def fit_points(masters: Sequence[Master]) -> dict[str, list[FitPoint]]:
    """The good, current master darks with a set temperature and a rate, by set-up."""
    out: dict[str, list[FitPoint]] = {}
    for m in masters:
        if (m.kind != "dark" or m.quality != MasterQuality.GOOD
                or m.superseded_by_id is not None):
            continue
        temp = (m.group or {}).get("set_temp")
        rate = _rate(m)
        if temp is None or rate is None:
            continue
        out.setdefault(setup_of(m), []).append(FitPoint(m.id, float(temp), *rate))
    return out


def temperature_fits(masters: Sequence[Master]) -> dict[str, DoublingFit | str]:
    """The doubling temperature of each set-up among ``masters`` (or why none)."""
    return {setup: fit_doubling(points, setup=setup)
            for setup, points in sorted(fit_points(masters).items())}


@dataclass(frozen=True, slots=True)
class TemperatureScaling:
    """A master dark of set temperature ``from_c`` scaled to a frame at ``to_c``."""

    master_id: int
    from_c: float
    to_c: float
    factor: float
    factor_err: float | None
    fit: DoublingFit

    def describe(self) -> str:
        """``dark from master 12 at -20 °C scaled ×0.57 to -25 °C (doubling …)``."""
        err = "" if self.factor_err is None else f" ± {self.factor_err:.2g}"
        return (f"dark from master {self.master_id} at {self.from_c:g} °C scaled "
                f"×{self.factor:.3g}{err} to {self.to_c:g} °C ({self.fit.describe()})")

    def as_dict(self) -> dict[str, Any]:
        return {"master": self.master_id, "from_set_temp": self.from_c,
                "to_set_temp": self.to_c, "factor": self.factor,
                "factor_err": self.factor_err, "fit": self.fit.as_dict()}


def _fit_for(session: Session, master: Master, profile: InstrumentProfile
             ) -> DoublingFit | str:
    if profile.dark_temperature_scaling == "profile":
        assert profile.dark_doubling_temperature is not None  # the profile checks it
        return DoublingFit(setup=setup_of(master), doubling_k=profile.dark_doubling_temperature,
                           doubling_err=profile.dark_doubling_temperature_err,
                           source="profile")
    stmt = select(Master).where(Master.kind == "dark", Master.profile == master.profile,
                                Master.quality == MasterQuality.GOOD,
                                Master.superseded_by_id.is_(None))
    if master.instrument is not None:
        stmt = stmt.where(Master.instrument == master.instrument)
    setup = setup_of(master)
    points = fit_points(list(session.scalars(stmt))).get(setup, [])
    return fit_doubling(points, setup=setup)


def scale_across_temperature(session: Session, frame: Frame, profile: InstrumentProfile,
                             candidates: Sequence[Any], order: Callable[[Any], Any]
                             ) -> tuple[Master | None, TemperatureScaling | None, str]:
    """The master dark of another set temperature for ``frame``, and its scaling.

    Parameters
    ----------
    session : Session
        The caller's session (only read).
    frame : Frame
        A frame with no master dark within the temperature tolerance.
    profile : InstrumentProfile
        Its profile (``dark_temperature_scaling`` not ``off``).
    candidates : sequence of Candidate
        Every candidate master dark with its rules' verdicts.
    order : callable
        Sort key of candidates (best first) among those as near in temperature.

    Returns
    -------
    (Master or None, TemperatureScaling or None, str)
        The master and its scaling, or ``None`` and why not (empty when no
        candidate fails the set temperature alone).
    """
    only_temp = [c for c in candidates if not c.usable
                 and all(r.passed or r.rule == "group.set_temp" for r in c.rules)]
    temp = frame.set_temp
    if not only_temp:
        return None, None, ""
    if temp is None:
        return None, None, "the frame has no set temperature to scale a dark to"
    only_temp = [c for c in only_temp if (c.master.group or {}).get("set_temp") is not None]
    if not only_temp:
        return None, None, "no master dark records its set temperature"
    ranked = sorted(only_temp, key=lambda c: (abs(float(c.master.group["set_temp"])
                                                  - float(temp)), order(c)))
    master = ranked[0].master
    from_c = float(master.group["set_temp"])
    fit = _fit_for(session, master, profile)
    if isinstance(fit, str):
        return None, None, f"no dark within the set-temperature tolerance, and {fit}"
    span = fit.temperature_range
    tol = profile.dark_temp_tolerance
    if span is not None and not span[0] - tol <= float(temp) <= span[1] + tol:
        return None, None, (f"no dark within the set-temperature tolerance, and {temp:g} °C "
                            f"lies outside the {span[0]:g} to {span[1]:g} °C the doubling "
                            "temperature was fitted on (never extrapolated)")
    scaling = TemperatureScaling(master_id=master.id, from_c=from_c, to_c=float(temp),
                                 factor=fit.factor(from_c, float(temp)),
                                 factor_err=fit.factor_err(from_c, float(temp)), fit=fit)
    return master, scaling, ""


def fits_by_setup(fits: Mapping[str, DoublingFit | str]) -> dict[str, dict[str, Any]]:
    """Each set-up's fit as plain values (``reason`` for a set-up without one)."""
    return {k: (v.as_dict() if isinstance(v, DoublingFit) else {"setup": k, "reason": v})
            for k, v in fits.items()}
