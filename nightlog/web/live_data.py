"""The live view's data: what each page and JSON endpoint shows, as plain values.

Each function takes the caller's (read-only) session and returns JSON-ready
dictionaries (numbers, strings, ISO times, ``None``) built from the catalogue's
own queries; the pages (:mod:`nightlog.web.pages`) render exactly these, and the
JSON endpoints return them as they are. Nothing here writes or opens a file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nightlog.calibration.trends import TREND_METRICS
from nightlog.catalogue.daemons import is_alive, recent_daemons
from nightlog.catalogue.holds import holds_of_night
from nightlog.catalogue.listing import ProductFilter, product_rows
from nightlog.catalogue.live import change_mark, get_frame, night_frames
from nightlog.catalogue.masters import MasterFilter, find_masters, get_master
from nightlog.catalogue.night_summary import ProductFacts, night_failures
from nightlog.catalogue.problems import reduced_without
from nightlog.catalogue.provenance import find_product, provenance_tree
from nightlog.catalogue.quarantine import list_quarantined
from nightlog.catalogue.queries import latest_night, night_counts
from nightlog.catalogue.records import frame_record
from nightlog.catalogue.reductions import failures_of_night
from nightlog.coordinator.night_report import reduction_problems
from nightlog.errors import NotFoundError
from nightlog.states import FrameStatus, ProductKind
from nightlog.web.quality import QUALITY_COLUMNS, frame_quality

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from nightlog.catalogue.models import Frame, Master

__all__ = ["ImageSource", "daemons_view", "frame_view", "image_source", "night_view",
           "nights_view", "pulse_view"]


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _summary(value: object) -> str:
    """A step's recorded summary as one line: ``key: value, ...`` for a mapping."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {json.dumps(v, default=str)}" for k, v in value.items())
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _master_use(role: str, m: Master) -> dict[str, Any]:
    return {"role": role, "id": m.id, "night": m.night.isoformat(), "version": m.version,
            "quality": m.quality}


def _product(pf: ProductFacts | None) -> dict[str, Any] | None:
    if pf is None:
        return None
    p = pf.product
    return {"id": p.id, "kind": p.kind, "status": p.status,
            "missing_steps": [str(s) for s in p.missing_steps or ()],
            "created_at": _iso(p.created_at), "thumbnail": f"/thumb/product/{p.id}.png",
            "masters": [_master_use(role, m) for role, m in pf.masters]}


def _reduction(frame: Frame, products: dict[str, ProductFacts], failed: set[int]) -> str:
    """What became of a frame, in a few words."""
    if frame.status != FrameStatus.OK:
        return f"flagged {frame.status}: {frame.status_reason or 'no reason given'}"
    final = products.get(ProductKind.FINAL)
    quick = products.get(ProductKind.QUICKLOOK)
    if final is not None:
        return "reduced" if final.product.status == "current" else "reduced (replaced)"
    if quick is not None:
        return "quick-look"
    if frame.id in failed:
        return "reduction failed"
    return "not reduced" if frame.kind == "science" else "catalogued"


def _frame_row(frame: Frame, products: dict[str, ProductFacts], failed: set[int],
               quality: dict[int, dict[str, Any]]) -> dict[str, Any]:
    newest = products.get(ProductKind.FINAL) or products.get(ProductKind.QUICKLOOK)
    return {
        "id": frame.id, "obs_time": _iso(frame.obs_time), "kind": frame.kind,
        "filter": frame.filter, "exptime": frame.exptime, "object": frame.object_name,
        "instrument": frame.instrument, "file": os.path.basename(frame.path),
        "status": frame.status, "reduction": _reduction(frame, products, failed),
        "quality": quality.get(frame.id), "masters": [] if newest is None else
        [_master_use(role, m) for role, m in newest.masters],
        "thumbnail": f"/thumb/frame/{frame.id}.png", "page": f"/frame/{frame.id}",
    }


def _master_row(m: Master) -> dict[str, Any]:
    figures = [{"label": metric.label, "value": value, "unit": metric.unit}
               for metric in TREND_METRICS.get(m.kind, ())
               if (value := metric.value(m)) is not None]
    return {"id": m.id, "kind": m.kind, "night": m.night.isoformat(), "version": m.version,
            "filter": m.filter, "instrument": m.instrument, "n_frames": m.n_frames,
            "quality": m.quality, "quality_reason": m.quality_reason,
            "superseded_by": m.superseded_by_id, "figures": figures,
            "file": os.path.basename(m.path), "thumbnail": f"/thumb/master/{m.id}.png"}


def daemons_view(session: Session, now: dt.datetime) -> list[dict[str, Any]]:
    """The watch daemons' latest runs: alive or not, heartbeat, backlog, last action."""
    rows = []
    for d in recent_daemons(session, limit=5):
        alive = is_alive(d, now)
        state = "running" if alive else ("stopped" if d.stopped_at is not None
                                         else "dead (no heartbeat)")
        rows.append({"id": d.id, "host": d.host, "pid": d.pid, "state": state,
                     "running": alive, "started_at": _iso(d.started_at),
                     "heartbeat_at": _iso(d.heartbeat_at), "backlog": d.backlog,
                     "last_action": d.last_action, "last_action_at": _iso(d.last_action_at),
                     "directories": [str(x) for x in d.directories or ()]})
    return rows


