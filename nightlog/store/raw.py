"""Reading raw frames: completeness, checksum and header in one pass.

Supported: plain FITS (``.fits .fit .fts``), gzip-compressed FITS (``.gz``) and
tile-compressed FITS (``.fz``, a compressed image in a binary-table extension).
The checksum is the SHA-256 of the file's bytes as stored, so a moved or copied
file is recognised whatever its name.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import hashlib
import math
import os
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from nightlog.errors import (
    IncompleteFileError,
    NotFitsError,
    UnreadableFileError,
)
from nightlog.store.cards import parse_card, parse_cards
from nightlog.store.file_kinds import open_regular
from nightlog.store.fits_layout import HduLayout, read_layout

__all__ = [
    "DEFAULT_MAX_DATA_BYTES",
    "RawFile",
    "header_items",
    "header_to_json",
    "raw_values",
    "read_raw_file",
    "sha256_of",
]

_CHUNK = 1 << 20
DEFAULT_MAX_DATA_BYTES = 8 * 1024**3  # per HDU, and per decompressed .gz file
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class RawFile:
    """What the store learned about one raw file.

    ``cards`` are the image header's ``(keyword, value, comment)`` in order (with
    the primary header's cards appended when the image is in an extension);
    :attr:`header` builds an astropy header from them on demand.
    """

    path: Path
    size: int
    mtime: dt.datetime
    sha256: str
    hdu: int
    cards: tuple[tuple[str, Any, str], ...]
    shape: tuple[int, int]
    compression: str  # 'none', 'gzip' or 'tile'
    #: Every image HDU of a file with more than one (a multi-amplifier or mosaic
    #: file): ``(index, cards, (ny, nx))``, headers only; empty otherwise.
    extensions: tuple[tuple[int, tuple[tuple[str, Any, str], ...], tuple[int, int]], ...] = ()
    #: The primary header's cards when the image is in an extension.
    primary: tuple[tuple[str, Any, str], ...] = ()

    @property
    def header(self) -> fits.Header:
        header = fits.Header()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            for key, value, comment in self.cards:
                if key in ("COMMENT", "HISTORY", ""):
                    header.append((key, value), end=True)
                else:
                    header.append((key, value, comment), end=True)
        return header

    def items(self) -> tuple[list[list[Any]], dict[str, Any]]:
        """The header's JSON form and ``{KEYWORD: value}`` lookup (first occurrence)."""
        return _items_from_cards(self.cards)


def sha256_of(path: Path) -> str:
    """SHA-256 hex digest of the bytes of ``path``."""
    with open_regular(path) as fh:
        return _sha256_of_open(fh)


def _sha256_of_open(fh: BinaryIO) -> str:
    digest = hashlib.sha256()
    fh.seek(0)
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    while n := fh.readinto(buf):  # type: ignore[attr-defined]
        digest.update(view[:n])
    return digest.hexdigest()


def _parse_header(raw: bytes) -> fits.Header:
    with warnings.catch_warnings():
        # Non-standard but readable cards (such as the LFC's unescaped quote in
        # FILTER) are data we keep; astropy's complaints about them are not errors.
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            return fits.Header.fromstring(raw.decode("ascii", "replace"))
        except Exception as exc:
            raise NotFitsError(f"unreadable header: {exc}") from exc


def _image_hdu(layouts: list[HduLayout]) -> int:
    for i, hdu in enumerate(layouts):
        cards = hdu.cards
        if cards.get("ZIMAGE", "").strip().startswith("T"):
            return i
        if "XTENSION" in cards and "BINTABLE" in cards["XTENSION"]:
            continue
        if len(hdu.naxes) >= 2 and all(n > 0 for n in hdu.naxes):
            return i
    raise NotFitsError("no image data in the file (no HDU with two or more axes)")


