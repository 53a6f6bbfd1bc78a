"""One typed settings object, loaded explicitly from one TOML file.

Where the file comes from, first match wins:

1. the ``--config`` option (``config_path`` argument);
2. the ``NIGHTLOG_CONFIG`` environment variable;
3. ``./nightlog.toml`` in the working folder;
4. no file: every default applies, with the archive in the working folder.

``NIGHTLOG_DATABASE_URL`` overrides the database URL of the file. Relative paths in
a file are relative to the file's folder, so an archive can be moved whole.
Nothing is read at import time; callers build a :class:`Settings` and pass it down.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nightlog.calibration.health_settings import HealthSettings, health_from
from nightlog.calibration.policy import CalibrationPolicy, policy_from_table
from nightlog.database_url import normalise_database_url
from nightlog.errors import ConfigurationError
from nightlog.header.model import Site
from nightlog.notify.config import NotifySettings, notify_from
from nightlog.quality_rules import QualitySettings, quality_from
from nightlog.redaction import redact_url
from nightlog.settings_cosmic_rays import CosmicRayConfig, cosmic_rays_from
from nightlog.settings_keys import SECTION_KEYS, TOP_SECTIONS, refuse_unknown
from nightlog.settings_sections import (
    CombineSettings,
    DatabaseSettings,
    IngestSettings,
    ReductionSettings,
    WatchSettings,
    combine_from,
    database_from,
    ingest_from,
    reduction_from,
    watch_from,
)

__all__ = [
    "CONFIG_FILENAME",
    "DEFAULT_DB_FILENAME",
    "DatabaseSettings",
    "Settings",
    "WatchSettings",
    "load_settings",
    "read_config",
]

CONFIG_FILENAME = "nightlog.toml"
DEFAULT_DB_FILENAME = "nightlog.sqlite"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything nightlog needs to know about one installation.

    Attributes
    ----------
    archive_root : Path
        Folder that holds masters, products and (by default) the SQLite catalogue.
    database_url : str
        SQLAlchemy URL of the catalogue.
    site : Site
        Observatory location for the night boundary (profiles may override).
    watch_dirs : tuple of Path
        Folders ``nightlog watch`` follows when given none.
    watch : WatchSettings
        Settle time, build debouncing, quick-looks and heartbeat of ``nightlog watch``.
    instruments : dict
        Raw instrument-profile tables from the file, by name; they add to or
        override the built-in profiles.
    config_path : Path or None
        The file these settings were read from, if any.
    archive_compress : str or None
        ``"rice"``: products and masters written tile-compressed (``.fits.fz``).
    health : HealthSettings
        ``[health]``: the normal bands of the detector's figures.
    notify : NotifySettings
        ``[notify]``: the webhooks events are sent to.
    quality : QualitySettings
        The quality rules (``[quality]``, :mod:`nightlog.quality_rules`).
    combine : CombineSettings
        How the frames of masters are clipped (``[combine]``).
    cosmic_rays : CosmicRayConfig
        L.A.Cosmic's settings, per profile (``[cosmic_rays]``,
        :mod:`nightlog.settings_cosmic_rays`).
    """

    archive_root: Path
    database_url: str
    site: Site = field(default_factory=Site)
    watch_dirs: tuple[Path, ...] = ()
    watch: WatchSettings = field(default_factory=WatchSettings)
    instruments: dict[str, dict[str, Any]] = field(default_factory=dict)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    reduction: ReductionSettings = field(default_factory=ReductionSettings)
    calibration: CalibrationPolicy = field(default_factory=CalibrationPolicy)
    config_path: Path | None = None
    archive_compress: str | None = None
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    health: HealthSettings = field(default_factory=HealthSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    combine: CombineSettings = field(default_factory=CombineSettings)
    cosmic_rays: CosmicRayConfig = field(default_factory=CosmicRayConfig)

    @property
    def safe_database_url(self) -> str:
        """The database URL with any password replaced by ``***``."""
        return redact_url(self.database_url)


def _find_config(config_path: Path | None, env: Mapping[str, str], cwd: Path) -> Path | None:
    if config_path is not None:
        if not config_path.is_file():
            raise ConfigurationError(f"configuration file not found: {config_path}")
        return config_path
    from_env = env.get("NIGHTLOG_CONFIG")
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigurationError(f"NIGHTLOG_CONFIG names a missing file: {path}")
        return path
    local = cwd / CONFIG_FILENAME
    return local if local.is_file() else None


def _table(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigurationError(f"[{key}] must be a table, not {type(value).__name__}")
    return value


def read_config(config_path: Path | None = None, *, env: Mapping[str, str] | None = None,
                cwd: Path | None = None) -> tuple[Path | None, dict[str, Any]]:
    """The configuration file that applies, and its tables as read (not validated
    beyond the names of its sections).

    Parameters
    ----------
    config_path, env, cwd
        As for :func:`load_settings`.

    Returns
    -------
    tuple
        The file (``None`` when none applies) and its TOML tables (empty without).

    Raises
    ------
    ConfigurationError
        The file is missing, unreadable, not valid TOML or names an unknown section.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    path = _find_config(config_path, env, cwd)
    if path is None:
        return None, {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid TOML: {exc}") from exc
    refuse_unknown(data, TOP_SECTIONS, str(path), noun="section")
    return path, data


def load_settings(
    config_path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Load the settings of this installation.

    Parameters
    ----------
    config_path : Path, optional
        An explicit file (the CLI's ``--config``); it must exist.
    env : mapping, optional
        Environment to read ``NIGHTLOG_CONFIG`` and ``NIGHTLOG_DATABASE_URL`` from
        (default: ``os.environ``).
    cwd : Path, optional
        Working folder (default: the process's).

    Raises
    ------
    ConfigurationError
        The file is missing, not valid TOML, or holds invalid values.
    """
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    path, data = read_config(config_path, env=env, cwd=cwd)
    base = cwd if path is None else path.resolve().parent

    archive_table = _table(data, "archive")
    refuse_unknown(archive_table, SECTION_KEYS["archive"], "[archive]")
    root = Path(str(archive_table.get("root", ".")))
    archive_root = (root if root.is_absolute() else base / root).resolve()
    compress = archive_table.get("compress", "none")
    if compress not in ("none", "rice"):
        raise ConfigurationError(f'archive.compress must be "rice" or "none", not {compress!r}')

    db_table = _table(data, "database")
    database = database_from(db_table)
    url = env.get("NIGHTLOG_DATABASE_URL") or db_table.get("url")
    if url is None:
        url = f"sqlite:///{archive_root / DEFAULT_DB_FILENAME}"
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(f"database.url is not a database URL: {redact_url(str(url))}")
    url = normalise_database_url(url)

    watch_table = _table(data, "watch")
    dirs = watch_table.get("directories", [])
    if not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs):
        raise ConfigurationError("watch.directories must be a list of folder names")
    watch_dirs = tuple((base / d).resolve() if not Path(d).is_absolute() else Path(d)
                       for d in dirs)
    watch = watch_from(watch_table)

    instruments = _table(data, "instruments")
    for name, table in instruments.items():
        if not isinstance(table, dict):
            raise ConfigurationError(f"[instruments.{name}] must be a table")

    ingest = ingest_from(_table(data, "ingest"))

    reduction = reduction_from(_table(data, "reduction"))

    return Settings(
        archive_root=archive_root,
        archive_compress=None if compress == "none" else compress,
        database_url=url,
        site=Site.from_table(_table(data, "site"), where="site"),
        watch_dirs=watch_dirs,
        watch=watch,
        instruments={k: dict(v) for k, v in instruments.items()},
        ingest=ingest,
        reduction=reduction,
        calibration=policy_from_table(_table(data, "calibration")),
        config_path=None if path is None else path.resolve(),
        database=database,
        health=health_from(_table(data, "health")),
        notify=notify_from(_table(data, "notify")),
        quality=quality_from(_table(data, "quality")),
        combine=combine_from(_table(data, "combine")),
        cosmic_rays=cosmic_rays_from(_table(data, "cosmic_rays")),
    )
