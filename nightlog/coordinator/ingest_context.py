"""What ingestion needs besides a session, and what it answers.

:class:`IngestContext` (profiles, site, limits), :class:`IngestResult` (what
happened to one file: its frame, or one per CCD of a mosaic) and
:class:`IngestSummary` (the counts, problems and profile warnings of a batch).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from nightlog import __version__
from nightlog.catalogue.models import Frame
from nightlog.header.model import Site
from nightlog.header.profile_warnings import ProfileWarning, WarningsOnce
from nightlog.header.profiles import InstrumentProfile, ProfileRegistry
from nightlog.header.profiles.registry import FALLBACK_PROFILE
from nightlog.settings import Settings
from nightlog.states import IngestOutcome
from nightlog.store.raw import DEFAULT_MAX_DATA_BYTES

__all__ = ["IngestContext", "IngestResult", "IngestSummary"]


@dataclass(frozen=True, slots=True)
class IngestContext:
    """What ingestion needs besides the session: profiles, site, limits."""

    registry: ProfileRegistry
    site: Site | None = None
    verify: bool = False  # re-hash files whose size and mtime are unchanged
    incomplete_is_error: bool = True  # quarantine truncated files (else: wait for them)
    max_data_bytes: int = DEFAULT_MAX_DATA_BYTES
    software_version: str = __version__
    default_profile: str | None = None  # used when no profile's match rules hold
    follow_symlinks: bool = False  # links in watched folders that point outside them

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> IngestContext:
        """Context for an installation's settings."""
        site = settings.site
        registry = ProfileRegistry.from_settings(settings.instruments)
        default = settings.ingest.default_profile
        if default is not None:
            registry.get(default)  # an unknown name is a configuration error, now
        values: dict[str, object] = {
            "registry": registry,
            "site": site if site.has_place else None,
            "default_profile": default,
            "follow_symlinks": settings.ingest.follow_symlinks,
            "max_data_bytes": settings.ingest.max_data_bytes,
        }
        return cls(**{**values, **overrides})  # type: ignore[arg-type]

    def profile_matching(self, header: Any) -> InstrumentProfile:
        """The profile whose match rules ``header`` meets, or the configured default
        when only the fallback fits."""
        profile = self.registry.match(header)
        if profile.name == FALLBACK_PROFILE and self.default_profile is not None:
            return self.registry.get(self.default_profile)
        return profile


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What happened to one file (``frame`` is the row, whose id exists after a flush).

    ``transient`` is set on a file that ``failed`` because the catalogue was
    unreachable or locked: trying it again later is worth it. ``warnings`` are what
    its profile left to a default (:func:`profile_warnings`), for a frame added.
    ``frames`` are every frame of the file (one per CCD of a mosaic, ``frame`` the
    first); empty where there is none.
    """

    path: str
    outcome: IngestOutcome
    frame: Frame | None = None
    reason: str | None = None
    transient: bool = False
    warnings: tuple[ProfileWarning, ...] = ()
    frames: tuple[Frame, ...] = ()

    def __post_init__(self) -> None:
        if self.frame is not None and not self.frames:
            object.__setattr__(self, "frames", (self.frame,))

    @property
    def frame_id(self) -> int | None:
        return None if self.frame is None else self.frame.id


@dataclass(slots=True)
class IngestSummary:
    """Counts and problems of one batch, and its profile warnings, each once per
    instrument (``warnings``: ``(profile, instrument, warning)`` in the order first
    seen; ``said`` counts the frames of each)."""

    counts: Counter[str] = field(default_factory=Counter)
    problems: list[IngestResult] = field(default_factory=list)
    elapsed: float = 0.0
    warnings: list[tuple[str, str | None, ProfileWarning]] = field(default_factory=list)
    said: WarningsOnce = field(default_factory=WarningsOnce)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, result: IngestResult) -> None:
        self.counts[result.outcome] += 1
        if result.outcome in (IngestOutcome.QUARANTINED, IngestOutcome.FAILED,
                              IngestOutcome.DUPLICATE):
            self.problems.append(result)
        if result.warnings and result.frame is not None:
            profile, instrument = result.frame.profile, result.frame.instrument
            self.warnings += [(profile, instrument, w)
                              for w in self.said.new(profile, instrument, result.warnings)]