def _merge_inherited(primary: list[tuple[str, Any, str]], ext: list[tuple[str, Any, str]]
                     ) -> list[tuple[str, Any, str]]:
    # The image lives in an extension: keep the primary's descriptive cards
    # (telescope, date, ...) unless the extension sets them.
    merged = list(ext)
    present = {key for key, _, _ in ext}
    skip = {"SIMPLE", "BITPIX", "NAXIS", "EXTEND", "END", "COMMENT", "HISTORY", ""}
    for key, value, comment in primary:
        if key not in skip and not key.startswith("NAXIS") and key not in present:
            merged.append((key, value, comment))
    return merged


def _shape_of(layout: HduLayout, header: fits.Header | None) -> tuple[int, int]:
    if header is not None and layout.cards.get("ZIMAGE", "").strip().startswith("T"):
        # astropy presents the compressed image's own header (NAXISn, not ZNAXISn).
        nx = int(header.get("ZNAXIS1", header.get("NAXIS1", 0)))
        ny = int(header.get("ZNAXIS2", header.get("NAXIS2", 0)))
    else:
        axes = layout.naxes
        nx, ny = axes[0], axes[1]
    if nx <= 0 or ny <= 0:
        raise NotFitsError(f"image has no pixels (NAXIS1={nx}, NAXIS2={ny})")
    return ny, nx


@contextlib.contextmanager
def _gzip_errors() -> Iterator[None]:
    try:
        yield
    except EOFError as exc:
        raise IncompleteFileError(f"gzip stream is truncated: {exc}") from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise UnreadableFileError(f"corrupt gzip data: {exc}") from exc


def _gzip_layouts(fh: BinaryIO, limit: int) -> list[HduLayout]:
    """The HDUs of a gzip-compressed FITS file, in memory bounded by one chunk.

    Two passes over the stream, neither holding the data: its length, stopped as
    soon as it passes ``limit`` (a small file may expand without bound), then its
    block structure.
    """
    size = 0
    buf = bytearray(_CHUNK)
    with _gzip_errors():
        fh.seek(0)
        with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            while n := gz.readinto(buf):
                size += n
                if size > limit:
                    raise UnreadableFileError(
                        f"gzip data expands beyond the limit of {limit:,} bytes"
                    )
        fh.seek(0)
        with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
            return read_layout(cast(BinaryIO, gz), size, max_data_bytes=limit)


def read_raw_file(path: str | os.PathLike[str], *,
                  max_data_bytes: int = DEFAULT_MAX_DATA_BYTES) -> RawFile:
    """Check, hash and read the header of a raw frame.

    Parameters
    ----------
    path : path-like
        The file. Only regular files are read.
    max_data_bytes : int
        Largest data unit (and decompressed ``.gz``) accepted, checked from the
        header before anything is allocated.

    Raises
    ------
    NotFitsError
        Not a FITS file or not an image.
    IncompleteFileError
        Shorter than its header declares; it may still be being written.
    UnreadableFileError
        Not a regular file, unreadable, corrupt compression or over a limit.
    """
    path = Path(path)
    try:
        # Never blocks: a FIFO, a device or a folder is refused before any read.
        with open_regular(path) as fh:
            st = os.fstat(fh.fileno())
            magic = fh.read(2)
            if magic == _GZIP_MAGIC:
                layouts = _gzip_layouts(fh, max_data_bytes)
                compression = "gzip"
            else:
                layouts = read_layout(fh, st.st_size, max_data_bytes=max_data_bytes)
                compression = "none"
            sha = _sha256_of_open(fh)
            index = _image_hdu(layouts)
            layout = layouts[index]
            header = None
            if layout.cards.get("ZIMAGE", "").strip().startswith("T"):
                compression = "tile"
                header = _compressed_image_header(fh, index)
    except OSError as exc:
        raise UnreadableFileError(f"read error: {exc.strerror or exc}") from exc
    mtime = dt.datetime.fromtimestamp(st.st_mtime, tz=dt.UTC)

    if header is not None:
        cards = _astropy_cards(header)
        shape = _shape_of(layout, header)
    else:
        cards = _cards_of(layout.header_bytes)
        shape = _shape_of(layout, None)
    extensions = _image_extensions(layouts, index, cards) if compression != "tile" else ()
    primary: list[tuple[str, Any, str]] = []
    if index > 0:
        primary = _cards_of(layouts[0].header_bytes)
        cards = _merge_inherited(primary, cards)
    return RawFile(path=path, size=st.st_size, mtime=mtime, sha256=sha, hdu=index,
                   cards=tuple(cards), shape=shape, compression=compression,
                   extensions=extensions, primary=tuple(primary))


