"""``[health]``: the settings of the normal bands, apart from the bands themselves.

Kept apart so that every command reading the settings (``match``, ``status``...)
can hold them without importing the numerical code of the bands.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nightlog.errors import ConfigurationError
from nightlog.settings_keys import SECTION_KEYS, refuse_unknown

__all__ = ["HealthSettings", "health_from"]


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """``[health]``: how many masters make the normal band, and how wide it is.

    Attributes
    ----------
    window : int
        The band is made of at most this many masters before the one judged.
    sigma : float
        Half-width of the band in robust standard deviations (``1.4826 × MAD``).
    min_points : int
        Fewer masters than this in the window: no band, no alarm.
    """

    window: int = 20
    sigma: float = 5.0
    min_points: int = 5


def health_from(table: Mapping[str, Any]) -> HealthSettings:
    """Parse ``[health]`` (unknown keys refused)."""
    refuse_unknown(table, SECTION_KEYS["health"], "[health]")
    out = HealthSettings()
    for key in ("window", "min_points"):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"health.{key} must be a whole number >= 1, "
                                         f"not {value!r}")
            out = dataclasses.replace(out, **{key: value})
    if "sigma" in table:
        value = table["sigma"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ConfigurationError(f"health.sigma must be a number > 0, not {value!r}")
        out = dataclasses.replace(out, sigma=float(value))
    if out.min_points > out.window:
        raise ConfigurationError(f"health.min_points ({out.min_points}) exceeds health.window "
                                 f"({out.window}): no band could ever be made")
    return out
