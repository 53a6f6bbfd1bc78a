"""The provenance tree of a product, as the catalogue records it.

From a product down to the raw frames: the product's own file, the raw frame it
was reduced from, each master used (by role) and, through each master, every frame
considered for it (used or rejected, with the reason). Each node carries the path
and the SHA-256 recorded when it was used, so the whole tree can be checked
against the files (:func:`ProvenanceTree.files` lists them; the file store hashes
them). Nothing here opens a file.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.catalogue.masters import inputs_of
from nightlog.catalogue.models import Frame, Master, Product, ProductMaster
from nightlog.errors import NotFoundError

__all__ = [
    "InputNode",
    "MasterNode",
    "ProvenanceTree",
    "RawNode",
    "TrackedFile",
    "find_product",
    "provenance_tree",
]

_ROLE_ORDER = {"bias": 0, "dark": 1, "flat": 2}


@dataclass(frozen=True, slots=True)
class TrackedFile:
    """A file of the tree and the checksum the catalogue holds for it."""

    what: str  # e.g. 'product 7', 'raw frame 3', 'bias master 2', 'input frame 11'
    path: str
    sha256: str


@dataclass(frozen=True, slots=True)
class RawNode:
    """The raw frame a product was reduced from (checksum as it was reduced)."""

    frame_id: int
    path: str
    sha256: str
    kind: str
    obs_time: dt.datetime
    is_latest: bool
    ccd: str | None = None  # the CCD of a mosaic file the frame is

    def as_dict(self) -> dict[str, Any]:
        return {"frame_id": self.frame_id, "path": self.path, "sha256": self.sha256,
                "kind": self.kind, "obs_time": self.obs_time.isoformat(),
                "is_latest": self.is_latest, "ccd": self.ccd}


@dataclass(frozen=True, slots=True)
class InputNode:
    """A frame considered for a master: used, or rejected with the reason."""

    frame_id: int
    path: str
    sha256: str
    used: bool
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"frame_id": self.frame_id, "path": self.path, "sha256": self.sha256,
                "used": self.used, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class MasterNode:
    """A master used by a product, in a role, with its own inputs."""

    role: str
    id: int
    kind: str
    night: dt.date
    version: int
    path: str
    sha256: str
    quality: str
    superseded_by: int | None
    software_version: str
    created_at: dt.datetime
    parameters_digest: str | None
    masters_used: dict[str, int | None]
    inputs: tuple[InputNode, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "id": self.id, "kind": self.kind,
                "night": self.night.isoformat(), "version": self.version, "path": self.path,
                "sha256": self.sha256, "quality": self.quality,
                "superseded_by": self.superseded_by, "software_version": self.software_version,
                "created_at": self.created_at.isoformat(),
                "parameters_digest": self.parameters_digest,
                "masters_used": dict(self.masters_used),
                "inputs": [i.as_dict() for i in self.inputs]}


@dataclass(frozen=True, slots=True)
class ProvenanceTree:
    """A product and everything it was made from, as recorded."""

    id: int
    kind: str
    status: str
    replaced_by: int | None
    path: str
    sha256: str
    created_at: dt.datetime
    software_version: str
    parameters_digest: str | None
    inputs_key: str
    missing_steps: tuple[str, ...]
    raw: RawNode
    masters: tuple[MasterNode, ...]

    def files(self) -> list[TrackedFile]:
        """Every file of the tree once: product, raw frame, masters, masters' inputs."""
        found: list[TrackedFile] = [TrackedFile(f"product {self.id}", self.path, self.sha256),
                                    TrackedFile(f"raw frame {self.raw.frame_id}",
                                                self.raw.path, self.raw.sha256)]
        for m in self.masters:
            found.append(TrackedFile(f"{m.role} master {m.id}", m.path, m.sha256))
            found.extend(TrackedFile(f"input frame {i.frame_id} of master {m.id}", i.path,
                                     i.sha256) for i in m.inputs)
        seen: set[tuple[str, str]] = set()
        unique = []
        for f in found:
            if (f.path, f.sha256) not in seen:
                seen.add((f.path, f.sha256))
                unique.append(f)
        return unique

    def as_dict(self) -> dict[str, Any]:
        """The tree as one nested, JSON-ready object."""
        return {"id": self.id, "kind": self.kind, "status": self.status,
                "replaced_by": self.replaced_by, "path": self.path, "sha256": self.sha256,
                "created_at": self.created_at.isoformat(),
                "software_version": self.software_version,
                "parameters_digest": self.parameters_digest, "inputs_key": self.inputs_key,
                "missing_steps": list(self.missing_steps), "raw": self.raw.as_dict(),
                "masters": [m.as_dict() for m in self.masters]}


