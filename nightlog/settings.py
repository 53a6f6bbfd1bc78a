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

import contextlib
import datetime as dt
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nightlog.calibration.policy import CalibrationPolicy, policy_from_table
from nightlog.database_url import normalise_database_url
from nightlog.errors import ConfigurationError
from nightlog.header.model import Site
from nightlog.redaction import redact_url
from nightlog.settings_keys import SECTION_KEYS, TOP_SECTIONS, refuse_unknown

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
class DatabaseSettings:
    """How long the catalogue is waited for.

    ``busy_timeout_seconds``: how long one SQLite statement waits for a lock held
    by another process; ``retries``: tries of a unit of work a batch command
    (``build``, ``reduce``) makes while the catalogue is unreachable or locked,
    pausing 1, 2, 4… s (at most 16) between them, before it stops with an error.
    """

    busy_timeout_seconds: float = 30.0
    retries: int = 6


@dataclass(frozen=True, slots=True)
class IngestSettings:
    """How files are found and accepted."""

    patterns: tuple[str, ...] = ("*.fits", "*.fit", "*.fts", "*.fits.gz", "*.fit.gz",
                                 "*.fts.gz", "*.fits.fz", "*.fz")
    default_profile: str | None = None
    follow_symlinks: bool = False  # links found in folders that point outside them
    max_data_bytes: int = 8 * 1024**3  # per data unit, and per decompressed .gz file


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """How ``nightlog watch`` waits for files and what it does after ingesting them."""

    settle_seconds: float = 2.0  # size and mtime unchanged this long: complete
    build_delay_seconds: float = 5.0  # quiet time after a calibration frame before a build
    build_max_delay_seconds: float = 120.0  # build at the latest this long after the first
    quicklook: bool = False  # quick-look reduction of each science frame
    heartbeat_seconds: float = 10.0
    polling: bool = False  # poll the folders (network shares without change events)
    incomplete_timeout_seconds: float = 3600.0  # shorter than declared this long: quarantine
    zero_tail_seconds: float = 60.0  # data ending in a zero block: unchanged this long first


@dataclass(frozen=True, slots=True)
class ReductionSettings:
    """Defaults of the reduction that a site may want to change.

    Attributes
    ----------
    memory_limit_bytes : int
        Bound on the memory used when combining stacks.
    workers : int or None
        Local worker processes of ``nightlog reduce`` (``None``: one per core).
    scheduler : str or None
        Address of a Dask distributed scheduler (``tcp://host:8786``); when set,
        ``nightlog reduce`` runs its frames on that cluster.
    retries : int
        Further tries of a frame whose reduction failed or whose worker died.
    morning_at : datetime.time or None
        Local time at which ``nightlog watch`` reduces the night that ended
        (``None``: it does not).
    unit : {'adu', 'electron'}
        Unit products are written in (``unit = "electron"``: multiplied by the gain;
        masters stay in ADU, the unit of the raw frames they calibrate).
    """

    memory_limit_bytes: int = 2 * 1024**3
    workers: int | None = None
    scheduler: str | None = None
    retries: int = 2
    morning_at: dt.time | None = None
    unit: str = "adu"


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


def _parse_size(value: Any, key: str) -> int:
    if isinstance(value, int) and value > 0:
        return value
    if isinstance(value, str):
        units = {"KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "KB": 1000, "MB": 1000**2,
                 "GB": 1000**3, "B": 1}
        text = value.strip().upper().replace(" ", "")
        for unit, factor in units.items():
            if text.endswith(unit):
                try:
                    number = float(text[: -len(unit)])
                except ValueError:
                    break
                if number > 0:
                    return int(number * factor)
    raise ConfigurationError(f"{key} must be a positive size such as '2 GiB', not {value!r}")


_WATCH_SECONDS = {"settle_seconds": (0.0, 3600.0), "build_delay_seconds": (0.0, 86400.0),
                  "build_max_delay_seconds": (0.0, 86400.0),
                  "heartbeat_seconds": (0.5, 3600.0),
                  "incomplete_timeout_seconds": (1.0, 30 * 86400.0),
                  "zero_tail_seconds": (0.0, 86400.0)}
_WATCH_BOOLS = ("quicklook", "polling")


