"""Reduced products in the catalogue: the current product of a frame, and recording one.

A frame has at most one *current* product at any moment (the unique index
``uq_products_current_frame``); a newer product makes the older ones ``replaced``,
pointing at it, and they stay, with their files, for provenance.

Functions take the caller's session and never commit. What a product is made of
arrives as a plain :class:`NewProduct`, so that the coordinator never builds rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from nightlog.catalogue.models import Frame, Product, ProductMaster
from nightlog.states import ProductStatus

__all__ = ["NewProduct", "current_product", "move_product", "record_product",
           "recorded_meanwhile", "replaced_by"]


@dataclass(frozen=True, slots=True)
class NewProduct:
    """A product file made by a worker, with what the catalogue keeps of its making.

    Attributes
    ----------
    frame_id : int
        The raw frame it was reduced from.
    kind : str
        ``final`` or ``quicklook``.
    path, sha256, size : str, str, int
        The file as written.
    raw_sha256 : str
        SHA-256 of the raw file as reduced.
    inputs_key : str
        Digest of raw file, masters, parameters and software version.
    parameters : dict
        The parameters (and their ``digest``) as JSON.
    missing_steps : sequence of str
        Calibration steps skipped for want of a master.
    stats : dict
        Figures of the reduction steps, as JSON.
    software_version : str
        The nightlog version that made it.
    masters : sequence of (role, master id, master SHA-256)
        Each master used.
    """

    frame_id: int
    kind: str
    path: str
    sha256: str
    size: int
    raw_sha256: str
    inputs_key: str
    parameters: dict[str, Any]
    missing_steps: Sequence[str]
    stats: dict[str, Any]
    software_version: str
    masters: Sequence[tuple[str, int, str]] = field(default_factory=tuple)


def current_product(session: Session, frame: Frame, kind: str | None = None) -> Product | None:
    """The frame's current product (of ``kind``, if given)."""
    stmt = select(Product).where(Product.frame_id == frame.id,
                                 Product.status == ProductStatus.CURRENT)
    if kind is not None:
        stmt = stmt.where(Product.kind == kind)
    return session.scalars(stmt.order_by(Product.id.desc()).limit(1)).one_or_none()


def recorded_meanwhile(session: Session, new: NewProduct, *, replaces: int | None
                       ) -> Product | None:
    """The product that makes recording ``new`` superfluous, if any (no changes).

    Call it first in the recording transaction. The frame's row is locked
    (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite has one writer anyway), so two
    processes reducing the same frame record one after the other, and the second
    finds:

    - a product row for ``new``'s very file: the same transaction committed
      before its connection was lost, and is being retried;
    - a current product of the same kind and inputs key other than ``replaces``
      (the frame's current product when the reduction was planned): another
      process reduced it meanwhile.

    In both cases the caller records nothing (and deletes its file in the second).
    """
    session.execute(select(Frame.id).where(Frame.id == new.frame_id).with_for_update())
    same_file = session.scalars(select(Product).where(Product.path == new.path)).first()
    if same_file is not None:
        return same_file
    current = session.scalars(
        select(Product).where(Product.frame_id == new.frame_id,
                              Product.status == ProductStatus.CURRENT,
                              Product.kind == new.kind, Product.inputs_key == new.inputs_key)
        .order_by(Product.id.desc()).limit(1)).one_or_none()
    if current is not None and current.id != replaces:
        return current
    return None


def record_product(session: Session, new: NewProduct, *,
                   now: dt.datetime | None = None) -> Product:
    """Add ``new`` and a row per master used, in the caller's session (no commit).

    Every other current product of the frame (a quick-look, or a final one made
    from other inputs) becomes ``replaced`` with ``replaced_by_id`` pointing at the
    new product; its file and rows stay, for provenance.
    """
    # The others stop being current first: a frame has one current product at any
    # moment (the unique index uq_products_current_frame).
    older = list(session.scalars(select(Product).where(Product.frame_id == new.frame_id,
                                                       Product.status == ProductStatus.CURRENT)))
    for old in older:
        old.status = ProductStatus.REPLACED
    session.flush()
    product = Product(
        frame_id=new.frame_id, kind=new.kind, status=ProductStatus.CURRENT, path=new.path,
        sha256=new.sha256, size=new.size, raw_sha256=new.raw_sha256,
        inputs_key=new.inputs_key, parameters=new.parameters,
        missing_steps=list(new.missing_steps), stats=new.stats,
        created_at=now or dt.datetime.now(dt.UTC), software_version=new.software_version,
    )
    session.add(product)
    session.flush()
    for role, master_id, sha256 in new.masters:
        session.add(ProductMaster(product_id=product.id, master_id=master_id, role=role,
                                  sha256=sha256))
    for old in older:
        old.replaced_by_id = product.id
    session.flush()
    return product


def replaced_by(session: Session, product_id: int) -> list[Product]:
    """The products that ``product_id`` replaced (made ``replaced`` when it was recorded)."""
    return list(session.scalars(select(Product).where(Product.replaced_by_id == product_id)
                                .order_by(Product.id)))


def move_product(session: Session, product_id: int, *, old_path: str, new_path: str) -> bool:
    """Record that the file of product ``product_id`` (unchanged, same checksum) moved
    from ``old_path`` to ``new_path``, in the caller's session (no commit).

    Returns ``False``, changing nothing, when the product is gone or its row no
    longer names ``old_path``.
    """
    product = session.get(Product, product_id, with_for_update=True)
    if product is None or product.path != old_path:
        return False
    product.path = new_path
    session.flush()
    return True