def find_product(session: Session, ref: str) -> Product:
    """The product named by ``ref``: its id, or the path of its file.

    A path is compared as given and made absolute (no file is opened); when
    several products share it, the newest wins.

    Raises
    ------
    NotFoundError
        No product has this id or path.
    """
    text = ref.strip()
    if text.isdigit():
        product = session.get(Product, int(text))
        if product is None:
            raise NotFoundError(f"no product with id {text}")
        return product
    candidates = {text, os.path.abspath(text), os.path.normpath(text)}
    found = session.scalars(select(Product).where(Product.path.in_(candidates))
                            .order_by(Product.id.desc()).limit(1)).one_or_none()
    if found is None:
        raise NotFoundError(f"no product with id or path {ref!r}")
    return found


def _digest(parameters: dict[str, Any] | None) -> str | None:
    value = (parameters or {}).get("digest")
    return value if isinstance(value, str) else None


def _master_node(session: Session, link: ProductMaster, master: Master) -> MasterNode:
    used = (master.stats or {}).get("masters_used") or {}
    inputs = tuple(InputNode(frame_id=f.id, path=f.path, sha256=mi.sha256, used=mi.used,
                             reason=mi.reason)
                   for mi, f in inputs_of(session, master))
    return MasterNode(
        role=link.role, id=master.id, kind=master.kind, night=master.night,
        version=master.version, path=master.path, sha256=link.sha256, quality=master.quality,
        superseded_by=master.superseded_by_id, software_version=master.software_version,
        created_at=master.created_at, parameters_digest=_digest(master.parameters),
        masters_used={str(k): (None if v is None else int(v)) for k, v in used.items()},
        inputs=inputs,
    )


def provenance_tree(session: Session, product: Product) -> ProvenanceTree:
    """The provenance tree of ``product``, masters in the order bias, dark, flat.

    Checksums are those recorded when each file was used (the product's
    ``raw_sha256``, each ``product_masters.sha256``, each ``master_inputs.sha256``),
    so a file rewritten since shows up when the tree is verified.
    """
    frame = session.get(Frame, product.frame_id)
    if frame is None:  # the foreign key makes this impossible short of a damaged catalogue
        raise NotFoundError(f"product {product.id} points at a missing frame {product.frame_id}")
    raw = RawNode(frame_id=frame.id, path=frame.path, sha256=product.raw_sha256,
                  kind=frame.kind, obs_time=frame.obs_time, is_latest=frame.is_latest,
                  ccd=frame.ccd)
    rows = sorted(
        ((link, master) for link, master in session.execute(
            select(ProductMaster, Master).join(Master, Master.id == ProductMaster.master_id)
            .where(ProductMaster.product_id == product.id))),
        key=lambda r: (_ROLE_ORDER.get(r[0].role, 9), r[0].role, r[1].id))
    masters = tuple(_master_node(session, link, master) for link, master in rows)
    return ProvenanceTree(
        id=product.id, kind=product.kind, status=product.status,
        replaced_by=product.replaced_by_id, path=product.path, sha256=product.sha256,
        created_at=product.created_at, software_version=product.software_version,
        parameters_digest=_digest(product.parameters), inputs_key=product.inputs_key,
        missing_steps=tuple(str(s) for s in product.missing_steps or ()), raw=raw,
        masters=masters,
    )
