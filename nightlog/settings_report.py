"""The effective configuration, value by value, with where each value came from.

What ``nightlog config show`` prints: every key of every section of
``nightlog.toml`` (:data:`~nightlog.settings_keys.SECTION_KEYS`), the value the
settings hold, and its source: the file, the environment
(``NIGHTLOG_DATABASE_URL``) or the built-in default. Passwords in URLs are shown
as ``***``. ``check_config`` validates everything a command would, instrument
profiles included, without touching the catalogue or the archive.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nightlog.calibration.policy import CALIBRATION_KINDS, CHECK_NAMES
from nightlog.header.profiles import ProfileRegistry
from nightlog.redaction import redact_text, redact_url
from nightlog.settings import Settings, load_settings, read_config
from nightlog.settings_keys import COSMIC_RAY_KEYS, SECTION_KEYS

__all__ = ["ConfigValue", "EffectiveConfig", "check_config", "effective_config"]

FILE, ENVIRONMENT, DEFAULT = "file", "environment", "default"


@dataclass(frozen=True, slots=True)
class ConfigValue:
    """One setting: ``key`` (``section.name``), its effective ``value`` (plain JSON;
    passwords as ``***``) and its ``source`` (``file``, ``environment``, ``default``)."""

    key: str
    value: Any
    source: str

    def as_dict(self) -> dict[str, Any]:
        """The JSON record of ``nightlog config show --format json``."""
        return {"key": self.key, "value": self.value, "source": self.source}


@dataclass(frozen=True, slots=True)
class EffectiveConfig:
    """The configuration file that applies (``None``: defaults only), how it was
    found, and every value."""

    path: Path | None
    found_by: str
    values: tuple[ConfigValue, ...]

    def as_dict(self) -> dict[str, Any]:
        """The JSON document of ``nightlog config show --format json``."""
        return {"config_file": None if self.path is None else str(self.path),
                "found_by": self.found_by, "values": [v.as_dict() for v in self.values]}


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dt.time | dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, str):
        return redact_text(value)
    return value


def _section_values(settings: Settings, section: str) -> dict[str, Any]:
    """The effective value of every key of ``section``, by key."""
    if section == "archive":
        return {"root": settings.archive_root,
                "compress": settings.archive_compress or "none"}
    if section == "database":
        return {"url": redact_url(settings.database_url),
                "busy_timeout_seconds": settings.database.busy_timeout_seconds,
                "retries": settings.database.retries}
    if section == "site":
        site = settings.site
        return {"latitude": site.latitude_deg, "longitude": site.longitude_deg,
                "name": site.name, "timezone": site.timezone}
    if section == "watch":
        return {key: (settings.watch_dirs if key == "directories"
                      else getattr(settings.watch, key)) for key in SECTION_KEYS["watch"]}
    if section == "ingest":
        ingest = settings.ingest
        return {"patterns": ingest.patterns, "default_profile": ingest.default_profile,
                "follow_symlinks": ingest.follow_symlinks,
                "max_data_size": ingest.max_data_bytes}
    if section == "reduction":
        red = settings.reduction
        return {"memory_limit": red.memory_limit_bytes, "workers": red.workers,
                "scheduler": red.scheduler, "retries": red.retries,
                "morning_at": red.morning_at, "unit": red.unit}
    if section == "health":
        return {key: getattr(settings.health, key) for key in SECTION_KEYS["health"]}
    if section == "notify":
        # URLs may carry a token: shown redacted, as every URL here.
        return {"webhooks": [{"url": redact_url(w.url), "events": list(w.events),
                              "timeout": w.timeout, "retries": w.retries}
                             for w in settings.notify.webhooks],
                "smtp": None if settings.notify.mail is None else {
                    "host": settings.notify.mail.host, "port": settings.notify.mail.port,
                    "sender": settings.notify.mail.sender, "to": list(settings.notify.mail.to),
                    "events": list(settings.notify.mail.events),
                    "starttls": settings.notify.mail.starttls}}
    if section == "combine":
        return {key: getattr(settings.combine, key) for key in SECTION_KEYS["combine"]}
    if section == "cosmic_rays":
        return {**{key: getattr(settings.cosmic_rays.default, key) for key in COSMIC_RAY_KEYS},
                "profiles": sorted(settings.cosmic_rays.profiles)}
    raise KeyError(section)


def _cosmic_ray_profile_values(settings: Settings, table: Mapping[str, Any]
                               ) -> list[ConfigValue]:
    """Each ``[cosmic_rays.profiles.<name>]``: every key's value for that profile,
    ``file`` where the profile's table or the section sets it, else ``default``."""
    out = []
    for name, given in (table.get("profiles") or {}).items():
        chosen = settings.cosmic_rays.profiles[name]
        out += [ConfigValue(f"cosmic_rays.profiles.{name}.{key}", getattr(chosen, key),
                            FILE if key in given or key in table else DEFAULT)
                for key in COSMIC_RAY_KEYS]
    return out


