"""The sections of ``nightlog.toml``: one settings type each, and its parser.

Each parser takes the section's table, refuses unknown keys (with a suggestion),
checks every value's type and range, and returns a frozen dataclass; defaults are
the dataclasses' own. :func:`nightlog.settings.load_settings` assembles them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nightlog.errors import ConfigurationError
from nightlog.settings_keys import SECTION_KEYS, refuse_unknown

__all__ = ["REJECT_CHOICES", "CombineSettings", "DatabaseSettings", "IngestSettings",
           "ReductionSettings", "WatchSettings", "combine_from", "database_from",
           "ingest_from", "parse_size", "reduction_from", "watch_from"]


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


def parse_size(value: Any, key: str) -> int:
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


def watch_from(table: Mapping[str, Any]) -> WatchSettings:
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


def database_from(table: Mapping[str, Any]) -> DatabaseSettings:
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


def ingest_from(table: Mapping[str, Any]) -> IngestSettings:
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
        values["max_data_bytes"] = parse_size(table["max_data_size"], "ingest.max_data_size")
    return IngestSettings(**values)


_OUTPUT_UNITS = ("adu", "electron")
_SCHEDULER_SCHEMES = ("tcp://", "tls://", "ucx://", "inproc://", "ws://", "wss://")


def reduction_from(table: Mapping[str, Any]) -> ReductionSettings:
    refuse_unknown(table, SECTION_KEYS["reduction"], "[reduction]")
    values: dict[str, Any] = {}
    if "memory_limit" in table:
        values["memory_limit_bytes"] = parse_size(table["memory_limit"],
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


#: The values of ``[combine] reject``.
REJECT_CHOICES = ("auto", "none", "mad", "sigclip", "avsigclip", "ccdclip")


@dataclass(frozen=True, slots=True)
class CombineSettings:
    """How the frames of a master are clipped, under IRAF ``imcombine``'s names.

    Attributes
    ----------
    reject : str
        ``auto`` (default): the noise model (``ccdclip``) for biases and flats whose
        frames all know their gain and read noise, else one pass of a MAD clip
        about the median; ``none``; ``mad``; ``sigclip`` (IRAF's sigma of the
        survivors about the centre); ``avsigclip``; ``ccdclip`` (every kind; a group whose
        frames do not know their numbers keeps the MAD clip, and its parameters
        say so).
    centre : {'median', 'mean'}
        Centre of the clip (IRAF ``mclip``: yes / no) for an explicit ``reject``.
    lsigma, hsigma : float
        Thresholds below / above the centre, for an explicit ``reject``.
    max_iters : int or None
        Passes of an explicit ``reject`` (``None``: until nothing more is rejected).
    nkeep : int or None
        IRAF ``nkeep``: the fewest values kept (``>= 0``) or most rejected (``< 0``)
        by the clip, whichever it is, ``auto`` included.
    frame_scales : bool
        The noise model, ``sigclip`` and ``avsigclip`` in each frame's own units
        (scaled flats).
    """

    reject: str = "auto"
    centre: str = "median"
    lsigma: float = 3.0
    hsigma: float = 3.0
    max_iters: int | None = None
    nkeep: int | None = None
    frame_scales: bool = False


def combine_from(table: Mapping[str, Any]) -> CombineSettings:
    """Parse ``[combine]``."""
    refuse_unknown(table, SECTION_KEYS["combine"], "[combine]")
    values: dict[str, Any] = {}
    for key, choices in (("reject", REJECT_CHOICES), ("centre", ("median", "mean"))):
        if key in table:
            if table[key] not in choices:
                raise ConfigurationError(f"combine.{key} must be one of "
                                         f"{', '.join(choices)}, not {table[key]!r}")
            values[key] = table[key]
    for key in ("lsigma", "hsigma"):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigurationError(f"combine.{key} must be a number >= 0, not {value!r}")
            values[key] = float(value)
    for key, low in (("max_iters", 1), ("nkeep", None)):
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or (
                    low is not None and value < low):
                bound = f" >= {low}" if low is not None else ""
                raise ConfigurationError(f"combine.{key} must be a whole number{bound}, "
                                         f"not {value!r}")
            values[key] = value
    if "frame_scales" in table:
        if not isinstance(table["frame_scales"], bool):
            raise ConfigurationError("combine.frame_scales must be true or false, not "
                                     f"{table['frame_scales']!r}")
        values["frame_scales"] = table["frame_scales"]
    return CombineSettings(**values)
