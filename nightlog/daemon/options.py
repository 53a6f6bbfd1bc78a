"""What a watch daemon follows and how it paces itself.

Built from the installation's settings (``[watch]``, ``[ingest] patterns``,
``[reduction] morning_at``) with per-run overrides (the CLI's options, tests).
Times are in seconds.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nightlog.errors import ConfigurationError
from nightlog.settings import Settings

__all__ = ["WatchOptions"]


@dataclass(frozen=True, slots=True)
class WatchOptions:
    """What a daemon follows and how it paces itself (seconds throughout)."""

    directories: tuple[Path, ...]
    patterns: tuple[str, ...]
    settle: float = 2.0
    build_delay: float = 5.0
    build_max_delay: float = 120.0
    quicklook: bool = False
    heartbeat: float = 10.0
    polling: bool = False
    chunk: int = 50  # files per transaction; a stop waits for the chunk at hand
    tick: float = 0.1
    backoff_first: float = 0.5
    backoff_cap: float = 30.0
    quicklook_lookback: float = 86400.0  # owed quick-looks taken up at start
    close_events: bool = True  # a close-write of a complete file ends its wait
    rescan: float = 300.0  # look over the folders for files no event announced
    incomplete_timeout: float = 3600.0  # a file shorter than declared, unchanged: quarantined
    zero_tail: float = 60.0  # data ending in a zero block: taken once unchanged this long
    check_writers: bool = True  # wait while a process holds a file open for writing
    morning_at: dt.time | None = None  # local time of the morning reduction
    name: str = ""

    @classmethod
    def from_settings(cls, settings: Settings, directories: Sequence[Path] = (),
                      **overrides: object) -> WatchOptions:
        """Options of an installation; ``directories`` default to ``[watch] directories``."""
        dirs = tuple(Path(os.path.abspath(d)) for d in (directories or settings.watch_dirs))
        if not dirs:
            raise ConfigurationError("no folder to watch: give one, or set "
                                     "[watch] directories in nightlog.toml")
        for d in dirs:
            if not d.is_dir():
                raise ConfigurationError(f"not a folder: {d}")
        w = settings.watch
        values: dict[str, object] = {
            "directories": dirs, "patterns": tuple(settings.ingest.patterns),
            "settle": w.settle_seconds, "build_delay": w.build_delay_seconds,
            "build_max_delay": w.build_max_delay_seconds, "quicklook": w.quicklook,
            "heartbeat": w.heartbeat_seconds, "polling": w.polling,
            "incomplete_timeout": w.incomplete_timeout_seconds,
            "zero_tail": w.zero_tail_seconds,
            "morning_at": settings.reduction.morning_at}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
