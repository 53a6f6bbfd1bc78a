"""Where a subarray (region-of-interest) frame lies on its detector.

A camera may read out only a window of its detector. The profile's
``window_source`` says how its headers tell where the window lies:

``xorgsubf``
    ``XORGSUBF``/``YORGSUBF``: the origin in *binned* pixels counted from 0, 0 for a
    full frame (MaxIm DL, APT, the Seestar; N.I.N.A. and INDI write none).
``ltv``
    ``LTV1``/``LTV2``, the IRAF offsets with physical = logical - LTV: a window whose
    first column is physical column ``x0 + 1`` has ``LTV1 = -x0`` (binned pixels).
``ccdsec``, ``detsec``
    ``CCDSEC`` or ``DETSEC``: the part of the detector, in *unbinned* pixels (1-based,
    inclusive), that the frame's data section (``DATASEC``, else the whole frame)
    covers. The detector's column 1 is the full readout's first data column (the
    start of a literal ``datasec`` of the profile, else column 1).

A window is written as a FITS section of the full readout *at the frame's binning*,
1-based and inclusive: the frame's pixel (1, 1) lies at ``(x0 + 1, y0 + 1)`` of that
readout and the section spans the frame's whole array (overscan included, if any).
The full readout at binning ``bx x by`` is the profile's ``full_shape`` divided by the
binning, rounded down. A frame at the origin as large as the full readout is no
window (``None``). Without the keywords a frame is no window either, and a frame
smaller than the full readout is then noted (it keeps its own set-up).
"""

from __future__ import annotations

from collections.abc import Mapping

from nightlog.errors import InvalidValueError, MissingKeywordError, SectionError
from nightlog.header.values import HeaderView, describe, parse_float, text_value
from nightlog.sections import parse_section

__all__ = ["WINDOW_SOURCES", "data_offset", "frame_window", "full_readout", "window_origin"]

#: The values of a profile's ``window_source`` (``none``: frames are never windows).
WINDOW_SOURCES: tuple[str, ...] = ("none", "xorgsubf", "ltv", "ccdsec", "detsec")

_KEYWORDS = {"xorgsubf": ("XORGSUBF", "YORGSUBF"), "ltv": ("LTV1", "LTV2"),
             "ccdsec": ("CCDSEC",), "detsec": ("DETSEC",)}
_ANY = (1 << 30, 1 << 30)


