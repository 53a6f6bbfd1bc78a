"""The site's calibration policy: validity windows, what to do when nothing matches,
and the checks a frame must pass to enter a master.

Grouping keys and minimum frame counts are per camera and live in the instrument
profile; everything here is per installation (``[calibration]`` in nightlog.toml).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal

from nightlog.errors import ConfigurationError
from nightlog.settings_keys import SECTION_KEYS, refuse_unknown

__all__ = ["CALIBRATION_KINDS", "CHECK_NAMES", "CalibrationPolicy", "InputChecks",
           "policy_from_table"]

CALIBRATION_KINDS = ("bias", "dark", "flat")
OnMissing = Literal["stop", "skip", "reduce-without", "hold", "fail"]

_DEFAULT_WINDOWS: Mapping[str, float] = MappingProxyType({"bias": 30.0, "dark": 90.0,
                                                          "flat": 7.0})
_DEFAULT_MISSING: Mapping[str, OnMissing] = MappingProxyType({"bias": "stop", "dark": "skip",
                                                              "flat": "skip"})


@dataclass(frozen=True, slots=True)
class InputChecks:
    """Limits a raw calibration frame must meet to enter a master.

    Attributes
    ----------
    flat_min_level : float
        Lowest acceptable median of a bias-subtracted flat, ADU (under-exposed below).
    flat_max_fraction : float
        Highest acceptable median as a fraction of the saturation level (the
        detector is no longer linear above).
    bias_level_sigma : float
        A bias whose level departs from its group's median level by more than this
        many robust standard deviations of the group's levels (and by more than
        ``bias_level_floor`` ADU) is rejected.
    bias_level_floor : float
        ADU; departures smaller than this are always accepted.
    bias_noise_factor : float
        A bias whose noise exceeds the group's median noise by this factor is rejected.
    """

    flat_min_level: float = 1000.0
    flat_max_fraction: float = 0.8
    bias_level_sigma: float = 5.0
    bias_level_floor: float = 5.0
    bias_noise_factor: float = 1.5


#: The keys of ``[calibration.checks]``.
CHECK_NAMES: tuple[str, ...] = tuple(f.name for f in fields(InputChecks))


@dataclass(frozen=True, slots=True)
class CalibrationPolicy:
    """How masters are chosen and trusted.

    Attributes
    ----------
    validity_days : mapping
        Per kind, a master is valid this many days either side of the middle of its
        inputs, unless a user certified an explicit range.
    on_missing : mapping
        Per kind, the installation's default of the profiles' ``missing``
        (:func:`~nightlog.calibration.missing.missing_policy`): ``'fail'`` (or its
        old name ``'stop'``: the frame is not reduced, it is recorded stopped with the
        reason), ``'reduce-without'`` (or ``'skip'``: reduced without that step,
        flagged in the product) or ``'hold'`` (the frame waits for a master).
    dark_exptime_tolerance : float
        For cameras whose darks do not scale: largest relative difference between
        a dark's and a frame's exposure time.
    checks : InputChecks
        Limits for frames entering a master.
    """

    validity_days: Mapping[str, float] = field(default_factory=lambda: _DEFAULT_WINDOWS)
    on_missing: Mapping[str, OnMissing] = field(default_factory=lambda: _DEFAULT_MISSING)
    dark_exptime_tolerance: float = 0.05
    checks: InputChecks = field(default_factory=InputChecks)


def _per_kind(table: Any, key: str, cast: Any, default: Mapping[str, Any]) -> dict[str, Any]:
    if table is None:
        return dict(default)
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"calibration.{key} must be a table like "
                                 "{ bias = ..., dark = ..., flat = ... }")
    refuse_unknown(table, CALIBRATION_KINDS, f"calibration.{key}", noun="kind")
    out = dict(default)
    for kind, value in table.items():
        out[kind] = cast(kind, value)
    return out


def _window(kind: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigurationError(f"calibration.validity_days.{kind} must be a positive "
                                 f"number of days, not {value!r}")
    return float(value)


def _missing(kind: str, value: Any) -> OnMissing:
    if value not in ("stop", "skip", "reduce-without", "hold", "fail"):
        raise ConfigurationError(f"calibration.on_missing.{kind} must be 'reduce-without', "
                                 f"'hold' or 'fail' (or the older 'skip', 'stop'), "
                                 f"not {value!r}")
    return value  # type: ignore[no-any-return]


def policy_from_table(table: Mapping[str, Any]) -> CalibrationPolicy:
    """Build the policy from the ``[calibration]`` table (unknown keys refused)."""
    refuse_unknown(table, SECTION_KEYS["calibration"], "[calibration]")
    tol = table.get("dark_exptime_tolerance", 0.05)
    if not isinstance(tol, int | float) or isinstance(tol, bool) or not 0 <= tol < 1:
        raise ConfigurationError("calibration.dark_exptime_tolerance must be a fraction in "
                                 f"[0, 1), not {tol!r}")
    checks_table = table.get("checks", {})
    if not isinstance(checks_table, Mapping):
        raise ConfigurationError("[calibration.checks] must be a table")
    refuse_unknown(checks_table, CHECK_NAMES, "[calibration.checks]")
    values: dict[str, float] = {}
    for key, value in checks_table.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise ConfigurationError(f"calibration.checks.{key} must be a non-negative number")
        values[key] = float(value)
    return CalibrationPolicy(
        validity_days=MappingProxyType(_per_kind(table.get("validity_days"), "validity_days",
                                                 _window, _DEFAULT_WINDOWS)),
        on_missing=MappingProxyType(_per_kind(table.get("on_missing"), "on_missing", _missing,
                                              _DEFAULT_MISSING)),
        dark_exptime_tolerance=float(tol),
        checks=InputChecks(**values),
    )