def _calibration_values(settings: Settings, table: Mapping[str, Any]
                        ) -> list[ConfigValue]:
    policy = settings.calibration
    out = [ConfigValue("calibration.dark_exptime_tolerance", policy.dark_exptime_tolerance,
                       FILE if "dark_exptime_tolerance" in table else DEFAULT)]
    for name, per_kind in (("validity_days", policy.validity_days),
                           ("on_missing", policy.on_missing)):
        given = table.get(name) or {}
        out += [ConfigValue(f"calibration.{name}.{kind}", per_kind.get(kind),
                            FILE if kind in given else DEFAULT) for kind in CALIBRATION_KINDS]
    given = table.get("checks") or {}
    out += [ConfigValue(f"calibration.checks.{name}", getattr(policy.checks, name),
                        FILE if name in given else DEFAULT) for name in CHECK_NAMES]
    return out


def _found_by(config_path: Path | None, path: Path | None, env: Mapping[str, str]) -> str:
    if path is None:
        return "none: built-in defaults, archive in the working folder"
    if config_path is not None:
        return "the --config option"
    if env.get("NIGHTLOG_CONFIG"):
        return "the NIGHTLOG_CONFIG environment variable"
    return "the working folder"


def effective_config(config_path: Path | None = None, *, env: Mapping[str, str] | None = None,
                     cwd: Path | None = None) -> EffectiveConfig:
    """Every setting's effective value and source, as :func:`load_settings` finds them.

    Parameters
    ----------
    config_path, env, cwd
        As for :func:`~nightlog.settings.load_settings`.

    Returns
    -------
    EffectiveConfig
        The file and one :class:`ConfigValue` per key, section by section;
        instrument profiles from the file as one value each.

    Raises
    ------
    ConfigurationError
        The configuration is invalid (the same error every command gives).
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    path, data = read_config(config_path, env=env, cwd=cwd)
    settings = load_settings(config_path, env=env, cwd=cwd)
    values: list[ConfigValue] = []
    for section in ("archive", "database", "site", "watch", "ingest", "reduction", "combine",
                    "cosmic_rays", "health", "notify"):
        table = data.get(section) or {}
        for key, value in _section_values(settings, section).items():
            source = FILE if key in table else DEFAULT
            if section == "database" and key == "url" and env.get("NIGHTLOG_DATABASE_URL"):
                source = ENVIRONMENT
            values.append(ConfigValue(f"{section}.{key}", _plain(value), source))
    values += _cosmic_ray_profile_values(settings, data.get("cosmic_rays") or {})
    values += _calibration_values(settings, data.get("calibration") or {})
    quality_table = data.get("quality") or {}
    values.append(ConfigValue("quality.program_keyword", settings.quality.program_keyword,
                              FILE if "program_keyword" in quality_table else DEFAULT))
    rules = quality_table.get("rules") or {}
    values.append(ConfigValue("quality.rules", _plain(rules), FILE if rules else DEFAULT))
    values += [ConfigValue(f"instruments.{name}", _plain(table), FILE)
               for name, table in settings.instruments.items()]
    return EffectiveConfig(path=None if path is None else path.resolve(),
                           found_by=_found_by(config_path, path, env), values=tuple(values))


def check_config(config_path: Path | None = None, *, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None) -> Settings:
    """Validate the configuration as a command would, without running anything.

    The settings are loaded and every instrument profile is built (the built-in
    ones and the file's); no database is opened and no file of the archive read.

    Returns
    -------
    Settings
        The valid settings.

    Raises
    ------
    ConfigurationError
        The first problem found (``ProfileError`` for an instrument profile, an
        ``ingest.default_profile`` or a ``[cosmic_rays.profiles.<name>]`` that names
        none).
    """
    settings = load_settings(config_path, env=env, cwd=cwd)
    registry = ProfileRegistry.from_settings(settings.instruments)
    settings.cosmic_rays.check_profiles(registry.names)
    if settings.ingest.default_profile is not None:
        registry.get(settings.ingest.default_profile)
    return settings
