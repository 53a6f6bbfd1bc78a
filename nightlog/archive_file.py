"""A product or master of an archive, as the Python API hands it out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astropy.nddata import CCDData

from nightlog.store.products import ProductFile, read_product

__all__ = ["ArchiveFile"]


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """A product or master of the archive: its catalogue record and its file.

    Attributes
    ----------
    id : int
        Catalogue id of the product or master.
    kind : str
        ``final`` or ``quicklook`` for a product; ``bias``, ``dark`` or ``flat`` for
        a master.
    path : Path
        The file.
    record : dict
        The catalogue record (as the listings and ``--format json`` give it).
    """

    id: int
    kind: str
    path: Path
    record: dict[str, Any]

    def read(self) -> ProductFile:
        """The file's frame and ``PROVENANCE`` rows, read in one open.

        Raises
        ------
        UnreadableFileError
            The file is missing, unreadable or not a nightlog product.
        """
        return read_product(self.path)

    def ccd(self) -> CCDData:
        """The file as CCDData: data, uncertainty, mask, unit and header.

        Raises
        ------
        UnreadableFileError
            The file is missing, unreadable or not a nightlog product.
        """
        return self.read().ccd
