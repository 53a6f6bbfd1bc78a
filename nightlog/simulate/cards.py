"""80-character FITS card images in the exact layouts the simulated cameras write.

astropy formats every card its own way (and escapes apostrophes in strings), so
the simulator builds the card images itself, byte for byte as in the reference
dumps, and writes them without astropy. Three layouts occur:

``lfc``
    Palomar LFC: value field ending in column 30, then ``"  / comment"``;
    strings left-justified in that field. The ``FILTER`` value ``g'`` is
    written *unescaped*, ``'g'      '``, as the camera does (not standard FITS,
    but astropy reads it back as ``g'``).
``maximdl``
    MaxIm DL: numbers right-justified to column 30, then ``" /comment"``;
    strings as short as they are, then ``" /"`` and the comment from column 33.
``acp``
    ACP (the observatory control program that patches MaxIm's headers):
    value field ending in column 30, then ``" / comment"``.
"""

from __future__ import annotations

import math
from typing import Literal

__all__ = [
    "CARD",
    "acp_float",
    "header_bytes",
    "image_extension_cards",
    "maximdl_float",
    "raw_card",
    "value_card",
]

CARD = 80
_BLOCK = 2880

Layout = Literal["lfc", "maximdl", "acp"]


def _check(card: str) -> str:
    if len(card) > CARD:
        # A programming error in a camera description, not a user error.
        raise ValueError(f"card longer than 80 characters: {card!r}")
    if not card.isascii():
        raise ValueError(f"card is not ASCII: {card!r}")
    return card.ljust(CARD)


def _quoted(text: str) -> str:
    """A FITS string literal, escaped and padded to at least 8 characters."""
    return "'" + text.replace("'", "''").ljust(8) + "'"


def value_card(key: str, value: str | int | bool | None, comment: str | None = None, *,
               layout: Layout, number_width: int = 20) -> str:
    """One card image.

    Parameters
    ----------
    key : str
        Keyword, at most 8 characters.
    value : str, int, bool or None
        A ``str`` is written as a FITS string (escaped); an ``int`` as an
        integer; a ``bool`` as ``T``/``F``; ``None`` leaves the value empty.
        Floats in a camera's own notation go through :func:`raw_card`.
    comment : str or None
    layout : {'lfc', 'maximdl', 'acp'}
    number_width : int
        Width of the right-justified number field after ``"= "`` (20 puts the
        last digit in column 30).

    Returns
    -------
    str
        The 80-character card image.

    Raises
    ------
    ValueError
        The card does not fit in 80 ASCII characters.
    """
    if isinstance(value, bool):
        text, is_string = ("T" if value else "F"), False
    elif isinstance(value, int):
        text, is_string = str(value), False
    elif value is None:
        text, is_string = "", False
    else:
        text, is_string = _quoted(value), True
    return raw_card(key, text, comment, layout=layout, is_string=is_string,
                    number_width=number_width)


def raw_card(key: str, value_text: str, comment: str | None = None, *, layout: Layout,
             is_string: bool = False, number_width: int = 20) -> str:
    """A card whose value field is given verbatim (already quoted if a string).

    This is how the LFC's unescaped ``FILTER`` card and the cameras' own number
    notations (``32768.``, ``9.00000000000E+001``) are written.

    Raises
    ------
    ValueError
        The card does not fit in 80 ASCII characters.
    """
    head = f"{key:<8}= "
    if layout == "maximdl" and is_string:
        card = head + value_text
        if comment is not None:
            card = (card + " /").ljust(32) + comment
        return _check(card)
    field = value_text.ljust(number_width) if is_string else value_text.rjust(number_width)
    card = head + field
    if comment is not None:
        sep = {"lfc": "  / ", "maximdl": " /", "acp": " / "}[layout]
        card += sep + comment
    return _check(card)


def maximdl_float(value: float) -> str:
    """MaxIm DL's notation: 17 significant digits, fixed point (``-20.000000000000000``)."""
    digits = len(str(int(abs(value)))) if abs(value) >= 1 else 0
    return f"{value:.{max(17 - digits, 1)}f}"


def acp_float(value: float) -> str:
    """ACP's notation: ``9.00000000000E+001`` (11 decimals, three-digit exponent)."""
    if not math.isfinite(value):
        raise ValueError(f"cannot write {value} in a FITS header")
    mantissa, exponent = f"{value:.11E}".split("E")
    return f"{mantissa}E{int(exponent):+04d}"


def image_extension_cards(nx: int, ny: int, *, layout: Layout) -> list[str]:
    """The structural cards that open a 16-bit unsigned image extension of ``nx`` ×
    ``ny`` pixels (``XTENSION`` to ``BZERO``), as astropy writes them."""
    return [
        value_card("XTENSION", "IMAGE", "Image extension", layout=layout),
        value_card("BITPIX", 16, "number of bits per data pixel", layout=layout),
        value_card("NAXIS", 2, "number of data axes", layout=layout),
        value_card("NAXIS1", nx, "length of data axis 1", layout=layout),
        value_card("NAXIS2", ny, "length of data axis 2", layout=layout),
        value_card("PCOUNT", 0, "required keyword; must = 0", layout=layout),
        value_card("GCOUNT", 1, "required keyword; must = 1", layout=layout),
        raw_card("BSCALE", "1", None, layout=layout),
        raw_card("BZERO", "32768", None, layout=layout),
    ]


def header_bytes(cards: list[str]) -> bytes:
    """The header unit: the cards, ``END`` and blank padding to a 2880-byte block."""
    text = "".join(_check(card) for card in cards) + "END".ljust(CARD)
    size = -(-len(text) // _BLOCK) * _BLOCK
    return text.ljust(size).encode("ascii")
