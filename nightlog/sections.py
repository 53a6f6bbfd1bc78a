"""FITS image sections: ``'[x1:x2,y1:y2]'`` strings to numpy slices.

FITS (and IRAF) sections are 1-based, inclusive, x (column) first, and may be
reversed (``[100:1,1:50]`` reads columns 100 down to 1). ``*`` stands for the
whole axis, and so does a bare ``:``, which MaxIm DL pipelines write
(``'[1:4096, :]'``). numpy wants 0-based, exclusive, row first; :func:`parse_section`
does the conversion and checks the section against the image shape.
"""

from __future__ import annotations

import re

from nightlog.errors import SectionError

__all__ = ["Section", "format_section", "parse_section", "section_shape"]

Section = tuple[slice, slice]

_AXIS = r"\s*(?:(\*|:)|([+-]?\d+)\s*:\s*([+-]?\d+))\s*"
_SECTION_RE = re.compile(r"^\s*\[" + _AXIS + "," + _AXIS + r"\]\s*$")


def _axis_slice(star: str | None, a: str | None, b: str | None, size: int, axis: str,
                text: str) -> slice:
    if star:
        return slice(0, size)
    assert a is not None and b is not None
    lo, hi = int(a), int(b)
    for value in (lo, hi):
        if not 1 <= value <= size:
            raise SectionError(
                f"section {text!r}: {axis} index {value} is outside 1..{size} of the image"
            )
    if lo <= hi:
        return slice(lo - 1, hi)
    # Reversed: from lo down to hi inclusive (0-based lo-1 .. hi-1).
    return slice(lo - 1, hi - 2 if hi >= 2 else None, -1)


def parse_section(text: str, shape: tuple[int, int]) -> Section:
    """Parse a FITS section into ``(row_slice, column_slice)`` for ``array[...]``.

    Parameters
    ----------
    text : str
        Section such as ``'[2049:2080,1:4127]'`` (1-based, inclusive, x first).
    shape : tuple of int
        ``(ny, nx)`` of the image the section refers to.

    Returns
    -------
    tuple of slice
        Row and column slices; reversed sections give negative steps.

    Raises
    ------
    SectionError
        The text is not a two-axis section or reaches outside the image.
    """
    if not isinstance(text, str):
        raise SectionError(f"a section must be a string, not {type(text).__name__}")
    match = _SECTION_RE.match(text)
    if match is None:
        raise SectionError(f"not a FITS section of the form '[x1:x2,y1:y2]': {text!r}")
    ny, nx = shape
    xs = _axis_slice(match.group(1), match.group(2), match.group(3), nx, "column", text)
    ys = _axis_slice(match.group(4), match.group(5), match.group(6), ny, "row", text)
    return ys, xs


def section_shape(section: Section, shape: tuple[int, int]) -> tuple[int, int]:
    """Shape ``(ny, nx)`` of the sub-image ``section`` selects from an image of ``shape``."""
    ys, xs = section
    return (len(range(*ys.indices(shape[0]))), len(range(*xs.indices(shape[1]))))


def format_section(section: Section, shape: tuple[int, int]) -> str:
    """Write ``section`` back as a 1-based FITS section string."""
    ys, xs = section

    def _axis(s: slice, size: int) -> str:
        r = range(*s.indices(size))
        return f"{r[0] + 1}:{r[-1] + 1}"

    return f"[{_axis(xs, shape[1])},{_axis(ys, shape[0])}]"
