"""The catalogue of an archive of ten years, built in bulk for the scale benchmark.

:func:`build_catalogue` fills a migrated, empty catalogue with frames spread over
ten years of nights, each night's masters (bias, dark, two flats), a product of
every science frame linked to its three masters, the masters' input rows, the
night tally and the calibration frames waiting for a master (both counted from the
frames by the catalogue). Rows are bulk-inserted through the catalogue's own model
tables: one frame of each kind is added with
:func:`nightlog.catalogue.frames.add_frame`, and its normalised columns are the
template of every copy. :func:`save_catalogue` and :func:`load_catalogue` keep what
was built beside it, so that a catalogue of a million frames is built once and
its queries timed again and again. Used by ``archive_scale.py``, ``serve_poll.py``
and ``tests/test_query_plans.py``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, inspect, select
from sqlalchemy.orm import Session

from nightlog.calibration.grouping import group_of
from nightlog.catalogue import frames as cf
from nightlog.catalogue.awaiting import rebuild_awaiting
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame, Master, MasterInput, Product, ProductMaster
from nightlog.catalogue.night_tally import rebuild_tallies
from nightlog.header.model import NormalizedHeader
from nightlog.header.profiles import ProfileRegistry

FIRST_NIGHT = dt.date(2016, 1, 1)
NIGHTS = 3650
#: The share of each night's frames per kind (and filter of the flats and science).
MIX: tuple[tuple[str, str | None, float], ...] = (
    ("bias", None, 0.15), ("dark", None, 0.15), ("flat", "g'", 0.10), ("flat", "i'", 0.10),
    ("science", "g'", 0.25), ("science", "i'", 0.25),
)
_RAW_TYPE = {"bias": "BIAS", "dark": "DARK", "flat": "FLAT", "science": "OBJECT"}
_EXPTIME = {"bias": 0.0, "dark": 300.0, "flat": 7.0, "science": 300.0}
_BATCH = 5000


@dataclass(frozen=True, slots=True)
class Catalogue:
    """What :func:`build_catalogue` made: counts and handles for the queries."""

    frames: int
    masters: int
    products: int
    links: int
    last_night: dt.date
    science_frame_id: int
    product_path: str


def obs_time(night: dt.date, i: int, per_night: int) -> dt.datetime:
    start = dt.datetime.combine(night, dt.time(23), tzinfo=dt.UTC)
    return start + dt.timedelta(seconds=round(8 * 3600 * i / max(per_night, 1)))


def stored_header(cards: int) -> list[list[Any]]:
    return [[f"KEY{i:04d}", f"value {i} of a header of the camera", f"comment {i}"]
            for i in range(cards)]


def _templates(session: Session, header_cards: int) -> dict[tuple[str, str | None], dict]:
    """One frame of each kind added by the catalogue; its columns, keyed by kind, filter."""
    out: dict[tuple[str, str | None], dict] = {}
    for n, (kind, filt, _share) in enumerate(MIX):
        when = obs_time(FIRST_NIGHT - dt.timedelta(days=1), n, len(MIX))
        norm = NormalizedHeader(profile="lfc", kind=kind, raw_type=_RAW_TYPE[kind],
                                exptime=_EXPTIME[kind], filter=filt, obs_time=when,
                                night=when.date() - dt.timedelta(days=0), shape=(4128, 2080),
                                instrument="LFC", detector="SITe SI002 x 6")
        facts = cf.FileFacts(path=f"/raw/template-{n}.fits", sha256=f"t{n:063d}", size=1,
                             mtime=when, hdu=0, header_json=stored_header(header_cards))
        frame = cf.add_frame(session, facts, norm, software_version="bench")
        session.flush()
        row = {c.key: getattr(frame, c.key) for c in inspect(Frame).column_attrs}
        row.pop("id")
        out[(kind, filt)] = row
    return out


def _insert(session: Session, model: type, rows: list[dict]) -> None:
    for i in range(0, len(rows), _BATCH):
        session.execute(insert(model), rows[i:i + _BATCH])


def build_catalogue(engine: Engine, n_frames: int, *, nights: int = NIGHTS,
                    header_cards: int = 60) -> Catalogue:
    """Fill the migrated, empty catalogue of ``engine`` with ``n_frames`` frames of
    ``nights`` nights, their masters, products and links (one transaction a night
    batch); return what was made."""
    per_night = max(len(MIX) * 2, n_frames // nights)
    profile = ProfileRegistry.from_settings().get("lfc")
    maker = make_sessionmaker(engine)
    counts = {"frames": 0, "masters": 0, "products": 0, "links": 0}
    with maker() as s, s.begin():
        templates = _templates(s, header_cards)
        like = s.scalars(select(Frame).where(Frame.kind == "science")).first()
        assert like is not None
        specs = {kind: group_of(like, kind, profile) for kind in ("bias", "dark", "flat")}
        frame_id = s.scalar(select(func.max(Frame.id))) or 0
    master_id = product_id = 0
    science_id, product_path = 0, ""
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for start in range(0, nights, 50):
        frames: list[dict] = []
        masters: list[dict] = []
        inputs: list[dict] = []
        products: list[dict] = []
        links: list[dict] = []
        for night_no in range(start, min(start + 50, nights)):
            night = FIRST_NIGHT + dt.timedelta(days=night_no)
            night_masters: dict[tuple[str, str | None], int] = {}
            members: dict[tuple[str, str | None], list[int]] = {}
            i = 0
            for kind, filt, share in MIX:
                for _ in range(max(1, round(share * per_night))):
                    frame_id += 1
                    when = obs_time(night, i, per_night)
                    i += 1
                    frames.append(templates[(kind, filt)] | dict(
                        id=frame_id, path=f"/raw/{night}/f{frame_id}.fits",
                        sha256=f"{frame_id:064x}", mtime=when, obs_time=when, night=night,
                        ingested_at=when + dt.timedelta(minutes=1)))
                    members.setdefault((kind, filt), []).append(frame_id)
            for (kind, filt), ids in members.items():
                if kind == "science":
                    continue
                master_id += 1
                spec = specs[kind]
                mid = obs_time(night, 0, per_night)
                masters.append(dict(
                    id=master_id, kind=kind, profile="lfc", instrument="LFC",
                    setup_key=like.setup_key, group_key=f"{spec.key}|{filt}",
                    group=spec.as_dict() | ({"filter": filt} if filt else {}), filter=filt,
                    set_temp=None, exptime=None, is_rate=kind == "dark", night=night,
                    version=1, path=f"/archive/{night}/m{master_id}.fits",
                    sha256=f"{master_id:064x}", size=1, first_obs=mid,
                    last_obs=mid + dt.timedelta(hours=1), mid_time=mid, n_frames=len(ids),
                    stats={"median": 1000.0}, parameters={}, quality="good",
                    created_at=now, software_version="bench"))
                night_masters[(kind, filt)] = master_id
                inputs += [dict(master_id=master_id, frame_id=f, used=True, reason=None,
                                sha256=f"{f:064x}") for f in ids]
            for (kind, filt), ids in members.items():
                if kind != "science":
                    continue
                for f in ids:
                    product_id += 1
                    product_path = f"/archive/{night}/p{product_id}.fits"
                    science_id = f
                    products.append(dict(
                        id=product_id, frame_id=f, kind="final", status="current",
                        replaced_by_id=None, path=product_path, sha256=f"{product_id:064x}",
                        size=1, raw_sha256=f"{f:064x}", inputs_key=f"{product_id:064x}",
                        parameters={}, missing_steps=[], stats={"median": 10.0},
                        created_at=now, software_version="bench"))
                    for role, key in (("bias", ("bias", None)), ("dark", ("dark", None)),
                                      ("flat", ("flat", filt))):
                        links.append(dict(product_id=product_id, master_id=night_masters[key],
                                          role=role, sha256=f"{night_masters[key]:064x}"))
        with maker() as s, s.begin():
            _insert(s, Frame, frames)
            _insert(s, Master, masters)
            _insert(s, MasterInput, inputs)
            _insert(s, Product, products)
            _insert(s, ProductMaster, links)
        counts["frames"] += len(frames)
        counts["masters"] += len(masters)
        counts["products"] += len(products)
        counts["links"] += len(links)
    with maker() as s, s.begin():
        # Rows inserted in bulk bypass the frames' and masters' bookkeeping: count
        # the night tally and the frames waiting for a master from them, as
        # migrations 0014 and 0016 do for an existing catalogue.
        rebuild_tallies(s)
        rebuild_awaiting(s)
    if engine.dialect.name == "postgresql":
        # The rows came with their ids: move each table's id sequence past them.
        with engine.begin() as conn:
            for model in (Frame, Master, Product):
                table = model.__table__.name
                conn.execute(select(func.setval(func.pg_get_serial_sequence(table, "id"),
                                                select(func.max(model.id)).scalar_subquery())))
    return Catalogue(frames=counts["frames"], masters=counts["masters"],
                     products=counts["products"], links=counts["links"],
                     last_night=FIRST_NIGHT + dt.timedelta(days=nights - 1),
                     science_frame_id=science_id, product_path=product_path)


def save_catalogue(cat: Catalogue, path: Path, **extra: Any) -> None:
    """Write what was built (and ``extra``, e.g. where it lives) to the JSON ``path``."""
    doc = dataclasses.asdict(cat) | {"last_night": cat.last_night.isoformat()} | extra
    path.write_text(json.dumps(doc, indent=1))


def load_catalogue(path: Path) -> tuple[Catalogue, dict[str, Any]]:
    """What :func:`save_catalogue` wrote: the catalogue and the extra fields."""
    doc = json.loads(path.read_text())
    names = {f.name for f in dataclasses.fields(Catalogue)}
    fields = {k: v for k, v in doc.items() if k in names}
    fields["last_night"] = dt.date.fromisoformat(fields["last_night"])
    return Catalogue(**fields), {k: v for k, v in doc.items() if k not in names}
