"""Images in and out of the archive: raw frames as CCDData, HDU lists written whole.

Reading: the image HDU of a raw file (plain, gzip or tile-compressed) becomes a
CCDData in ADU with its header. Writing: an HDU list goes to a temporary name in
the destination folder, is flushed, renamed, and its checksum returned.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyWarning

from nightlog.errors import ArchiveFileExists, StoreError, UnreadableFileError
from nightlog.store.atomic import atomic_write, os_error_in
from nightlog.store.compression import COMPRESSED_SUFFIX, tile_compressed
from nightlog.store.raw import sha256_of

__all__ = ["FrameFile", "StoredImage", "WrittenFile", "read_float32", "read_float32_hdus",
           "read_image", "read_region", "write_hdulist"]


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """A file the archive wrote: where, how big, its SHA-256."""

    path: Path
    size: int
    sha256: str


def read_image(path: str | os.PathLike[str], hdu: int = 0) -> CCDData:
    """The image in HDU ``hdu`` of ``path`` as CCDData (ADU, header kept, data as stored).

    Raises
    ------
    UnreadableFileError
        The file is gone, unreadable, or the HDU holds no image.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(path, memmap=False) as hdul:
                image = hdul[hdu]
                data = image.data
                header = image.header.copy()
    except (OSError, IndexError, KeyError, ValueError) as exc:
        raise UnreadableFileError(f"cannot read {path}: {exc}") from exc
    if data is None or np.ndim(data) != 2:
        raise UnreadableFileError(f"HDU {hdu} of {path} holds no 2-D image")
    return CCDData(np.asarray(data), unit=u.adu, meta=header)


def _unit_of(header: fits.Header) -> u.UnitBase:
    try:
        return u.Unit(str(header.get("BUNIT", "adu")).strip() or "adu")
    except ValueError:
        return u.adu


def read_float32(path: str | os.PathLike[str], hdu: int | str = 0
                 ) -> tuple[np.ndarray, fits.Header]:
    """An image HDU read straight to physical float32 values, and its header.

    The raw integers are converted and scaled (``BSCALE``/``BZERO``, ``BLANK`` to
    NaN) in float32 in one go, instead of astropy's integer rescaling followed by
    a float copy: for 16-bit data (``BZERO = 32768``) this is exact and about
    twice as fast. The scaling keywords leave the header returned.

    Raises
    ------
    UnreadableFileError
        The file or HDU cannot be read, or holds no image data.
    """
    try:
        with fits.open(path, memmap=False, do_not_scale_image_data=True) as hdul:
            image = hdul[hdu]
            if not isinstance(image, fits.PrimaryHDU | fits.ImageHDU):
                data, header = image.data, image.header.copy()
                if data is None:
                    raise UnreadableFileError(f"HDU {hdu!r} of {path} holds no image data")
                return np.array(data, dtype=np.float32), header
            raw = image.data
            header = image.header.copy()
    except (OSError, KeyError, IndexError, ValueError) as exc:
        raise UnreadableFileError(f"cannot read HDU {hdu!r} of {path}: {exc}") from exc
    if raw is None:
        raise UnreadableFileError(f"HDU {hdu!r} of {path} holds no image data")
    return _physical(raw, header)


def read_float32_hdus(path: str | os.PathLike[str], hdus: tuple[int, ...]
                      ) -> list[tuple[np.ndarray, fits.Header]]:
    """Several image HDUs of one file (a multi-amplifier frame's), opened once, each
    as :func:`read_float32` reads one; each header also holds the primary header's
    descriptive cards it does not set itself (the FITS ``INHERIT`` convention).

    Raises
    ------
    UnreadableFileError
        The file or an HDU cannot be read, or holds no image data.
    """
    out = []
    try:
        with fits.open(path, memmap=False, do_not_scale_image_data=True) as hdul:
            for hdu in hdus:
                image = hdul[hdu]
                if image.data is None:
                    raise UnreadableFileError(f"HDU {hdu} of {path} holds no image data")
                header = image.header.copy()
                for card in hdul[0].header.cards:
                    if card.keyword not in header and card.keyword not in _STRUCTURE:
                        header.append(card)
                out.append(_physical(image.data, header))
    except (OSError, KeyError, IndexError, ValueError) as exc:
        raise UnreadableFileError(f"cannot read the HDUs {hdus} of {path}: {exc}") from exc
    return out


_STRUCTURE = {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "COMMENT",
              "HISTORY", "", "CHECKSUM", "DATASUM"}


def _physical(raw: np.ndarray, header: fits.Header) -> tuple[np.ndarray, fits.Header]:
    out = np.empty(raw.shape, dtype=np.float32)
    bscale = float(header.get("BSCALE", 1.0))
    bzero = float(header.get("BZERO", 0.0))
    if bscale == 1.0 and bzero != 0.0:
        # Converted and offset in one pass: the integer is converted to float32
        # first either way (exactly, for 16-bit data), then the offset is added.
        np.add(raw, np.float32(bzero), out=out, dtype=np.float32, casting="unsafe")
    else:
        np.copyto(out, raw, casting="unsafe")
        if bscale != 1.0:
            out *= np.float32(bscale)
        if bzero != 0.0:
            out += np.float32(bzero)
    if raw.dtype.kind in "iu" and "BLANK" in header:
        out[raw == header["BLANK"]] = np.nan
    for key in ("BSCALE", "BZERO", "BLANK"):
        header.remove(key, ignore_missing=True)
    return out, header


