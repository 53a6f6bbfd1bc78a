"""Master calibrations in the catalogue: versions, quality, certification, users.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, or_, select, tuple_
from sqlalchemy.orm import Session

from nightlog.catalogue.awaiting import mastered
from nightlog.catalogue.models import Frame, Master, MasterInput, Product, ProductMaster
from nightlog.errors import CatalogueError, NotFoundError
from nightlog.states import MasterQuality, ProductStatus

__all__ = [
    "MasterFilter",
    "MasterInputRecord",
    "NewMaster",
    "add_master",
    "certify_master",
    "find_masters",
    "get_master",
    "inputs_of",
    "is_external",
    "latest_built_version",
    "latest_version",
    "master_at_path",
    "master_select",
    "products_using",
    "set_quality",
]


@dataclass(frozen=True, slots=True)
class MasterFilter:
    """Criteria of ``nightlog calib list``; ``None`` means any."""

    kind: str | None = None
    night: dt.date | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    quality: str | None = None
    filter: str | None = None
    include_superseded: bool = False
    #: The newest first (the order of ``calib list``), not the oldest night first.
    newest_first: bool = False
    #: A page after this master (its id: the last of the previous page, in this order).
    after_id: int | None = None
    #: At most this many masters.
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class MasterInputRecord:
    """A frame considered for a master: used, or rejected with the reason."""

    frame_id: int
    sha256: str
    used: bool = True
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class NewMaster:
    """A master file made by a build, with what the catalogue keeps of it.

    ``group`` holds the grouping fields (``window`` among them for a master of
    subarray frames, which is then also its ``window``); ``exptime`` is set for a dark kept at a
    fixed exposure; ``stats`` and ``parameters`` are JSON; ``multi_night`` and
    ``provisional`` are the flags of a master made under the profile's policy for
    short groups (:mod:`nightlog.coordinator.short_groups`).
    """

    kind: str
    profile: str
    instrument: str | None
    setup_key: str
    group_key: str
    night: dt.date
    version: int
    path: str
    sha256: str
    size: int
    first_obs: dt.datetime
    last_obs: dt.datetime
    n_frames: int
    stats: dict[str, Any]
    parameters: dict[str, Any]
    software_version: str
    group: Mapping[str, Any] = field(default_factory=dict)
    filter: str | None = None
    set_temp: float | None = None
    exptime: float | None = None
    is_rate: bool = False
    multi_night: bool = False
    provisional: bool = False


def add_master(session: Session, new: NewMaster, inputs: Sequence[MasterInputRecord], *,
               supersedes: int | None = None, now: dt.datetime | None = None) -> Master:
    """Add ``new``, a row per frame considered and, when ``supersedes`` names the
    group's previous version, point that one at the new master (no commit). The
    frames considered, used or rejected, wait for a master no longer.

    Raises
    ------
    sqlalchemy.exc.IntegrityError
        On flush, when the group already has this version for the night (built
        concurrently by another process).
    """
    master = Master(
        kind=new.kind, profile=new.profile, instrument=new.instrument,
        setup_key=new.setup_key, group_key=new.group_key, group=dict(new.group),
        window=new.group.get("window"),
        filter=new.filter, set_temp=new.set_temp, exptime=new.exptime, is_rate=new.is_rate,
        multi_night=new.multi_night, provisional=new.provisional,
        night=new.night, version=new.version, path=new.path, sha256=new.sha256,
        size=new.size, first_obs=new.first_obs, last_obs=new.last_obs,
        mid_time=new.first_obs + (new.last_obs - new.first_obs) / 2, n_frames=new.n_frames,
        stats=new.stats, parameters=new.parameters, quality=MasterQuality.GOOD,
        created_at=now or dt.datetime.now(dt.UTC), software_version=new.software_version,
    )
    session.add(master)
    session.flush()
    for record in inputs:
        session.add(MasterInput(master_id=master.id, frame_id=record.frame_id,
                                used=record.used, reason=record.reason, sha256=record.sha256))
    mastered(session, [record.frame_id for record in inputs])
    if supersedes is not None:
        previous = session.get(Master, supersedes)
        if previous is not None:
            previous.superseded_by_id = master.id
    session.flush()
    return master


def master_at_path(session: Session, path: str) -> Master | None:
    """The master whose file is ``path``, if the catalogue names one."""
    return session.scalars(select(Master).where(Master.path == path).limit(1)).one_or_none()


def get_master(session: Session, master_id: int) -> Master:
    """The master with this id.

    Raises
    ------
    NotFoundError
        No such master.
    """
    master = session.get(Master, master_id)
    if master is None:
        raise NotFoundError(f"no master with id {master_id}")
    return master


def master_select(crit: MasterFilter, *columns: Any) -> Select[Any]:
    """The statement of the masters matching ``crit`` (``columns``, or whole masters),
    by night, kind and id (the oldest first, or the newest), a page after
    ``crit.after_id``."""
    stmt = select(*columns) if columns else select(Master)
    if not crit.include_superseded:
        stmt = stmt.where(Master.superseded_by_id.is_(None))
    if crit.kind is not None:
        stmt = stmt.where(Master.kind == crit.kind)
    if crit.night is not None:
        stmt = stmt.where(Master.night == crit.night)
    if crit.since is not None:
        stmt = stmt.where(Master.night >= crit.since)
    if crit.until is not None:
        stmt = stmt.where(Master.night <= crit.until)
    if crit.quality is not None:
        stmt = stmt.where(Master.quality == crit.quality)
    if crit.filter is not None:
        stmt = stmt.where(Master.filter == crit.filter)
    if crit.after_id is not None:
        # Keyset paging: the night bounds the index range, kind and id break ties.
        at = select(Master.night).where(Master.id == crit.after_id).scalar_subquery()
        at_kind = select(Master.kind).where(Master.id == crit.after_id).scalar_subquery()
        tie = tuple_(Master.kind, Master.id)
        if crit.newest_first:
            stmt = stmt.where(Master.night <= at,
                              or_(Master.night < at, tie < tuple_(at_kind, crit.after_id)))
        else:
            stmt = stmt.where(Master.night >= at,
                              or_(Master.night > at, tie > tuple_(at_kind, crit.after_id)))
    if crit.newest_first:
        stmt = stmt.order_by(Master.night.desc(), Master.kind.desc(), Master.id.desc())
    else:
        stmt = stmt.order_by(Master.night, Master.kind, Master.id)
    if crit.limit is not None:
        stmt = stmt.limit(crit.limit)
    return stmt


def find_masters(session: Session, crit: MasterFilter) -> list[Master]:
    """Masters matching ``crit``, oldest first (or the newest, ``crit.newest_first``)."""
    return list(session.scalars(master_select(crit)))


def latest_version(session: Session, group_key: str, night: dt.date) -> Master | None:
    """Newest master of a group built for ``night``."""
    return session.scalars(
        select(Master).where(Master.group_key == group_key, Master.night == night)
        .order_by(Master.version.desc()).limit(1)
    ).one_or_none()


def is_external(master: Master) -> bool:
    """Whether ``master`` was made elsewhere and registered (``nightlog calib add``)."""
    return bool((master.parameters or {}).get("external"))


def latest_built_version(session: Session, group_key: str, night: dt.date) -> Master | None:
    """Newest master of a group built by nightlog for ``night`` (external ones skipped)."""
    versions = session.scalars(
        select(Master).where(Master.group_key == group_key, Master.night == night)
        .order_by(Master.version.desc()))
    return next((m for m in versions if not is_external(m)), None)


def inputs_of(session: Session, master: Master) -> list[tuple[MasterInput, Frame]]:
    """Every frame considered for ``master`` (used or rejected), in time order."""
    rows = session.execute(
        select(MasterInput, Frame).join(Frame, Frame.id == MasterInput.frame_id)
        .where(MasterInput.master_id == master.id).order_by(Frame.obs_time)
    )
    return [(mi, f) for mi, f in rows]


def products_using(session: Session, master: Master, *, current_only: bool = True
                   ) -> list[Product]:
    """Products reduced with ``master``."""
    stmt = (select(Product).join(ProductMaster, ProductMaster.product_id == Product.id)
            .where(ProductMaster.master_id == master.id))
    if current_only:
        stmt = stmt.where(Product.status == ProductStatus.CURRENT)
    return list(session.scalars(stmt.order_by(Product.id)))


def set_quality(session: Session, master: Master, quality: str, reason: str | None) -> None:
    """Mark ``master`` good or bad (a bad master is never matched)."""
    if quality not in tuple(MasterQuality):
        raise CatalogueError(f"quality must be 'good' or 'bad', not {quality!r}")
    if quality == MasterQuality.BAD and not (reason or "").strip():
        raise CatalogueError("marking a master bad needs a reason")
    master.quality = MasterQuality(quality)
    master.quality_reason = reason if quality == MasterQuality.BAD else (reason or None)


def certify_master(session: Session, master: Master, valid_from: dt.datetime,
                   valid_until: dt.datetime, *, now: dt.datetime | None = None) -> None:
    """Certify ``master`` as valid over ``[valid_from, valid_until)``.

    Raises
    ------
    CatalogueError
        The range is empty, or overlaps the certified range of another master of
        the same group (the message names it).
    """
    if valid_until <= valid_from:
        raise CatalogueError(f"certified range is empty: {valid_from} to {valid_until}")
    clash = session.scalars(
        select(Master).where(
            Master.group_key == master.group_key,
            Master.id != master.id,
            Master.valid_from.is_not(None),
            Master.valid_until.is_not(None),
            Master.valid_from < valid_until,
            Master.valid_until > valid_from,
        ).limit(1)
    ).one_or_none()
    if clash is not None:
        raise CatalogueError(
            f"master {clash.id} of the same group is already certified from "
            f"{clash.valid_from} to {clash.valid_until}, which overlaps; "
            "change or remove that certification first"
        )
    master.valid_from = valid_from
    master.valid_until = valid_until
    master.certified_at = now or dt.datetime.now(dt.UTC)
