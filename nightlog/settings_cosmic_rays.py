"""The ``[cosmic_rays]`` section of ``nightlog.toml``: L.A.Cosmic's settings, for every
camera and per instrument profile.

::

    [cosmic_rays]                 # every profile
    sigclip = 4.5
    niter = 2

    [cosmic_rays.profiles.lfc]    # frames normalised with the profile "lfc"
    objlim = 8.0                  # the rest as in [cosmic_rays]

A profile's table holds the same keys as the section and overrides only those it
names; everything else comes from the section, then from
:class:`~nightlog.reduction.cosmics_settings.CosmicRaySettings`' defaults. Every
value is checked by the rules the reduction applies
(:func:`~nightlog.reduction.cosmics_settings.field_problem`), and a bad one is a
:class:`~nightlog.errors.ConfigurationError` naming its key. ``threads`` is not a
key: nightlog sets it from the workers and the cores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nightlog.errors import ConfigurationError
from nightlog.reduction.cosmics_settings import CosmicRaySettings, field_problem
from nightlog.settings_keys import COSMIC_RAY_KEYS, SECTION_KEYS, refuse_unknown

__all__ = ["CosmicRayConfig", "cosmic_rays_from"]

_FLOATS = ("sigclip", "sigfrac", "objlim", "psffwhm", "seed_sigma", "grow_sigma",
           "psf_contrast")


@dataclass(frozen=True, slots=True)
class CosmicRayConfig:
    """The cosmic-ray settings of every profile.

    Attributes
    ----------
    default : CosmicRaySettings
        ``[cosmic_rays]`` over the built-in defaults (``threads`` unset).
    profiles : dict
        ``[cosmic_rays.profiles.<name>]`` over ``default``, by profile name.
    """

    default: CosmicRaySettings = field(default_factory=CosmicRaySettings)
    profiles: dict[str, CosmicRaySettings] = field(default_factory=dict)

    def for_profile(self, name: str, *, threads: int | None = None) -> CosmicRaySettings:
        """The settings of frames normalised with the profile ``name``, with
        ``threads`` OpenMP threads (``None``: the runtime's)."""
        chosen = self.profiles.get(name, self.default)
        return dataclasses.replace(chosen, threads=threads)

    def check_profiles(self, known: Iterable[str]) -> None:
        """Refuse a ``[cosmic_rays.profiles.<name>]`` that names no profile in
        ``known`` (its settings would silently never apply).

        Raises
        ------
        ConfigurationError
            The first such table, with the known profile names.
        """
        names = sorted(known)
        for name in self.profiles:
            if name not in names:
                raise ConfigurationError(
                    f"[cosmic_rays.profiles.{name}]: no instrument profile {name!r}; "
                    f"known: {', '.join(names)}")


def _values(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    if "threads" in table:
        raise ConfigurationError(f"{where}.threads is not a setting: nightlog gives each "
                                 "worker its share of the cores")
    values: dict[str, Any] = {}
    for key in COSMIC_RAY_KEYS:
        if key in table:
            problem = field_problem(key, table[key])
            if problem is not None:
                raise ConfigurationError(f"{where}.{key} {problem}")
            # TOML ``sigclip = 5`` is an integer; the reduction records a float.
            values[key] = float(table[key]) if key in _FLOATS else table[key]
    return values


def cosmic_rays_from(table: Mapping[str, Any]) -> CosmicRayConfig:
    """Parse ``[cosmic_rays]``.

    Parameters
    ----------
    table : mapping
        The section as read from the file (empty: every default).

    Returns
    -------
    CosmicRayConfig
        The section's settings and each profile's.

    Raises
    ------
    ConfigurationError
        An unknown key (``threads`` included), a value of the wrong type or out of
        its range, or ``profiles`` that is not a table of tables; the message names
        the key (``cosmic_rays.profiles.lfc.sigclip``).
    """
    refuse_unknown({k: v for k, v in table.items() if k != "threads"},
                   SECTION_KEYS["cosmic_rays"], "[cosmic_rays]")
    base = _values(table, "cosmic_rays")
    default = CosmicRaySettings(**base)
    profiles_table = table.get("profiles", {})
    if not isinstance(profiles_table, dict):
        raise ConfigurationError("cosmic_rays.profiles must be a table of profile tables "
                                 "([cosmic_rays.profiles.<name>])")
    profiles: dict[str, CosmicRaySettings] = {}
    for name, overrides in profiles_table.items():
        where = f"cosmic_rays.profiles.{name}"
        if not isinstance(overrides, dict):
            raise ConfigurationError(f"[{where}] must be a table, not "
                                     f"{type(overrides).__name__}")
        refuse_unknown({k: v for k, v in overrides.items() if k != "threads"},
                       COSMIC_RAY_KEYS, f"[{where}]")
        profiles[str(name)] = dataclasses.replace(default, **_values(overrides, where))
    return CosmicRayConfig(default=default, profiles=profiles)
