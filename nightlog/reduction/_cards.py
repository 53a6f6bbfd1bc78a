"""FITS-legal header bookkeeping shared by the reduction steps.

Every step records what it did in the header of the frame it returns, using
short (≤ 8 character) keywords in the IRAF ``ccdproc`` tradition (``OVERSCAN``,
``TRIM``, ``ZEROCOR``, ``DARKCOR``, ``FLATCOR``) plus ``HISTORY`` lines. The
helpers here make any text safe for a FITS card: printable ASCII only (non-ASCII
is escaped, not dropped) and short enough that astropy never truncates it with
a warning. Headers passed in are modified in place: callers hand in a copy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from astropy.io import fits
from astropy.nddata import CCDData

from nightlog.errors import ReductionError

_KEYWORD_RE = re.compile(r"^[A-Z0-9_-]{1,8}$")
# A string value fits in 68 characters between its quotes on one card.
_MAX_STRING = 68
# HISTORY text per card; astropy splits longer text into several cards itself.
_MAX_HISTORY_TOTAL = 72 * 8
_ELLIPSIS = "..."


def fits_text(text: str, limit: int | None = None) -> str:
    """Printable-ASCII version of ``text``, at most ``limit`` characters.

    Non-ASCII characters become backslash escapes (``é`` → ``\\xe9``) so nothing
    is silently lost; control characters become spaces; over-long text is cut
    and ends in ``...``.
    """
    escaped = str(text).encode("ascii", "backslashreplace").decode("ascii")
    cleaned = "".join(ch if " " <= ch <= "~" else " " for ch in escaped)
    if limit is not None and len(cleaned) > limit:
        cleaned = cleaned[: max(limit - len(_ELLIPSIS), 0)] + _ELLIPSIS
    return cleaned


def _string_value(text: str) -> str:
    # Apostrophes are doubled on the card, so they count twice against the limit.
    value = fits_text(text)
    out: list[str] = []
    used = 0
    for ch in value:
        cost = 2 if ch == "'" else 1
        if used + cost > _MAX_STRING:
            while out and used + len(_ELLIPSIS) > _MAX_STRING:
                used -= 2 if out.pop() == "'" else 1
            out.append(_ELLIPSIS)
            break
        out.append(ch)
        used += cost
    return "".join(out)


def check_keyword(key: str) -> str:
    """Upper-cased ``key`` if it is a legal standard FITS keyword, else raise ReductionError."""
    upper = key.strip().upper()
    if not _KEYWORD_RE.match(upper) or upper in {"HISTORY", "COMMENT"}:
        raise ReductionError(
            f"{key!r} is not a FITS keyword of at most 8 characters from A-Z 0-9 _ -"
        )
    return upper


def set_card(header: fits.Header, key: str, value: Any, comment: str | None = None) -> None:
    """Set ``key`` on ``header`` with a FITS-safe value and comment (no warnings)."""
    key = check_keyword(key)
    if isinstance(value, str):
        value = _string_value(value)
    elif value is not None and not isinstance(value, bool | int | float):
        value = _string_value(str(value))
    if comment is None:
        header[key] = value
        return
    card = fits.Card(key, value)
    room = 80 - len(card.image.rstrip()) - 3
    header[key] = (value, fits_text(comment, room) if room > 0 else "")


def add_history(header: fits.Header, text: str) -> None:
    """Append ``text`` as HISTORY (split over cards by astropy, never truncated silently)."""
    header.add_history(fits_text(text, _MAX_HISTORY_TOTAL))


def header_of(ccd: CCDData) -> fits.Header:
    """A new :class:`~astropy.io.fits.Header` with the metadata of ``ccd``.

    A ``fits.Header`` is copied; a plain mapping is converted, long or
    non-standard keys becoming explicit ``HIERARCH`` cards (which astropy writes
    without a warning) and lists becoming repeated cards.
    """
    meta = ccd.meta
    if isinstance(meta, fits.Header):
        return meta.copy()
    return mapping_to_header(meta)


def mapping_to_header(meta: Mapping[str, Any]) -> fits.Header:
    """Convert a metadata mapping into a FITS header without warnings."""
    header = fits.Header()
    for key, value in meta.items():
        values = value if isinstance(value, list | tuple) and key.upper() in {
            "HISTORY", "COMMENT"} else [value]
        for item in values:
            if key.upper() == "HISTORY":
                add_history(header, str(item))
            elif key.upper() == "COMMENT":
                header.add_comment(fits_text(str(item), _MAX_HISTORY_TOTAL))
            elif _KEYWORD_RE.match(key.upper()):
                set_card(header, key, item)
            else:
                header.append(fits.Card(f"HIERARCH {fits_text(key, 40)}",
                                        item if isinstance(item, bool | int | float)
                                        else fits_text(str(item), 30)))
    return header
