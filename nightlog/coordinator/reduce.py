"""Reducing science frames with the best masters, with full provenance.

For each frame: the calibration manager chooses the masters (or the policy says
what to do without one), the raw file and the masters are read, the pure
reduction core reduces it, the product is written under a temporary name and
renamed, and one transaction records the product, each master used (by role,
with its checksum), the parameters (and their digest), the missing steps and the
software version. The file carries the same: keywords naming each master with its
checksum, the software version and the parameter digest, and a ``PROVENANCE``
table of the raw frame and the masters (:mod:`nightlog.coordinator.provenance`).
A frame already reduced from the same inputs (same raw bytes, masters and
parameters: the *inputs key*) is skipped unless forced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from nightlog.calibration.matching import KindMatch, match_frame
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame, Master, Product, ProductMaster
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.preparation import skip_columns_for
from nightlog.coordinator.provenance import parameters_digest, product_entries, set_master_cards
from nightlog.errors import NightlogError
from nightlog.profiles import InstrumentProfile
from nightlog.reduction.cosmics import CosmicRaySettings
from nightlog.reduction.products import read_product, to_hdulist
from nightlog.reduction.science import OverscanParameters, ScienceParameters, reduce_science
from nightlog.store.images import read_image, write_hdulist

__all__ = ["ReduceOutcome", "inputs_key", "reduce_frame", "run_reduce", "science_parameters"]


@dataclass(slots=True)
class ReduceOutcome:
    """What happened to one frame."""

    frame_id: int
    status: str  # 'reduced', 'up-to-date', 'stopped' (policy) or 'failed'
    reason: str = ""
    product_id: int | None = None
    missing: tuple[str, ...] = ()


def science_parameters(frame: Frame, profile: InstrumentProfile, *,
                       cosmic_threads: int | None = None) -> ScienceParameters:
    """The reduction settings of ``frame`` from its catalogue row and profile."""
    overscan = None
    if profile.subtract_overscan and frame.biassec:
        overscan = OverscanParameters(region=frame.biassec,
                                      skip_columns=skip_columns_for(frame, profile))
    return ScienceParameters(
        gain=frame.gain or 1.0,
        read_noise=frame.read_noise or 0.0,
        saturation=frame.saturation,
        exptime=frame.exptime,
        overscan=overscan,
        # The same region the masters were trimmed to; the whole frame when the
        # catalogue knows none (the core would otherwise read the raw header).
        trim=frame.trimsec or frame.datasec or f"[1:{frame.naxis1},1:{frame.naxis2}]",
        darks_scale=profile.darks_scale,
        cosmic_rays=CosmicRaySettings(threads=cosmic_threads),
    )


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str | int | bool) or value is None:
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return str(value)


def _described(params: ScienceParameters) -> Any:
    """The parameters as JSON, threads excluded: they change speed, not pixels."""
    return _jsonable(dataclasses.replace(
        params, cosmic_rays=dataclasses.replace(params.cosmic_rays, threads=None)))


def inputs_key(frame: Frame, masters: dict[str, Master | None], params: ScienceParameters,
               software_version: str) -> str:
    """Digest of everything a product depends on (threads excluded: they change speed,
    not pixels)."""
    described = _described(params)
    payload = {
        "raw": frame.sha256,
        "masters": {k: (None if m is None else m.sha256) for k, m in sorted(masters.items())},
        "parameters": described,
        "software": software_version,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def current_product(session: Session, frame: Frame, kind: str | None = None) -> Product | None:
    """The frame's current product (of ``kind``, if given)."""
    stmt = select(Product).where(Product.frame_id == frame.id, Product.status == "current")
    if kind is not None:
        stmt = stmt.where(Product.kind == kind)
    return session.scalars(stmt.order_by(Product.id.desc()).limit(1)).one_or_none()


