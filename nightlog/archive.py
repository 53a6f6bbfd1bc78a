"""The Python API: one archive, its catalogue queried as astropy Tables, its files as
CCDData.

::

    import nightlog

    with nightlog.Archive("nightlog-demo") as archive:
        flats = archive.frames(kind="flat", filter="g'")
        master = archive.master(int(archive.masters(kind="bias")["id"][0])).ccd()

An :class:`Archive` reads the settings (a ``nightlog.toml``, a folder holding one,
or :class:`~nightlog.settings.Settings`), owns one engine until :meth:`Archive.close`
(or the end of its ``with`` block) and opens one short read-only session per call:
it never writes to the catalogue. The listings are the ones the CLI prints
(``nightlog frames``, ``calib list``), from the same queries.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from types import TracebackType
from typing import Self

from astropy.table import Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from nightlog.archive_file import ArchiveFile
from nightlog.calibration.match_report import MatchReport, explain_match
from nightlog.catalogue.engine import create_engine, make_sessionmaker, sqlite_path
from nightlog.catalogue.listing import ProductFilter, frame_rows, master_rows, product_rows
from nightlog.catalogue.masters import MasterFilter, get_master
from nightlog.catalogue.provenance import ProvenanceTree, find_product, provenance_tree
from nightlog.catalogue.queries import FrameFilter
from nightlog.catalogue.records import master_record
from nightlog.catalogue.schema import ensure_schema
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.provenance_check import ProvenanceCheck, verify_provenance
from nightlog.errors import CatalogueError, ConfigurationError
from nightlog.record_table import records_table
from nightlog.settings import CONFIG_FILENAME, Settings, load_settings
from nightlog.states import MasterQuality

__all__ = ["FRAME_COLUMNS", "MASTER_COLUMNS", "PRODUCT_COLUMNS", "Archive", "ArchiveFile"]

#: Columns of :meth:`Archive.frames` (the frame records hold them all).
FRAME_COLUMNS = ("id", "night", "obs_time", "kind", "filter", "exptime", "object",
                 "instrument", "detector", "binning", "readout_mode", "profile", "naxis1",
                 "naxis2", "status", "is_latest", "path_version", "size", "sha256", "path",
                 "setup_key", "ccd")
#: Columns of :meth:`Archive.masters`.
MASTER_COLUMNS = ("id", "kind", "night", "version", "instrument", "filter", "set_temp",
                  "exptime", "n_frames", "level", "noise", "quality", "quality_reason",
                  "superseded_by", "valid_from", "valid_until", "first_obs", "last_obs",
                  "path", "sha256", "group_key")
#: Columns of :meth:`Archive.products`.
PRODUCT_COLUMNS = ("id", "frame_id", "kind", "status", "night", "obs_time", "filter",
                   "exptime", "object", "instrument", "missing_steps", "replaced_by",
                   "created_at", "software_version", "size", "sha256", "path", "ccd")

DateLike = dt.date | str | None
TimeLike = dt.datetime | dt.date | str | None


def _date(value: DateLike, name: str) -> dt.date | None:
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ConfigurationError(f"{name} must be a date (YYYY-MM-DD), not {value!r}") from None


def _time(value: TimeLike, name: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime.combine(value, dt.time())
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise ConfigurationError(f"{name} must be an ISO time, not {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _settings_of(config_or_path: Settings | str | os.PathLike[str] | None) -> Settings:
    if isinstance(config_or_path, Settings):
        return config_or_path
    if config_or_path is None:
        return load_settings()
    path = Path(config_or_path)
    if path.is_dir():
        config = path / CONFIG_FILENAME
        if config.is_file():
            return load_settings(config)
        env = {k: v for k, v in os.environ.items() if k != "NIGHTLOG_CONFIG"}
        return load_settings(env=env, cwd=path.resolve())
    return load_settings(path)


class Archive:
    """A nightlog archive, opened for scripts: its catalogue and its files.

    Parameters
    ----------
    config_or_path : Settings, str or path-like, optional
        A configuration file, a folder (its ``nightlog.toml``, or the defaults with
        the archive in that folder), or settings already loaded. Default: as the
        CLI finds them (``$NIGHTLOG_CONFIG``, ``./nightlog.toml``, defaults).

    Raises
    ------
    ConfigurationError
        The configuration is invalid.
    CatalogueError
        No catalogue is there yet (a SQLite file is never created), or its schema is
        not the one this nightlog needs.

    Notes
    -----
    The archive only reads the catalogue; every call opens and closes its own
    session. Close the archive (or use it in a ``with`` block) to release the
    engine's connections.
    """

    def __init__(self, config_or_path: Settings | str | os.PathLike[str] | None = None
                 ) -> None:
        self.settings: Settings = _settings_of(config_or_path)
        path = sqlite_path(self.settings.database_url)
        if path is not None and not path.exists():
            raise CatalogueError(f"no catalogue at {path}; ingest some files first")
        self._engine: Engine | None = create_engine(
            self.settings.database_url,
            busy_timeout_ms=round(1000 * self.settings.database.busy_timeout_seconds))
        try:
            ensure_schema(self._engine, create_if_empty=False)
        except BaseException:
            self.close()
            raise
        self._jobs: JobContext | None = None

    # -- lifetime --------------------------------------------------------------------

    def close(self) -> None:
        """Release the engine and its connections (calling it again does nothing)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._engine is None else self.settings.safe_database_url
        return f"Archive({str(self.settings.archive_root)!r}, {state})"

    @property
    def root(self) -> Path:
        """The archive's root folder."""
        return self.settings.archive_root

    def _session(self) -> Session:
        if self._engine is None:
            raise CatalogueError("this archive is closed")
        return make_sessionmaker(self._engine)()

    # -- listings --------------------------------------------------------------------

    def frames(self, *, night: DateLike = None, kind: str | None = None,
               filter: str | None = None, instrument: str | None = None,
               exptime_min: float | None = None, exptime_max: float | None = None,
               since: TimeLike = None, until: TimeLike = None, all_versions: bool = False,
               limit: int | None = None) -> Table:
        """Catalogued frames, with the filters of ``nightlog frames``.

        Parameters
        ----------
        night : date or str, optional
            Observing night (the date on which it starts).
        kind : str, optional
            ``bias``, ``dark``, ``flat``, ``science``, ...
        filter, instrument : str, optional
            Exact filter and instrument names.
        exptime_min, exptime_max : float, optional
            Exposure range in seconds (inclusive).
        since, until : datetime or str, optional
            Observed at or after ``since`` and before ``until`` (UTC unless given).
        all_versions : bool
            Include versions of a file since rewritten.
        limit : int, optional
            At most this many rows.

        Returns
        -------
        astropy.table.Table
            One row per frame in observation order, columns :data:`FRAME_COLUMNS`.
        """
        crit = FrameFilter(night=_date(night, "night"), kind=kind, filter=filter,
                           instrument=instrument, exptime_min=exptime_min,
                           exptime_max=exptime_max, since=_time(since, "since"),
                           until=_time(until, "until"), include_old_versions=all_versions,
                           limit=limit)
        with self._session() as session:
            return records_table(frame_rows(session, crit), FRAME_COLUMNS)

    def masters(self, *, kind: str | None = None, night: DateLike = None,
                since: DateLike = None, until: DateLike = None, filter: str | None = None,
                bad: bool = False, all_versions: bool = False) -> Table:
        """Master calibrations, with the filters of ``nightlog calib list``.

        Parameters
        ----------
        kind : str, optional
            ``bias``, ``dark`` or ``flat``.
        night, since, until : date or str, optional
            One night, or the first and last night (inclusive).
        filter : str, optional
            Filter of flats.
        bad : bool
            Only masters marked bad.
        all_versions : bool
            Include superseded versions.

        Returns
        -------
        astropy.table.Table
            One row per master, oldest night first, columns :data:`MASTER_COLUMNS`.
        """
        crit = MasterFilter(kind=kind, night=_date(night, "night"), since=_date(since, "since"),
                            until=_date(until, "until"), filter=filter,
                            quality=MasterQuality.BAD if bad else None,
                            include_superseded=all_versions)
        with self._session() as session:
            return records_table(master_rows(session, crit), MASTER_COLUMNS)

    def products(self, *, night: DateLike = None, kind: str | None = None,
                 frame_id: int | None = None, filter: str | None = None,
                 all_versions: bool = False, limit: int | None = None) -> Table:
        """Reduced products.

        Parameters
        ----------
        night : date or str, optional
            Night of the raw frames.
        kind : str, optional
            ``final`` or ``quicklook``.
        frame_id : int, optional
            Products of this raw frame.
        filter : str, optional
            Filter of the raw frames.
        all_versions : bool
            Include products replaced by newer ones.
        limit : int, optional
            At most this many rows.

        Returns
        -------
        astropy.table.Table
            One row per product in the raw frames' order, columns :data:`PRODUCT_COLUMNS`.
        """
        crit = ProductFilter(night=_date(night, "night"), kind=kind, frame_id=frame_id,
                             filter=filter, include_replaced=all_versions, limit=limit)
        with self._session() as session:
            return records_table(product_rows(session, crit), PRODUCT_COLUMNS)

    # -- single items ----------------------------------------------------------------

    def product(self, product: int | str) -> ArchiveFile:
        """A product by id (or the path of its file); ``.ccd()`` reads it.

        Raises
        ------
        NotFoundError
            No product has this id or path.
        """
        with self._session() as session:
            row = find_product(session, str(product))
            rows = product_rows(session, ProductFilter(frame_id=row.frame_id,
                                                       include_replaced=True))
        record = next(r for r in rows if r["id"] == row.id)
        return ArchiveFile(id=row.id, kind=row.kind, path=Path(row.path), record=record)

    def master(self, master_id: int) -> ArchiveFile:
        """A master calibration by id; ``.ccd()`` reads it.

        Raises
        ------
        NotFoundError
            No master has this id.
        """
        with self._session() as session:
            master = get_master(session, int(master_id))
            record = master_record(master)
        return ArchiveFile(id=master.id, kind=master.kind, path=Path(master.path),
                           record=record)

    def match(self, frame: int | str, *, at: TimeLike = None, live: bool = False
              ) -> MatchReport:
        """The masters chosen for a frame, and every candidate's rules (``nightlog match``).

        Parameters
        ----------
        frame : int or str
            Frame id, or the path of its file.
        at : datetime or str, optional
            Match as if at this time instead of the frame's own.
        live : bool
            Only masters whose inputs all precede the frame.

        Returns
        -------
        MatchReport
            ``matches``: per calibration kind, the chosen master id and the candidates.

        Raises
        ------
        NotFoundError
            No frame has this id or path.
        """
        if self._jobs is None:
            self._jobs = JobContext.from_settings(self.settings)
        with self._session() as session:
            return explain_match(session, self._jobs, str(frame), at=_time(at, "at"),
                                 live=live)

    def provenance(self, product: int | str) -> ProvenanceTree:
        """What a product was made from, down to the raw frames (``nightlog provenance``).

        Raises
        ------
        NotFoundError
            No product has this id or path.
        """
        with self._session() as session:
            return provenance_tree(session, find_product(session, str(product)))

    def verify(self, product: int | str) -> ProvenanceCheck:
        """Every file of a product's provenance hashed again (``provenance --verify``).

        Returns
        -------
        ProvenanceCheck
            ``problems`` lists the files that changed or are missing; nothing is raised
            for them.
        """
        return verify_provenance(self.provenance(product))