def pulse_view(session: Session, night: dt.date | None, now: dt.datetime) -> dict[str, Any]:
    """The cheap answer a page polls for: the change mark of the page of ``night``
    (``None``: tonight's), the server's time, the newest night."""
    return {"mark": change_mark(session, night, now=now), "now": now.isoformat(),
            "latest_night": _iso(latest_night(session))}


def night_view(session: Session, night: dt.date | None, now: dt.datetime) -> dict[str, Any]:
    """Everything the page of ``night`` shows (``None``: the newest night, which is
    tonight while the daemon runs).

    Keys: ``night`` (``None`` when the catalogue holds no frame), ``mark``, ``now``,
    ``quality_columns``, ``frames`` (newest first), ``masters``, ``problems``
    (reduction failures and frames without product), ``quarantine``, ``daemons``.
    """
    mark = change_mark(session, night, now=now)
    the_night = night or latest_night(session)
    doc: dict[str, Any] = {
        "night": _iso(the_night), "mark": mark, "now": now.isoformat(),
        "quality_columns": [{"key": c.key, "heading": c.heading, "unit": c.unit}
                            for c in QUALITY_COLUMNS],
        "frames": [], "masters": [], "problems": [],
        "daemons": daemons_view(session, now),
        "quarantine": [{"path": q.path, "file": os.path.basename(q.path), "error": q.error,
                        "reason": q.reason, "last_seen": _iso(q.last_seen),
                        "times_seen": q.times_seen} for q in list_quarantined(session)],
    }
    if the_night is None:
        return doc
    failures = failures_of_night(session, the_night)
    failed = {f.frame_id for f in failures}
    rows = night_frames(session, the_night)
    figures = frame_quality(session, [r.frame.id for r in rows])
    doc["frames"] = [_frame_row(r.frame, r.products, failed, figures) for r in rows]
    doc["masters"] = [_master_row(m) for m in find_masters(session,
                                                           MasterFilter(night=the_night))]
    doc["problems"] = [{"what": p.what, "file": os.path.basename(p.path), "path": p.path,
                        "reason": p.reason, "when": _iso(p.when)}
                       for p in reduction_problems(failures, night_failures(session, the_night),
                                                  holds_of_night(session, the_night),
                                                  reduced_without(session, the_night))]
    return doc


def nights_view(session: Session) -> list[dict[str, Any]]:
    """Every night with frames, newest first: frames per kind and the total."""
    per_night: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in night_counts(session):
        per_night[c.night][c.kind] += c.count
    return [{"night": n.isoformat(), "frames": sum(kinds.values()),
             "kinds": dict(sorted(kinds.items())), "page": f"/night/{n.isoformat()}"}
            for n, kinds in sorted(per_night.items(), reverse=True)]


def frame_view(session: Session, frame_id: int) -> dict[str, Any] | None:
    """A frame's page: its catalogued values, its products and each product's
    provenance (raw frame, masters by role, each master's inputs); ``None`` when no
    frame has this id."""
    frame = get_frame(session, frame_id)
    if frame is None:
        return None
    record = frame_record(frame)
    record.update(gain=frame.gain, read_noise=frame.read_noise, ccd_temp=frame.ccd_temp,
                  set_temp=frame.set_temp, status_reason=frame.status_reason,
                  ingested_at=_iso(frame.ingested_at), hdu=frame.hdu)
    trees = []
    for row in product_rows(session, ProductFilter(frame_id=frame.id, include_replaced=True)):
        product = find_product(session, str(row["id"]))
        tree = provenance_tree(session, product).as_dict()
        tree["thumbnail"] = f"/thumb/product/{row['id']}.png"
        steps = (product.stats or {}).get("steps") or {}
        tree["steps"] = [{"name": str(k), "summary": _summary(v)} for k, v in steps.items()]
        trees.append(tree)
    measured = frame_quality(session, [frame.id]).get(frame.id)
    return {"frame": record, "quality": measured,
            "quality_columns": [{"key": c.key, "heading": c.heading, "unit": c.unit}
                                for c in QUALITY_COLUMNS],
            "thumbnail": f"/thumb/frame/{frame.id}.png", "night_page":
            f"/night/{frame.night.isoformat()}", "products": trees}


@dataclass(frozen=True, slots=True)
class ImageSource:
    """Where the image of a frame, product or master is, and the checksum recorded."""

    path: str
    hdu: int
    sha256: str


def image_source(session: Session, what: str, ident: int) -> ImageSource | None:
    """The image of frame, product or master ``ident`` (``what`` names which);
    ``None`` when there is no such record."""
    if what == "frame":
        frame = get_frame(session, ident)
        return None if frame is None else ImageSource(frame.path, frame.hdu, frame.sha256)
    try:
        if what == "product":
            product = find_product(session, str(ident))
            return ImageSource(product.path, 0, product.sha256)
        if what == "master":
            master = get_master(session, ident)
            return ImageSource(master.path, 0, master.sha256)
    except NotFoundError:
        return None
    return None
