"""Is an archive file still what the catalogue recorded? Hash it again and compare.

Provenance is only as good as the files it points at: a raw frame rewritten in
place or a master deleted by hand breaks the chain from a product to its inputs
without the catalogue noticing. :func:`check_file` hashes a file with the same
:func:`~nightlog.store.raw.sha256_of` used at ingestion and when the archive wrote
it, and says whether it is unchanged, changed, missing or unreadable. For a FITS
file that carries ``CHECKSUM``/``DATASUM`` cards (every product and master), a
changed file is also checked against them, and the detail names each HDU whose
checksum fails: the damage is then located even without the catalogue.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits

from nightlog.states import FileState
from nightlog.store.raw import sha256_of

__all__ = ["FileCheck", "check_file", "fits_checksum_failures"]

_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.fz")


@dataclass(frozen=True, slots=True)
class FileCheck:
    """The outcome of hashing one file again.

    Attributes
    ----------
    path : str
        The file.
    expected : str
        SHA-256 the catalogue recorded.
    actual : str or None
        SHA-256 of the bytes now there; None when the file cannot be read.
    status : str
        ``ok``, ``changed`` (other bytes), ``missing`` (no such file) or
        ``unreadable`` (there, but reading failed; ``detail`` says why).
    detail : str
        The operating system's message for an unreadable file; for a changed FITS
        file, the HDUs whose ``CHECKSUM``/``DATASUM`` fail.
    """

    path: str
    expected: str
    actual: str | None
    status: FileState
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == FileState.OK


def check_file(path: str | os.PathLike[str], expected: str) -> FileCheck:
    """Hash ``path`` again and compare with ``expected`` (never raises for a bad file)."""
    where = Path(path)
    try:
        actual = sha256_of(where)
    except FileNotFoundError:
        return FileCheck(os.fspath(path), expected, None, FileState.MISSING)
    except OSError as exc:
        status = FileState.MISSING if not where.exists() else FileState.UNREADABLE
        return FileCheck(os.fspath(path), expected, None, status, exc.strerror or str(exc))
    if actual == expected:
        return FileCheck(os.fspath(path), expected, actual, FileState.OK)
    detail = ""
    if where.name.lower().endswith(_FITS_SUFFIXES):
        failures = fits_checksum_failures(where)
        if failures:
            detail = "FITS checksum fails in " + ", ".join(failures)
    return FileCheck(os.fspath(path), expected, actual, FileState.CHANGED, detail)


def fits_checksum_failures(path: str | os.PathLike[str]) -> list[str]:
    """The HDUs of a FITS file whose ``CHECKSUM`` or ``DATASUM`` card fails.

    Returns
    -------
    list of str
        ``HDU <index> (<EXTNAME>): CHECKSUM`` (or ``DATASUM``) per failing card, in
        file order; empty when every stated checksum holds, when the file states
        none, or when it cannot be parsed as FITS at all (then ``["unreadable as
        FITS"]``).
    """
    failures: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # tile-compressed HDUs are checked as the tables they are stored as
            with fits.open(path, checksum=True, memmap=False,
                           disable_image_compression=True) as hdul:
                for index, hdu in enumerate(hdul):
                    name = hdu.name or "PRIMARY"
                    header = hdu.header
                    if "DATASUM" in header and not hdu.verify_datasum():
                        failures.append(f"HDU {index} ({name}): DATASUM")
                    if "CHECKSUM" in header and not hdu.verify_checksum():
                        failures.append(f"HDU {index} ({name}): CHECKSUM")
    except (OSError, ValueError, IndexError, KeyError, TypeError):
        return ["unreadable as FITS"]
    del caught
    return failures
