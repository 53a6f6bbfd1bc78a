"""Replaced products leave the night's product folder: one current file per frame there.

A product stays, with its file, when a newer one replaces it (provenance), but a
reader of the night's folder should find one product file per frame, the current
one: two files both saying ``NLKIND = final`` with the same inputs key (after
``nightlog reduce --force``) cannot be told apart. Once the newer product is
recorded, each product it replaced is moved to a ``replaced`` folder beside it
(``products/<instrument>/<night>/replaced/``), its row following the file.

Every step leaves the catalogue true: the file is first linked (or copied) to its
new name, then the row is changed and committed, and only then the old name
removed. An interruption leaves at most an extra copy, never a row naming a file
that is not there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from nightlog.catalogue.products import move_product, replaced_by
from nightlog.store.layout import name_beside

__all__ = ["REPLACED_FOLDER", "replaced_path", "set_aside_replaced"]

#: Folder, beside the current products, holding the files of replaced ones.
REPLACED_FOLDER = "replaced"


def replaced_path(path: str | os.PathLike[str]) -> Path:
    """Where the file of a replaced product at ``path`` is kept."""
    path = Path(path)
    if path.parent.name == REPLACED_FOLDER:
        return path
    return path.parent / REPLACED_FOLDER / path.name


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def set_aside_replaced(make_session: Callable[[], Session], product_id: int) -> list[Path]:
    """Move the files of the products ``product_id`` replaced to the ``replaced`` folder.

    Parameters
    ----------
    make_session : callable
        Opens a catalogue session; each move is its own transaction.
    product_id : int
        The product just recorded.

    Returns
    -------
    list of Path
        The new paths of the files moved. A file that is gone, already set aside, or
        that cannot be moved (the archive or the catalogue refused) stays where it
        is: setting aside is housekeeping, the product is recorded either way.
    """
    moved: list[Path] = []
    try:
        with make_session() as session:
            olds = [(p.id, Path(p.path)) for p in replaced_by(session, product_id)]
    except SQLAlchemyError:
        return moved
    for old_id, source in olds:
        target = replaced_path(source)
        if target == source or not source.exists():
            continue
        if target.exists():
            target = name_beside(target)
        try:
            _copy(source, target)
        except OSError:
            continue
        try:
            with make_session() as session, session.begin():
                ok = move_product(session, old_id, old_path=str(source), new_path=str(target))
        except SQLAlchemyError:
            ok = False
        if not ok:
            target.unlink(missing_ok=True)
            continue
        source.unlink(missing_ok=True)
        moved.append(target)
    return moved
