"""Ingestion: raw files in the store become frames in the catalogue.

This module coordinates the file store (reading, hashing, completeness), the
instrument profiles (header normalisation) and the catalogue. Two levels:

:func:`ingest_file`
    One file, in the caller's session (never commits). All file work happens
    before the session is touched, so a failure leaves nothing half-written.
:func:`run_ingest`
    A batch job: owns its units of work (one transaction per chunk of files),
    so it is what the CLI and the daemon call.

Outcomes: ``added`` (new frame), ``new-version`` (same path, new bytes; the old
row is kept), ``moved`` (known bytes at a new path, the old path gone),
``duplicate`` (known bytes also present elsewhere: nothing added), ``unchanged``,
``quarantined`` (bad input, recorded with its reason) and ``incomplete`` (a file
still being written, left for later when the caller asks so).

A mosaic file (a profile with ``ccd``, several CCDs in the file) is one frame per
CCD, added, versioned, moved and recognised as a duplicate together: one outcome
per file, its result listing every frame. A file one of whose CCDs does not tile
is quarantined whole.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from nightlog.catalogue import frames as cat_frames
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame
from nightlog.catalogue.planner_statistics import keep_statistics
from nightlog.catalogue.quarantine import (
    record_quarantined,
    resolve_quarantined,
    unresolved_quarantined,
)
from nightlog.coordinator.ingest_context import IngestContext, IngestResult, IngestSummary
from nightlog.coordinator.retry import is_transient
from nightlog.errors import FileProblem, IncompleteFileError, NightlogError
from nightlog.header.amplifiers import AmplifierLayout, ExtensionHeader
from nightlog.header.model import NormalizedHeader
from nightlog.header.normalize import normalize_header
from nightlog.header.normalize_amplifiers import normalize_ccds
from nightlog.header.profile_warnings import profile_warnings
from nightlog.states import IngestOutcome
from nightlog.store.discovery import discover, report_skipped
from nightlog.store.raw import RawFile, raw_values, read_raw_file

__all__ = [
    "IngestContext",
    "IngestResult",
    "IngestSummary",
    "discover",
    "ingest_chunk",
    "ingest_file",
    "report_skipped",
    "run_ingest",
]

log = logging.getLogger("nightlog.ingest")

OUTCOMES = tuple(IngestOutcome)


@dataclass(slots=True)
class ChunkLookups:
    """What the catalogue knows of a chunk of files, fetched in a few queries.

    Kept up to date as the chunk is ingested, so two copies of the same bytes in
    one chunk are still recognised.
    """

    by_path: dict[str, Frame]
    by_sha: dict[str, Frame]
    quarantined: set[str]

    @classmethod
    def fetch(cls, session: Session, paths: Sequence[str], shas: Sequence[str]
              ) -> ChunkLookups:
        return cls(by_path=cat_frames.latest_by_paths(session, paths),
                   by_sha=cat_frames.frames_by_sha256(session, shas),
                   quarantined=unresolved_quarantined(session, paths))


def _quarantine(session: Session, path: str, exc: NightlogError, *, size: int | None,
                sha256: str | None, lookups: ChunkLookups | None) -> IngestResult:
    reason = str(exc) or type(exc).__name__
    record_quarantined(session, path, reason=reason, error=type(exc).__name__, size=size,
                       sha256=sha256)
    if lookups is not None:
        lookups.quarantined.add(path)
    return IngestResult(path, IngestOutcome.QUARANTINED, reason=reason)


@dataclass(frozen=True, slots=True)
class _Read:
    """A file after the store looked at it: either ``raw`` or ``problem`` is set,
    or neither when it is unchanged since its catalogued version."""

    path: str
    size: int | None
    mtime: dt.datetime | None
    raw: RawFile | None = None
    values: dict[str, Any] | None = None
    header_json: list[Any] | None = None
    problem: NightlogError | None = None
    failed: str | None = None


def _read(spath: str, ctx: IngestContext, known: Frame | None) -> _Read:
    """All file work for one path (no database): stat, quick unchanged check, read."""
    try:
        st = os.stat(spath)
    except OSError as exc:
        return _Read(spath, None, None, failed=f"cannot stat: {exc.strerror}")
    mtime = dt.datetime.fromtimestamp(st.st_mtime, tz=dt.UTC)
    if (known is not None and not ctx.verify and known.size == st.st_size
            and known.mtime == mtime):
        return _Read(spath, st.st_size, mtime)
    try:
        raw = read_raw_file(spath, max_data_bytes=ctx.max_data_bytes)
    except FileProblem as exc:
        return _Read(spath, st.st_size, mtime, problem=exc)
    header_json, values = raw.items()
    return _Read(spath, raw.size, raw.mtime, raw=raw, values=values, header_json=header_json)


def ingest_file(session: Session, path: str | os.PathLike[str], ctx: IngestContext, *,
                lookups: ChunkLookups | None = None) -> IngestResult:
    """Ingest one file into the catalogue, in the caller's session (no commit).

    Parameters
    ----------
    session : Session
        The caller's unit of work.
    path : path-like
        The raw file.
    ctx : IngestContext
        Profiles, site and limits.
    lookups : ChunkLookups, optional
        What the caller already fetched for a batch of files; without it the
        catalogue is queried for this file alone.

    Returns
    -------
    IngestResult
        The outcome, and the frame row when there is one.
    """
    spath = os.path.abspath(path)
    known = (lookups.by_path.get(spath) if lookups is not None
             else cat_frames.latest_by_path(session, spath))
    return _record(session, _read(spath, ctx, known), known, ctx, lookups)


def _record(session: Session, got: _Read, known: Frame | None, ctx: IngestContext,
            lookups: ChunkLookups | None) -> IngestResult:
    """Record in the catalogue what reading one file found (``known``: its latest row)."""
    spath = got.path
    if got.failed is not None:
        return IngestResult(spath, IngestOutcome.FAILED, reason=got.failed)
    if got.problem is not None:
        if isinstance(got.problem, IncompleteFileError) and not ctx.incomplete_is_error:
            return IngestResult(spath, IngestOutcome.INCOMPLETE, reason=str(got.problem))
        return _quarantine(session, spath, got.problem, size=got.size, sha256=None,
                           lookups=lookups)
    if got.raw is None:
        assert known is not None
        return IngestResult(spath, IngestOutcome.UNCHANGED, frame=known)
    raw = got.raw

    existing = (lookups.by_sha.get(raw.sha256) if lookups is not None
                else cat_frames.frame_by_sha256(session, raw.sha256))
    if existing is not None:
        siblings = (cat_frames.frames_of_file(session, raw.sha256)
                    if existing.ccd is not None else [existing])
        if existing.path == spath:
            for frame in siblings:
                frame.mtime = raw.mtime
            return IngestResult(spath, IngestOutcome.UNCHANGED, frame=existing,
                                frames=tuple(siblings))
        old = existing.path
        if existing.is_latest and os.path.exists(old) and _same_size(old, existing.size):
            # Not catalogued twice, but listed by 'nightlog quarantine' with the reason
            # (resolved should the original go and this copy be taken as moved).
            reason = f"same bytes as frame {existing.id} at {old}: a copy, not catalogued"
            record_quarantined(session, spath, reason=reason, error="Duplicate",
                               size=raw.size, sha256=raw.sha256)
            if lookups is not None:
                lookups.quarantined.add(spath)
            return IngestResult(spath, IngestOutcome.DUPLICATE, frame=existing, reason=reason,
                                frames=tuple(siblings))
        cat_frames.move_frames(session, siblings, spath, raw.mtime)
        _resolve(session, spath, lookups)
        if lookups is not None:
            lookups.by_path[spath] = existing
        return IngestResult(spath, IngestOutcome.MOVED, frame=existing, reason=f"was {old}",
                            frames=tuple(siblings))

    values = got.values if got.values is not None else raw.items()[1]
    described: tuple[tuple[NormalizedHeader, AmplifierLayout | None], ...]
    try:
        profile = ctx.profile_matching(values)
        if profile.multi_amplifier:
            described = normalize_ccds(
                values, raw_values(raw.primary),
                [ExtensionHeader(i, raw_values(cards), shape)
                 for i, cards, shape in raw.extensions] or
                [ExtensionHeader(raw.hdu, values, raw.shape)], profile, site=ctx.site)
            for _, layout in described:
                assert layout is not None
                _warn_unknown_gains(profile.name, layout)
        else:
            described = ((normalize_header(values, profile, site=ctx.site, shape=raw.shape),
                          None),)
    except NightlogError as exc:  # HeaderError, or a profile that matches but is unusable
        return _quarantine(session, spath, exc, size=raw.size, sha256=raw.sha256,
                           lookups=lookups)

    header_json = got.header_json or raw.items()[0]
    rows = [(cat_frames.FileFacts(path=spath, sha256=raw.sha256, size=raw.size,
                                  mtime=raw.mtime, hdu=raw.hdu, header_json=header_json,
                                  amplifiers=None if layout is None else layout.as_json()),
             norm) for norm, layout in described]
    outcome = IngestOutcome.NEW_VERSION if known is not None else IngestOutcome.ADDED
    frames = cat_frames.add_frames(session, rows, software_version=ctx.software_version,
                                   previous=None if known is None else [known],
                                   check_previous=lookups is None)
    _resolve(session, spath, lookups)
    if lookups is not None:
        lookups.by_sha[raw.sha256] = frames[0]
        lookups.by_path[spath] = frames[0]
    norm, layout = described[0]
    return IngestResult(spath, outcome, frame=frames[0], frames=tuple(frames),
                        warnings=tuple(profile_warnings(values, profile, norm, layout)))


_WARNED_GAINS: set[str] = set()


def _warn_unknown_gains(profile: str, layout: AmplifierLayout) -> None:
    """Say once per profile in this process that an amplifier has no gain (1 e-/ADU is
    then assumed when it is assembled)."""
    unknown = [f"{a.name} ({a.gain_source})" for a in layout.amplifiers if a.gain is None]
    if unknown and profile not in _WARNED_GAINS:
        _WARNED_GAINS.add(profile)
        log.warning("profile %s: no gain for amplifier(s) %s; their frames are assembled "
                    "with 1 e-/ADU: give each amplifier's gain in the profile (master "
                    "flats measure it)", profile, ", ".join(unknown),
                    extra={"event": "amplifier-gain-default", "profile": profile})


def _resolve(session: Session, path: str, lookups: ChunkLookups | None) -> None:
    if lookups is None or path in lookups.quarantined:
        resolve_quarantined(session, path)
        if lookups is not None:
            lookups.quarantined.discard(path)


def _same_size(path: str, size: int) -> bool:
    try:
        return os.stat(path).st_size == size
    except OSError:
        return False


ProgressCallback = Callable[[IngestResult], None]


def ingest_chunk(session: Session, part: Sequence[Path | str], ctx: IngestContext
                 ) -> list[IngestResult]:
    """Ingest a chunk of files in the caller's session (no commit).

    The files are read first, then the catalogue is asked about all of them in a
    few queries. :func:`run_ingest` and the watch daemon commit one chunk per
    transaction.
    """
    paths = [os.path.abspath(p) for p in part]
    known = cat_frames.latest_by_paths(session, paths)
    reads = [_read(p, ctx, known.get(p)) for p in paths]  # file work, no database
    shas = [r.raw.sha256 for r in reads if r.raw is not None]
    lookups = ChunkLookups(by_path=known, by_sha=cat_frames.frames_by_sha256(session, shas),
                           quarantined=unresolved_quarantined(session, paths))
    results = [_record(session, r, lookups.by_path.get(p), ctx, lookups)
               for p, r in zip(paths, reads, strict=True)]
    session.flush()  # frame ids for the results
    return results


def run_ingest(engine: Engine, files: Sequence[Path], ctx: IngestContext, *,
               chunk: int = 500, progress: ProgressCallback | None = None) -> IngestSummary:
    """Ingest ``files`` as a job: one committed transaction per chunk of files.

    Within a chunk the files are read first, then the catalogue is asked about all
    of them in a few queries. A database error inside a chunk rolls that chunk
    back and replays it one file per transaction, so one bad row never costs the
    others. A file whose row the catalogue refuses is quarantined with the reason
    (so that it is not tried again until it changes); one that meets an outage is
    ``failed`` and ``transient``. Bad files never stop the batch.
    """
    summary = IngestSummary()
    start = time.perf_counter()
    make_session = make_sessionmaker(engine)
    for i in range(0, len(files), chunk):
        part = files[i : i + chunk]
        try:
            with make_session() as session, session.begin():
                results = ingest_chunk(session, part, ctx)
        except SQLAlchemyError:
            results = []
            for p in part:
                try:
                    with make_session() as session, session.begin():
                        result = ingest_file(session, p, ctx)
                        session.flush()
                        results.append(result)
                except SQLAlchemyError as exc:
                    results.append(_refused(make_session, os.path.abspath(p), exc))
        for result in results:
            summary.add(result)
            if progress is not None:
                progress(result)
        keep_statistics(engine)  # a chunk of frames committed: the planner's statistics
    summary.elapsed = time.perf_counter() - start
    return summary


def _refused(make_session: sessionmaker[Session], path: str, exc: SQLAlchemyError
             ) -> IngestResult:
    """The result for a file whose transaction failed: an outage is ``failed`` and
    ``transient``; a refusal of its row is quarantined with the reason, in a
    transaction of its own (``failed`` if even that is refused)."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    reason = f"database error: {type(exc).__name__}: {lines[0][:200] if lines else ''}"
    if is_transient(exc):
        return IngestResult(path, IngestOutcome.FAILED, reason=reason, transient=True)
    reason = f"the catalogue refused its row: {reason.removeprefix('database error: ')}"
    try:
        with make_session() as session, session.begin():
            record_quarantined(session, path, reason=reason, error=type(exc).__name__)
    except SQLAlchemyError as again:
        return IngestResult(path, IngestOutcome.FAILED, reason=reason,
                            transient=is_transient(again))
    return IngestResult(path, IngestOutcome.QUARANTINED, reason=reason)