@dataclass(frozen=True, slots=True)
class FrameFile:
    """One image HDU of a FITS file, read when a combination needs it.

    A loader for :func:`nightlog.reduction.combine.combine` and the master
    builders: calling it returns a new CCDData of physical float32 values (unit
    from ``BUNIT``, else ADU) with the header, so that a stack of files is read one
    frame at a time and the reduction core never opens a file. Picklable, so a
    worker can be handed a list of them.
    """

    path: str
    hdu: int | str = 0

    def __call__(self) -> CCDData:
        data, header = read_float32(self.path, self.hdu)
        return CCDData(data, unit=_unit_of(header), meta=header)

    def stored(self) -> StoredImage | None:
        """The HDU's values as stored, for a stack that converts them tile by tile
        with the operations of a call (None for a compressed or non-image HDU).

        Raises
        ------
        UnreadableFileError
            The file or HDU cannot be read, or holds no image data.
        """
        try:
            with fits.open(self.path, memmap=False, do_not_scale_image_data=True) as hdul:
                image = hdul[self.hdu]
                if not isinstance(image, fits.PrimaryHDU | fits.ImageHDU):
                    return None
                raw = image.data
                header = image.header.copy()
        except (OSError, KeyError, IndexError, ValueError) as exc:
            raise UnreadableFileError(f"cannot read HDU {self.hdu!r} of {self.path}: {exc}"
                                      ) from exc
        if raw is None:
            raise UnreadableFileError(f"HDU {self.hdu!r} of {self.path} holds no image data")
        blank = header.get("BLANK") if raw.dtype.kind in "iu" else None
        stored = StoredImage(raw=raw, bscale=float(header.get("BSCALE", 1.0)),
                             bzero=float(header.get("BZERO", 0.0)),
                             blank=None if blank is None else int(blank), header=header)
        for key in ("BSCALE", "BZERO", "BLANK"):
            header.remove(key, ignore_missing=True)
        return stored


@dataclass(frozen=True, slots=True)
class StoredImage:
    """An image HDU's values as stored: physical value = ``raw * bscale + bzero``,
    ``blank`` the stored value of pixels without data (integers only); the header
    without those keywords."""

    raw: np.ndarray
    bscale: float
    bzero: float
    blank: int | None
    header: fits.Header


def write_hdulist(path: str | os.PathLike[str], hdul: fits.HDUList, *,
                  mode: int = 0o644) -> WrittenFile:
    """Write ``hdul`` to ``path`` atomically with permissions ``mode``; return its
    size and SHA-256.

    Every HDU gets ``CHECKSUM`` and ``DATASUM`` (the FITS checksum convention), so
    the file can be checked by any FITS reader even away from the catalogue. A path
    ending in ``.fits.fz`` is written tile-compressed
    (:func:`~nightlog.store.compression.tile_compressed`).

    Raises
    ------
    ArchiveFileExists
        A file is already under ``path`` (or appeared there while writing).
    StoreError
        The folder cannot be written or the disk is full (nothing is left under
        ``path``; the message names it and the free space).
    """
    target = Path(path)
    if target.name.lower().endswith(COMPRESSED_SUFFIX):
        hdul = tile_compressed(hdul)
    if target.exists():
        raise ArchiveFileExists(f"refusing to overwrite an archive file: {target}")
    with atomic_write(target, mode=mode, overwrite=False) as fh:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AstropyWarning)
                hdul.writeto(fh, output_verify="silentfix", checksum=True)
        except Exception as exc:
            if os_error_in(exc) is not None:
                raise  # the disk or the folder failed: atomic_write says which
            # astropy refuses a malformed header
            raise StoreError(f"cannot write {target}: {exc}") from exc
    return WrittenFile(path=target, size=target.stat().st_size, sha256=sha256_of(target))


def read_region(path: str | os.PathLike[str], hdu: int,
                region: tuple[slice, slice]) -> np.ndarray:
    """Pixels of ``region`` (numpy slices) of HDU ``hdu``, read without loading the
    whole image where the format allows (plain FITS), as float64.

    Raises
    ------
    UnreadableFileError
        The file or HDU cannot be read.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                image = hdul[hdu]
                if isinstance(image, fits.CompImageHDU):
                    values = image.section[region[0], region[1]]  # tiles decompressed
                else:
                    # Whole rows are one read each block; a column range taken row by
                    # row is ten times slower (a full frame's central box: 0.07 s).
                    values = image.section[region[0], :][:, region[1]]
                return np.asarray(values, dtype=np.float64)
    except (OSError, IndexError, KeyError, ValueError, TypeError) as exc:
        raise UnreadableFileError(f"cannot read a region of {path}: {exc}") from exc