def _image_extensions(layouts: list[HduLayout], first: int,
                      first_cards: list[tuple[str, Any, str]]
                      ) -> tuple[tuple[int, tuple[tuple[str, Any, str], ...],
                                       tuple[int, int]], ...]:
    """The headers (never the pixels) of every 2-D image HDU, when there are several."""
    images = [i for i, h in enumerate(layouts) if i >= first and len(h.naxes) == 2
              and all(n > 0 for n in h.naxes) and "BINTABLE" not in h.cards.get("XTENSION", "")]
    if len(images) < 2:
        return ()
    out = []
    for i in images:
        cards = first_cards if i == first else _cards_of(layouts[i].header_bytes)
        out.append((i, tuple(cards), _shape_of(layouts[i], None)))
    return tuple(out)


def _compressed_image_header(fh: BinaryIO, index: int) -> fits.Header:
    fh.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            with fits.open(fh, memmap=False, lazy_load_hdus=True) as hdul:
                return hdul[index].header.copy()
        except Exception as exc:
            raise UnreadableFileError(f"cannot read the tile-compressed header: {exc}") from exc


def _json_value(value: Any) -> Any:
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, fits.card.Undefined):
        return None
    return str(value)


def header_to_json(header: fits.Header) -> list[list[Any]]:
    """The header as ``[[keyword, value, comment], ...]`` in file order (JSON-safe).

    Duplicated keywords, COMMENT and HISTORY cards are all kept. Non-finite floats
    become strings (JSON has no NaN).
    """
    return header_items(header)[0]


def _astropy_cards(header: fits.Header) -> list[tuple[str, Any, str]]:
    out: list[tuple[str, Any, str]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)
        for card in header.cards:
            try:
                value = card.value
            except Exception:
                # A card astropy cannot parse (astropy refuses control characters in
                # strings, which the fast reader takes as written): read it as the fast
                # reader would, else keep its text as written (``card.image`` would be
                # astropy's "fixed" card, quotes added).
                image = getattr(card, "_image", None) or card.image
                plain = parse_card(image)
                value = plain[1] if plain is not None else image[10:].strip()
            out.append((card.keyword, value, str(card.comment)))
    return out


def _items_from_cards(cards: Any) -> tuple[list[list[Any]], dict[str, Any]]:
    out: list[list[Any]] = []
    values: dict[str, Any] = {}
    for keyword, value, comment in cards:
        out.append([keyword, _json_value(value), comment])
        if keyword not in ("COMMENT", "HISTORY", "") and keyword not in values:
            values[keyword] = value
    return out, values


def raw_values(cards: Any) -> dict[str, Any]:
    """``{KEYWORD: value}`` (first occurrence, no COMMENT or HISTORY) of a sequence of
    ``(keyword, value, comment)`` cards, such as :attr:`RawFile.extensions`'."""
    values: dict[str, Any] = {}
    for keyword, value, _ in cards:
        if keyword not in ("COMMENT", "HISTORY", "") and keyword not in values:
            values[keyword] = value
    return values


def header_items(header: fits.Header) -> tuple[list[list[Any]], dict[str, Any]]:
    """One pass over the cards: the JSON form and a plain ``{KEYWORD: value}`` lookup.

    The lookup keeps the first of repeated keywords (as astropy's own lookup does)
    and leaves out COMMENT and HISTORY.
    """
    return _items_from_cards(_astropy_cards(header))


def _cards_of(raw: bytes) -> list[tuple[str, Any, str]]:
    fast = parse_cards(raw)
    return fast if fast is not None else _astropy_cards(_parse_header(raw))
