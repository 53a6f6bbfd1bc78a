"""Quality rules as data: thresholds that mark a science frame ``poor``, with the reasons.

A rule is a table of ``nightlog.toml``::

    [quality]
    program_keyword = "PROPID"        # the header keyword naming the observing program

    [quality.rules.seeing]            # applies to every profile and program
    fwhm_arcsec_max = 2.5
    sources_min = 20

    [quality.rules.lfc-dark-time]
    profiles = ["lfc"]                # only frames of these instrument profiles
    programs = ["2016A-042"]          # only frames whose PROPID is one of these
    sky_e_max = 4000.0
    ellipticity_max = 0.25

Thresholds (each optional; a rule holds at least one): ``fwhm_arcsec_max``,
``fwhm_px_max``, ``sky_e_max`` (sky level in e⁻), ``sky_max`` (in the product's
unit), ``sources_min``, ``ellipticity_max``, ``saturated_fraction_max``,
``cosmic_rays_max`` (pixels) and ``airmass_max``. :func:`judge` applies every rule
whose scope covers the frame: a frame failing any threshold is ``poor`` and each
failure is a reason; a frame whose figures passed every threshold checked is
``good``; a frame no rule covers, or whose figures are missing for every threshold,
is ``unjudged``. A threshold whose figure is missing (no plate scale, no airmass,
no star to fit) never passes silently: it is listed among the reasons as not
checked. Pure: no catalogue, no files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nightlog.errors import ConfigurationError
from nightlog.settings_keys import refuse_unknown
from nightlog.states import QualityVerdict

__all__ = ["THRESHOLDS", "QualityRule", "QualitySettings", "judge", "quality_from",
           "rules_for"]

#: Threshold key → (figure of the quality record, ``max`` or ``min``, label, unit).
THRESHOLDS: dict[str, tuple[str, str, str, str]] = {
    "fwhm_arcsec_max": ("fwhm_arcsec", "max", "FWHM", "″"),
    "fwhm_px_max": ("fwhm_px", "max", "FWHM", " px"),
    "sky_e_max": ("sky_e", "max", "sky", " e⁻"),
    "sky_max": ("sky", "max", "sky", ""),
    "sources_min": ("n_sources", "min", "sources", ""),
    "ellipticity_max": ("ellipticity", "max", "ellipticity", ""),
    "saturated_fraction_max": ("saturated_fraction", "max", "saturated fraction", ""),
    "cosmic_rays_max": ("cosmic_ray_pixels", "max", "cosmic-ray pixels", ""),
    "airmass_max": ("airmass", "max", "airmass", ""),
}
_SCOPE_KEYS = ("profiles", "programs")
_RULE_KEYS = (*_SCOPE_KEYS, *THRESHOLDS)
_QUALITY_KEYS = ("program_keyword", "rules")


@dataclass(frozen=True, slots=True)
class QualityRule:
    """One named rule: where it applies and its thresholds.

    Attributes
    ----------
    name : str
        The rule's table name (``[quality.rules.<name>]``).
    profiles, programs : tuple of str
        The instrument profiles and observing programs it covers (empty: all).
    thresholds : tuple of (key, value)
        Keys of :data:`THRESHOLDS` and their limits, in file order.
    """

    name: str
    profiles: tuple[str, ...] = ()
    programs: tuple[str, ...] = ()
    thresholds: tuple[tuple[str, float], ...] = ()

    def covers(self, profile: str | None, program: str | None) -> bool:
        """Whether the rule applies to a frame of ``profile`` and ``program``."""
        if self.profiles and profile not in self.profiles:
            return False
        return not (self.programs and program not in self.programs)


@dataclass(frozen=True, slots=True)
class QualitySettings:
    """The ``[quality]`` section: the program keyword and the rules."""

    program_keyword: str = "PROPID"
    rules: tuple[QualityRule, ...] = ()

    def rule(self, name: str) -> QualityRule:
        """The rule called ``name``.

        Raises
        ------
        ConfigurationError
            No rule of that name.
        """
        for rule in self.rules:
            if rule.name == name:
                return rule
        known = ", ".join(r.name for r in self.rules) or "none"
        raise ConfigurationError(f"no quality rule {name!r} in [quality.rules]; known: {known}")


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if (not isinstance(value, list) or not value
            or not all(isinstance(v, str) and v.strip() for v in value)):
        raise ConfigurationError(f"{where} must be a list of names such as [\"lfc\"], "
                                 f"not {value!r}")
    return tuple(v.strip() for v in value)


def _rule_from(name: str, table: Any) -> QualityRule:
    where = f"[quality.rules.{name}]"
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"{where} must be a table of thresholds")
    refuse_unknown(table, _RULE_KEYS, where)
    thresholds = []
    for key, value in table.items():
        if key in _SCOPE_KEYS:
            continue
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or value < 0):
            raise ConfigurationError(f"quality.rules.{name}.{key} must be a number ≥ 0, "
                                     f"not {value!r}")
        thresholds.append((key, float(value)))
    if not thresholds:
        raise ConfigurationError(f"{where} has no threshold; give one of "
                                 + ", ".join(THRESHOLDS))
    return QualityRule(
        name=name,
        profiles=_names(table["profiles"], f"quality.rules.{name}.profiles")
        if "profiles" in table else (),
        programs=_names(table["programs"], f"quality.rules.{name}.programs")
        if "programs" in table else (),
        thresholds=tuple(thresholds))


def quality_from(table: Mapping[str, Any]) -> QualitySettings:
    """The ``[quality]`` section, validated (unknown keys are errors).

    Raises
    ------
    ConfigurationError
        An unknown key, a rule without thresholds, a threshold that is not a number.
    """
    refuse_unknown(table, _QUALITY_KEYS, "[quality]")
    keyword = table.get("program_keyword", "PROPID")
    if not isinstance(keyword, str) or not keyword.strip() or len(keyword.strip()) > 8:
        raise ConfigurationError("quality.program_keyword must be a FITS keyword such as "
                                 f"\"PROPID\", not {keyword!r}")
    rules_table = table.get("rules", {})
    if not isinstance(rules_table, Mapping):
        raise ConfigurationError("[quality.rules] must hold one table per rule")
    rules = tuple(_rule_from(str(name), rule) for name, rule in rules_table.items())
    return QualitySettings(program_keyword=keyword.strip().upper(), rules=rules)


def rules_for(settings: QualitySettings, profile: str | None, program: str | None
              ) -> list[QualityRule]:
    """The rules that cover a frame of ``profile`` and ``program``."""
    return [rule for rule in settings.rules if rule.covers(profile, program)]


def _shown(value: float) -> str:
    return f"{value:.4g}"


def judge(figures: Mapping[str, Any] | None, rules: Sequence[QualityRule]
          ) -> tuple[QualityVerdict, list[str]]:
    """What ``rules`` say of a frame's quality figures.

    Parameters
    ----------
    figures : mapping or None
        The quality record's figures by name (``fwhm_arcsec``, ``n_sources``, …);
        ``None`` or one with an ``error``: nothing was measured.
    rules : sequence of QualityRule
        The rules covering the frame (:func:`rules_for`).

    Returns
    -------
    tuple
        The verdict and its reasons (failed thresholds, then thresholds that could
        not be checked), each naming its rule.
    """
    if not rules:
        return QualityVerdict.UNJUDGED, []
    if figures is None or figures.get("error"):
        why = "not measured" if figures is None else f"not measured: {figures['error']}"
        return QualityVerdict.UNJUDGED, [f"quality {why}"]
    failed: list[str] = []
    unchecked: list[str] = []
    checked = 0
    for rule in rules:
        for key, limit in rule.thresholds:
            figure, sense, label, unit = THRESHOLDS[key]
            value = figures.get(figure)
            if value is None:
                unchecked.append(f"{rule.name}: {label} not checked: not measured")
                continue
            checked += 1
            if sense == "max" and value > limit:
                failed.append(f"{rule.name}: {label} {_shown(value)}{unit} > "
                              f"{_shown(limit)}{unit}")
            elif sense == "min" and value < limit:
                failed.append(f"{rule.name}: {label} {_shown(value)}{unit} < "
                              f"{_shown(limit)}{unit}")
    if failed:
        return QualityVerdict.POOR, failed + unchecked
    return (QualityVerdict.GOOD if checked else QualityVerdict.UNJUDGED), unchecked
