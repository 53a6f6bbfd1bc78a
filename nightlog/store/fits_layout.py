"""The block structure of a FITS file, read without astropy.

A FITS file is a sequence of HDUs, each a header of 2880-byte blocks ending with
an ``END`` card and a data unit whose size the header declares
(``|BITPIX|/8 × GCOUNT × (PCOUNT + NAXIS1 × … × NAXISn)``), padded to 2880 bytes.
Walking those blocks tells whether a file is complete (a half-copied file is
shorter than declared) without allocating the data, and gives the header bytes so
they can be parsed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from nightlog.errors import IncompleteFileError, NotFitsError, UnreadableFileError

__all__ = ["BLOCK", "HduLayout", "read_layout"]

BLOCK = 2880
CARD = 80
_MAX_HEADER_BLOCKS = 10_000  # 360,000 cards: far beyond any real header


@dataclass(frozen=True, slots=True)
class HduLayout:
    """Position of one HDU in a file."""

    header_offset: int
    header_bytes: bytes
    data_offset: int
    data_size: int  # declared, unpadded
    cards: dict[str, str]  # structural keywords only: raw value strings

    @property
    def naxes(self) -> tuple[int, ...]:
        n = _parse_int(self.cards, "NAXIS", 0)
        return tuple(_parse_int(self.cards, f"NAXIS{i}", 0) for i in range(1, n + 1))

    @property
    def end(self) -> int:
        padded = -(-self.data_size // BLOCK) * BLOCK
        return self.data_offset + padded


_STRUCTURAL = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "ZIMAGE",
               "ZNAXIS", "ZNAXIS1", "ZNAXIS2", "ZBITPIX", "EXTNAME"}


def _parse_int(cards: dict[str, str], key: str, default: int | None = None) -> int:
    raw = cards.get(key)
    if raw is None:
        if default is None:
            raise NotFitsError(f"header lacks the mandatory keyword {key}")
        return default
    try:
        return int(raw.split("/")[0].strip())
    except ValueError:
        raise NotFitsError(f"mandatory keyword {key} is not an integer: {raw[:40]!r}") from None


def _no_end(offset: int, n: int, read: int) -> IncompleteFileError:
    """The file ended in a header: say how much of it there was."""
    if n == 0 and read == 0:
        return IncompleteFileError("file is empty (0 bytes)" if offset == 0 else
                                   f"file ends at byte {offset}, where an HDU's header begins")
    cards = n * BLOCK + read
    if read:
        return IncompleteFileError(f"file ends inside the header of the HDU at byte {offset}, "
                                   f"before its END card ({cards:,} bytes of cards)")
    return IncompleteFileError(f"no END card: the header of the HDU at byte {offset} runs to "
                               f"the end of the file ({cards:,} bytes of cards)")


def _is_data(block: bytes) -> bool:
    """Whether a header block holds data rather than cards (mostly non-text bytes):
    the END card before it is missing."""
    text = sum(1 for b in block if 32 <= b <= 126)
    return text < len(block) // 2


def _check_simple(block: bytes) -> None:
    value = block[10:80].split(b"/")[0].strip()
    if value != b"T":
        shown = value.decode("ascii", "replace")[:20] or "(blank)"
        raise NotFitsError(f"SIMPLE = {shown}: the file does not declare itself standard "
                           "FITS (SIMPLE = T)")


def _read_header(fh: BinaryIO, offset: int, first: bool) -> tuple[bytes, dict[str, str]] | None:
    chunks: list[bytes] = []
    cards: dict[str, str] = {}
    for n in range(_MAX_HEADER_BLOCKS):
        block = fh.read(BLOCK)
        if not block:
            if n == 0 and not first:
                return None  # clean end of file after the last HDU
            raise _no_end(offset, n, 0)
        if n == 0 and first and block[:8] != b"SIMPLE  "[: len(block)]:
            raise NotFitsError("does not start with the FITS 'SIMPLE' keyword")
        if n > 0 and not block.strip(b"\0"):
            raise IncompleteFileError(
                f"no END card yet: the header of the HDU at byte {offset} is followed by zero "
                f"bytes from byte {offset + n * BLOCK:,} (pre-allocated, still being written?)")
        if n > 0 and _is_data(block):
            raise NotFitsError(f"no END card in the header of the HDU at byte {offset}: "
                               f"its block at byte {offset + n * BLOCK:,} holds data, not cards")
        if len(block) < BLOCK:
            if n == 0 and not first and not block.strip(b"\0 "):
                return None  # trailing padding only
            raise _no_end(offset, n, len(block))
        if n == 0:
            head = block[:8]
            if first and head != b"SIMPLE  ":
                raise NotFitsError("does not start with the FITS 'SIMPLE' keyword")
            if first:
                _check_simple(block)
            if not first and head != b"XTENSION":
                if not block.strip(b"\0 "):
                    return None  # zero/space padding after the last HDU: tolerated
                raise NotFitsError(f"bytes after the HDU ending at {offset} are not an extension")
        chunks.append(block)
        for i in range(0, BLOCK, CARD):
            card = block[i : i + CARD]
            key = card[:8].rstrip().decode("ascii", "replace")
            if key == "END":
                return b"".join(chunks), cards
            structural = key in _STRUCTURAL or key.startswith(("NAXIS", "ZNAXIS"))
            if structural and card[8:10] == b"= ":
                cards.setdefault(key, card[10:].decode("ascii", "replace"))
    raise NotFitsError(f"no END card in the first {_MAX_HEADER_BLOCKS} header blocks")


def read_layout(fh: BinaryIO, size: int, *, max_data_bytes: int | None = None) -> list[HduLayout]:
    """Walk every HDU of an open binary file of ``size`` bytes.

    Parameters
    ----------
    fh : binary file
        Positioned anywhere; it is read from the start.
    size : int
        File size in bytes.
    max_data_bytes : int, optional
        Refuse a data unit declared larger than this, before anything is allocated.

    Raises
    ------
    NotFitsError
        Not a FITS file, or a malformed structure.
    IncompleteFileError
        The file is shorter than its headers declare (it may still be arriving).
    UnreadableFileError
        A data unit is declared larger than ``max_data_bytes``.
    """
    fh.seek(0)
    hdus: list[HduLayout] = []
    offset = 0
    while True:
        got = _read_header(fh, offset, first=not hdus)
        if got is None:
            break
        header_bytes, cards = got
        bitpix = _parse_int(cards, "BITPIX")
        if bitpix not in (8, 16, 32, 64, -32, -64):
            raise NotFitsError(f"BITPIX={bitpix} is not a FITS data type")
        naxis = _parse_int(cards, "NAXIS")
        if not 0 <= naxis <= 999:
            raise NotFitsError(f"NAXIS={naxis} is out of range")
        dims = [_parse_int(cards, f"NAXIS{i}") for i in range(1, naxis + 1)]
        if any(d < 0 for d in dims):
            raise NotFitsError(f"negative axis length in NAXISn: {dims}")
        pcount = _parse_int(cards, "PCOUNT", 0)
        gcount = _parse_int(cards, "GCOUNT", 1)
        if naxis == 0:
            nelem = 0
        else:
            nelem = 1
            # Random-groups files have NAXIS1 = 0; the product still follows the standard.
            for d in dims[1:] if dims and dims[0] == 0 and "SIMPLE" in cards else dims:
                nelem *= d
        data_size = abs(bitpix) // 8 * gcount * (pcount + nelem) if naxis else 0
        if max_data_bytes is not None and data_size > max_data_bytes:
            raise UnreadableFileError(
                f"HDU {len(hdus)} declares {data_size:,} bytes of data, more than the "
                f"limit of {max_data_bytes:,}"
            )
        data_offset = offset + len(header_bytes)
        layout = HduLayout(offset, header_bytes, data_offset, data_size, cards)
        hdus.append(layout)
        if data_offset + data_size > size:
            raise IncompleteFileError(
                f"data shorter than the header declares: HDU {len(hdus) - 1} needs "
                f"{data_offset + data_size:,} bytes, the file has {size:,}"
            )
        offset = layout.end
        if offset >= size:
            break  # complete (a missing final padding is tolerated)
        fh.seek(offset)
    return hdus