def full_readout(full_shape: tuple[int, int], binning: tuple[int, int]) -> tuple[int, int]:
    """``(ny, nx)`` of the full readout at ``binning`` (x, y): rounded down."""
    return (full_shape[0] // binning[1], full_shape[1] // binning[0])


def data_offset(datasec: str | None, full_shape: tuple[int, int] | None) -> tuple[int, int]:
    """``(y, x)`` of the full readout's first data pixel, 0-based: the start of a literal
    ``datasec`` (a profile's), else the origin."""
    if datasec is None or not datasec.startswith("[") or full_shape is None:
        return (0, 0)
    rows, cols = parse_section(datasec, full_shape)
    return (rows.indices(full_shape[0])[0], cols.indices(full_shape[1])[0])


def window_origin(window: str) -> tuple[int, int, int, int]:
    """``(x0, y0, nx, ny)`` of a window section: 0-based origin and size, binned pixels."""
    rows, cols = parse_section(window, _ANY)
    if rows.step not in (None, 1) or cols.step not in (None, 1):
        raise SectionError(f"window {window!r} runs backwards")
    return (cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)


def _whole(keyword: str, value: object, number: float) -> int:
    if number != int(number):
        raise InvalidValueError(f"{keyword}={describe(value)}: a window origin must be a "
                                "whole number of pixels")
    return int(number)


def _origin_from_offsets(view: HeaderView, source: str) -> tuple[int, int] | None:
    keywords = _KEYWORDS[source]
    values = [view.get(k) for k in keywords]
    if all(v is None for v in values):
        return None
    missing = [k for k, v in zip(keywords, values, strict=True) if v is None]
    if missing:
        raise MissingKeywordError(f"{missing[0]} is missing while {'/'.join(keywords)} "
                                  "give the window origin")
    sign = -1 if source == "ltv" else 1
    origin = [sign * _whole(k, v, parse_float(k, v))
              for k, v in zip(keywords, values, strict=True)]
    for keyword, value, number in zip(keywords, values, origin, strict=True):
        if number < 0:
            raise InvalidValueError(f"{keyword}={describe(value)}: the window would start "
                                    "before the detector's first pixel")
    return origin[0], origin[1]


def _origin_from_section(view: HeaderView, source: str, shape: tuple[int, int],
                         binning: tuple[int, int], data_offset: tuple[int, int]
                         ) -> tuple[int, int] | None:
    keyword = _KEYWORDS[source][0]
    value = view.get(keyword)
    if value is None:
        return None
    text = str(text_value(value))
    try:
        rows, cols = parse_section(text, _ANY)
    except SectionError as exc:
        raise SectionError(f"{keyword}={describe(value)}: {exc}") from None
    if rows.step not in (None, 1) or cols.step not in (None, 1):
        raise SectionError(f"{keyword}={describe(value)}: a reversed detector section "
                           "cannot place a window (give the amplifier layout instead)")
    datasec = view.get("DATASEC")
    drows, dcols = (slice(0, shape[0]), slice(0, shape[1])) if datasec is None else \
        parse_section(str(text_value(datasec)), shape)
    origin = []
    for axis, det, data, size_binned, offset in (
            ("x", cols, dcols, dcols.stop - dcols.start, data_offset[1]),
            ("y", rows, drows, drows.stop - drows.start, data_offset[0])):
        factor = binning[0] if axis == "x" else binning[1]
        if det.start % factor or (det.stop - det.start) != size_binned * factor:
            raise InvalidValueError(
                f"{keyword}={describe(value)}: does not match the data section at "
                f"binning {binning[0]}x{binning[1]} ({size_binned} binned {axis} pixels)")
        origin.append(det.start // factor + offset // factor - data.start)
    if min(origin) < 0:
        raise InvalidValueError(f"{keyword}={describe(value)}: the frame would start "
                                "before the detector's first pixel")
    return origin[0], origin[1]


def frame_window(header: Mapping[str, object] | HeaderView, *, source: str,
                 full_shape: tuple[int, int] | None, shape: tuple[int, int],
                 binning: tuple[int, int], data_offset: tuple[int, int] = (0, 0),
                 extra: dict[str, str] | None = None) -> str | None:
    """The window a frame of ``shape`` is, as a section of the full readout, or ``None``.

    Parameters
    ----------
    header : mapping
        The raw header (never modified).
    source : str
        One of :data:`WINDOW_SOURCES`.
    full_shape : tuple of int or None
        ``(ny, nx)`` of the detector's full, unbinned readout (the profile's).
    shape : tuple of int
        ``(ny, nx)`` of this frame.
    binning : tuple of int
        ``(x, y)`` on-chip binning.
    data_offset : tuple of int
        ``(y, x)`` of the full readout's first data pixel, 0-based unbinned (for
        ``ccdsec``/``detsec``).
    extra : dict, optional
        Receives a note when a frame smaller than the full readout says nothing of
        where it lies.

    Returns
    -------
    str or None
        ``'[x1:x2,y1:y2]'`` of the full readout at the frame's binning.

    Raises
    ------
    MissingKeywordError
        One of a pair of origin keywords without the other.
    InvalidValueError
        An origin that is not a whole number, is negative, or puts the frame
        (partly) outside the full readout; a detector section that does not match
        the frame's data at its binning.
    SectionError
        A malformed or reversed detector section.
    """
    if source == "none" or full_shape is None:
        return None
    view = header if isinstance(header, HeaderView) else HeaderView(header)
    if source in ("xorgsubf", "ltv"):
        origin = _origin_from_offsets(view, source)
    else:
        origin = _origin_from_section(view, source, shape, binning, data_offset)
    full = full_readout(full_shape, binning)
    if origin is None:
        if shape != full and extra is not None:
            extra["window"] = (f"frame {shape[0]}x{shape[1]} is smaller than the full readout "
                               f"{full[0]}x{full[1]} but no {'/'.join(_KEYWORDS[source])} "
                               "says where: it keeps its own set-up")
        return None
    x0, y0 = origin
    ny, nx = shape
    section = f"[{x0 + 1}:{x0 + nx},{y0 + 1}:{y0 + ny}]"
    if x0 + nx > full[1] or y0 + ny > full[0]:
        raise InvalidValueError(
            f"window {section} ({'/'.join(_KEYWORDS[source])}) reaches outside the full "
            f"readout of {full[1]}x{full[0]} pixels at binning {binning[0]}x{binning[1]}")
    if (x0, y0) == (0, 0) and shape == full:
        return None
    return section