def _watch_from(table: Mapping[str, Any]) -> WatchSettings:
    refuse_unknown(table, SECTION_KEYS["watch"], "[watch]")
    values: dict[str, Any] = {}
    for key, (low, high) in _WATCH_SECONDS.items():
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"watch.{key} must be a number of seconds")
            if not low <= float(value) <= high:
                raise ConfigurationError(f"watch.{key} must lie in [{low:g}, {high:g}] s, "
                                         f"not {value}")
            values[key] = float(value)
    for key in _WATCH_BOOLS:
        if key in table:
            if not isinstance(table[key], bool):
                raise ConfigurationError(f"watch.{key} must be true or false")
            values[key] = table[key]
    watch = WatchSettings(**values)
    if watch.build_max_delay_seconds < watch.build_delay_seconds:
        raise ConfigurationError("watch.build_max_delay_seconds must not be shorter than "
                                 "watch.build_delay_seconds")
    return watch


def _database_from(table: Mapping[str, Any]) -> DatabaseSettings:
    refuse_unknown(table, SECTION_KEYS["database"], "[database]")
    values: dict[str, Any] = {}
    if "busy_timeout_seconds" in table:
        value = table["busy_timeout_seconds"]
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not 0 <= value <= 3600):
            raise ConfigurationError("database.busy_timeout_seconds must be a number of "
                                     f"seconds from 0 to 3600, not {value!r}")
        values["busy_timeout_seconds"] = float(value)
    if "retries" in table:
        value = table["retries"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
            raise ConfigurationError(f"database.retries must be a whole number from 1 to 100, "
                                     f"not {value!r}")
        values["retries"] = value
    return DatabaseSettings(**values)


def _ingest_from(table: Mapping[str, Any]) -> IngestSettings:
    refuse_unknown(table, SECTION_KEYS["ingest"], "[ingest]")
    values: dict[str, Any] = {}
    if "patterns" in table:
        pats = table["patterns"]
        if not isinstance(pats, list) or not all(isinstance(p, str) for p in pats):
            raise ConfigurationError("ingest.patterns must be a list of glob patterns")
        values["patterns"] = tuple(pats)
    if "default_profile" in table:
        values["default_profile"] = str(table["default_profile"])
    if "follow_symlinks" in table:
        if not isinstance(table["follow_symlinks"], bool):
            raise ConfigurationError("ingest.follow_symlinks must be true or false")
        values["follow_symlinks"] = table["follow_symlinks"]
    if "max_data_size" in table:
        values["max_data_bytes"] = _parse_size(table["max_data_size"], "ingest.max_data_size")
    return IngestSettings(**values)


_OUTPUT_UNITS = ("adu", "electron")
_SCHEDULER_SCHEMES = ("tcp://", "tls://", "ucx://", "inproc://", "ws://", "wss://")


def _reduction_from(table: Mapping[str, Any]) -> ReductionSettings:
    refuse_unknown(table, SECTION_KEYS["reduction"], "[reduction]")
    values: dict[str, Any] = {}
    if "memory_limit" in table:
        values["memory_limit_bytes"] = _parse_size(table["memory_limit"],
                                                   "reduction.memory_limit")
    for key, low in (("workers", 1), ("retries", 0)):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigurationError(f"reduction.{key} must be a whole number ≥ {low}, "
                                         f"not {value!r}")
            values[key] = value
    if "scheduler" in table:
        address = table["scheduler"]
        if not isinstance(address, str) or not address.startswith(_SCHEDULER_SCHEMES):
            raise ConfigurationError(
                "reduction.scheduler must be a Dask scheduler address such as "
                f"'tcp://head-node:8786', not {address!r}")
        values["scheduler"] = address
    if "morning_at" in table:
        when = table["morning_at"]
        if isinstance(when, str):
            with contextlib.suppress(ValueError):
                when = dt.time.fromisoformat(when)
        if not isinstance(when, dt.time) or when.tzinfo is not None:
            raise ConfigurationError("reduction.morning_at must be a local time such as "
                                     f"\"08:00\", not {table['morning_at']!r}")
        values["morning_at"] = when
    if "unit" in table:
        unit = table["unit"]
        if unit not in _OUTPUT_UNITS:
            raise ConfigurationError("reduction.unit must be "
                                     + " or ".join(f'"{name}"' for name in _OUTPUT_UNITS)
                                     + f", not {unit!r}")
        values["unit"] = unit
    return ReductionSettings(**values)


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
    database = _database_from(db_table)
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
    watch = _watch_from(watch_table)

    instruments = _table(data, "instruments")
    for name, table in instruments.items():
        if not isinstance(table, dict):
            raise ConfigurationError(f"[instruments.{name}] must be a table")

    ingest = _ingest_from(_table(data, "ingest"))

    reduction = _reduction_from(_table(data, "reduction"))

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
    )