def reduce_frame(session: Session, frame: Frame, ctx: JobContext, *, kind: str = "final",
                 live: bool = False, force: bool = False, redo_superseded: bool = True,
                 cosmic_threads: int | None = None, written: list[Path]) -> ReduceOutcome:
    """Reduce ``frame`` in the caller's session (no commit).

    The product file is written before the rows are added and its path appended to
    ``written`` so the caller can delete it if the transaction fails.
    """
    profile = ctx.profile_of(frame)
    matches: dict[str, KindMatch] = match_frame(session, frame, profile, ctx.policy, live=live)
    chosen: dict[str, Master | None] = {}
    missing: list[str] = []
    for role, match in matches.items():
        chosen[role] = match.chosen
        if match.chosen is None:
            if ctx.policy.on_missing.get(role, "skip") == "stop":
                return ReduceOutcome(frame.id, "stopped", reason=f"{role}: {match.reason}")
            missing.append(role)
    params = science_parameters(frame, profile, cosmic_threads=cosmic_threads)
    key = inputs_key(frame, chosen, params, ctx.software_version)
    existing = current_product(session, frame)
    if (existing is not None and not force and existing.kind == "final"
            and (existing.inputs_key == key or not redo_superseded)):
        return ReduceOutcome(frame.id, "up-to-date", product_id=existing.id)

    raw = read_image(frame.path, frame.hdu)
    loaded = {role: (None if m is None else read_product(m.path)) for role, m in chosen.items()}
    reduced = reduce_science(raw, bias=loaded.get("bias"), dark=loaded.get("dark"),
                             flat=loaded.get("flat"), params=params)
    ccd = reduced.ccd
    header = ccd.header
    header["NLKIND"] = (kind, "nightlog product: final or quicklook")
    header["NLSOFT"] = (ctx.software_version, "nightlog version")
    header["NLRAWSHA"] = (frame.sha256, "SHA-256 of the raw file")
    header["NLINKEY"] = (key, "digest of raw, masters and parameters")
    digest = parameters_digest(_described(params))
    header["NLPARSHA"] = (digest, "SHA-256 of the reduction parameters")
    set_master_cards(header, chosen)
    if missing:
        header["NLMISS"] = (",".join(missing), "calibration steps skipped: no master")
    path = ctx.layout.product_path(instrument=frame.instrument, night=frame.night,
                                   raw_name=os.path.basename(frame.path), product_kind=kind,
                                   product_key=key)
    if path.exists():  # same inputs already written (a product row was lost): keep a copy
        path = path.with_name(f"{path.stem}_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}.fits")
    out = write_hdulist(path, to_hdulist(ccd, mask_bits=reduced.bits,
                                         provenance=product_entries(frame, chosen)))
    written.append(out.path)

    steps = [{"name": s.name, "applied": s.applied, "parameters": _jsonable(dict(s.parameters)),
              "summary": _jsonable(dict(s.summary)), "seconds": round(s.seconds, 4)}
             for s in reduced.steps]
    product = Product(
        frame_id=frame.id, kind=kind, status="current", path=str(out.path), sha256=out.sha256,
        size=out.size, raw_sha256=frame.sha256, inputs_key=key,
        parameters={"science": _jsonable(params), "digest": digest, "live": live,
                    "steps": steps},
        missing_steps=missing, stats={"steps": {s["name"]: s["summary"] for s in steps}},
        created_at=dt.datetime.now(dt.UTC), software_version=ctx.software_version,
    )
    session.add(product)
    session.flush()
    for role, m in chosen.items():
        if m is not None:
            session.add(ProductMaster(product_id=product.id, master_id=m.id, role=role,
                                      sha256=m.sha256))
    for old in session.scalars(select(Product).where(Product.frame_id == frame.id,
                                                     Product.status == "current",
                                                     Product.id != product.id)):
        old.status = "replaced"
        old.replaced_by_id = product.id
    session.flush()
    return ReduceOutcome(frame.id, "reduced", product_id=product.id, missing=tuple(missing))


def run_reduce(engine: Engine, ctx: JobContext, frame_ids: Sequence[int], *,
               kind: str = "final", live: bool = False, force: bool = False,
               redo_superseded: bool = False, cosmic_threads: int | None = None,
               progress: Any = None) -> list[ReduceOutcome]:
    """Reduce frames one transaction each; a failure is reported and the rest go on."""
    make_session = make_sessionmaker(engine)
    outcomes: list[ReduceOutcome] = []
    for frame_id in frame_ids:
        written: list[Path] = []
        try:
            with make_session() as session, session.begin():
                frame = session.get(Frame, frame_id)
                if frame is None:
                    outcome = ReduceOutcome(frame_id, "failed", reason="no such frame")
                else:
                    outcome = reduce_frame(session, frame, ctx, kind=kind, live=live,
                                           force=force, redo_superseded=redo_superseded,
                                           cosmic_threads=cosmic_threads, written=written)
        except (NightlogError, SQLAlchemyError, OSError) as exc:
            for path in written:
                path.unlink(missing_ok=True)
            outcome = ReduceOutcome(frame_id, "failed",
                                    reason=f"{type(exc).__name__}: "
                                           f"{str(exc).splitlines()[0][:300] if str(exc) else ''}")
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return outcomes


def science_frames(session: Session, *, night: dt.date | None = None) -> list[int]:
    """Ids of the latest science frames (of ``night``), in time order."""
    stmt = select(Frame.id).where(Frame.kind == "science", Frame.is_latest.is_(True),
                                  Frame.status == "ok")
    if night is not None:
        stmt = stmt.where(Frame.night == night)
    return list(session.scalars(stmt.order_by(Frame.obs_time, Frame.id)))
