"""A detector read through several amplifiers, each written as its own image extension.

A profile describes the amplifiers as data (:class:`AmplifierSpec`, from the
``amplifiers`` key); :func:`amplifier_layout` applies it to one file's headers and
returns the :class:`AmplifierLayout` of that file: which HDU holds which amplifier,
its data, overscan and detector sections, gain, read noise, saturation and
nonlinearity, and where it lands in the assembled detector image. Pure: headers in
(plain mappings), values out; nothing reads pixels.

Sections follow the IRAF/NOAO convention: ``DATASEC`` and ``BIASSEC`` in binned
pixels of the extension, ``DETSEC`` in unbinned detector pixels; ``x1 > x2`` (or
``y1 > y2``) in ``DETSEC`` means the amplifier reads from the other corner and its
pixels are flipped on that axis when placed (the LCO Sinistro's amplifiers 2-4).

A file whose extensions do not make the detector is refused with an
:class:`~nightlog.errors.AmplifierError` naming the problem: an extension the
profile names is missing, an image extension it does not name is present, the
extensions differ in shape, a section reaches outside its extension, a ``DETSEC``
does not have its ``DATASEC``'s size, or the ``DETSEC`` values overlap or leave a
gap in the detector.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nightlog.errors import AmplifierError, SectionError
from nightlog.header.values import HeaderView, describe, parse_float, text_value
from nightlog.sections import parse_section, section_shape

__all__ = ["MEASURED", "Amplifier", "AmplifierLayout", "AmplifierSpec", "ExtensionHeader",
           "amplifier_layout"]

#: The value of ``gain`` or ``read_noise`` that asks nightlog to measure it.
MEASURED = "measured"
_DETSEC_RE = re.compile(r"^\s*\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]\s*$")
_BOUND = (10**9, 10**9)


@dataclass(frozen=True, slots=True)
class AmplifierSpec:
    """One amplifier as a profile describes it (``amplifiers = [{ ... }, ...]``).

    Attributes
    ----------
    hdu : str or int
        ``EXTNAME`` (``'AMP1'``; ``'SCI,2'`` for EXTNAME and EXTVER) or HDU index.
    datasec, biassec, detsec : str or None
        A header keyword of the extension (``'DATASEC'``) or a literal section.
        ``biassec = None``: no overscan for this amplifier.
    gain, read_noise : str, float or None
        A keyword, a number (e-/ADU, e-), ``'measured'``, or ``None``: the
        profile's ``gain_keywords`` / ``read_noise_keywords``.
    saturation : str, float or None
        A keyword or a raw level (ADU); ``None``: the profile's keywords.
    nonlinearity : tuple of float or None
        Polynomial ``c0 + c1 x + c2 x² ...`` of the overscan-subtracted ADU.
    name : str or None
        A name for the cards and messages (default: the HDU's).
    """

    hdu: str | int
    datasec: str | None = "DATASEC"
    biassec: str | None = "BIASSEC"
    detsec: str | None = "DETSEC"
    gain: str | float | None = None
    read_noise: str | float | None = None
    saturation: str | float | None = None
    nonlinearity: tuple[float, ...] | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ExtensionHeader:
    """One image HDU of a file: its index, header values and shape ``(ny, nx)``."""

    index: int
    values: Mapping[str, Any]
    shape: tuple[int, int]
    view: HeaderView = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "view", HeaderView(self.values))

    @property
    def extname(self) -> str | None:
        name = text_value(self.view.get("EXTNAME"))
        return None if name is None else name.upper()

    @property
    def extver(self) -> int:
        value = self.view.get("EXTVER")
        try:
            return int(value) if value is not None else 1
        except (TypeError, ValueError):
            return 1


@dataclass(frozen=True, slots=True)
class Amplifier:
    """One amplifier of one file, its numbers resolved.

    ``gain`` (e-/ADU) and ``read_noise`` (e-) are ``None`` when nothing gave them
    (``'measured'``, or no keyword): ``*_source`` says so. ``rows`` and ``cols`` are
    where its trimmed pixels go in the assembled image (binned pixels, 0-based
    start, stop), ``flip_y`` and ``flip_x`` whether they are reversed first.
    """

    name: str
    hdu: int
    datasec: str
    biassec: str | None
    detsec: str
    gain: float | None
    gain_source: str
    read_noise: float | None
    read_noise_source: str
    saturation: float | None
    nonlinearity: tuple[float, ...] | None
    rows: tuple[int, int]
    cols: tuple[int, int]
    flip_y: bool
    flip_x: bool
    ccd: str | None = None


@dataclass(frozen=True, slots=True)
class AmplifierLayout:
    """The amplifiers of one file and the detector image they assemble into.

    Attributes
    ----------
    amplifiers : tuple of Amplifier
        In the profile's (or the file's) order.
    raw_shape : tuple of int
        ``(ny, nx)`` shared by every amplifier's extension.
    shape : tuple of int
        ``(ny, nx)`` of the assembled image, binned pixels.
    binning : tuple of int
        ``(x, y)``.
    crosstalk : tuple of tuple of float or None
        ``crosstalk[i][j]``: fraction of amplifier ``i``'s signal that appears in
        amplifier ``j`` (read at the same time, same pixel of the readout).
    overscan_skip : int
        Overscan columns next to the data that every amplifier ignores.
    """

    amplifiers: tuple[Amplifier, ...]
    raw_shape: tuple[int, int]
    shape: tuple[int, int]
    binning: tuple[int, int] = (1, 1)
    crosstalk: tuple[tuple[float, ...], ...] | None = None
    overscan_skip: int = 0

    @property
    def hdus(self) -> tuple[int, ...]:
        return tuple(a.hdu for a in self.amplifiers)

    @property
    def ccd_names(self) -> tuple[str, ...]:
        """The CCDs of a mosaic, in order of first appearance (one ``''`` when single)."""
        seen: dict[str, None] = {}
        for amp in self.amplifiers:
            seen.setdefault(amp.ccd or "", None)
        return tuple(seen)

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready form (:meth:`from_json` rebuilds it)."""
        return {
            "raw_shape": list(self.raw_shape), "shape": list(self.shape),
            "binning": list(self.binning), "overscan_skip": self.overscan_skip,
            "crosstalk": None if self.crosstalk is None else [list(r) for r in self.crosstalk],
            "amplifiers": [{
                "name": a.name, "hdu": a.hdu, "datasec": a.datasec, "biassec": a.biassec,
                "detsec": a.detsec, "gain": a.gain, "gain_source": a.gain_source,
                "read_noise": a.read_noise, "read_noise_source": a.read_noise_source,
                "saturation": a.saturation,
                "nonlinearity": None if a.nonlinearity is None else list(a.nonlinearity),
                "rows": list(a.rows), "cols": list(a.cols), "flip_y": a.flip_y,
                "flip_x": a.flip_x, "ccd": a.ccd} for a in self.amplifiers],
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> AmplifierLayout:
        amps = tuple(Amplifier(
            name=a["name"], hdu=int(a["hdu"]), datasec=a["datasec"], biassec=a["biassec"],
            detsec=a["detsec"], gain=a["gain"], gain_source=a["gain_source"],
            read_noise=a["read_noise"], read_noise_source=a["read_noise_source"],
            saturation=a["saturation"],
            nonlinearity=None if a["nonlinearity"] is None else tuple(a["nonlinearity"]),
            rows=(int(a["rows"][0]), int(a["rows"][1])),
            cols=(int(a["cols"][0]), int(a["cols"][1])),
            flip_y=bool(a["flip_y"]), flip_x=bool(a["flip_x"]), ccd=a.get("ccd"))
            for a in value["amplifiers"])
        xt = value.get("crosstalk")
        return cls(amplifiers=amps, raw_shape=_pair(value["raw_shape"]),
                   shape=_pair(value["shape"]), binning=_pair(value["binning"]),
                   crosstalk=None if xt is None else tuple(tuple(float(c) for c in r)
                                                           for r in xt),
                   overscan_skip=int(value.get("overscan_skip", 0)))

    @property
    def gains(self) -> tuple[float | None, ...]:
        return tuple(a.gain for a in self.amplifiers)

    @property
    def read_noise_rms(self) -> float | None:
        """Root mean square of the amplifiers' read noise (e-), ``None`` if one is unknown."""
        values = [a.read_noise for a in self.amplifiers]
        if any(v is None for v in values):
            return None
        return math.sqrt(sum(v * v for v in values if v is not None) / len(values))


def _pair(value: Sequence[Any]) -> tuple[int, int]:
    return (int(value[0]), int(value[1]))


def _lookup(ext: ExtensionHeader, primary: HeaderView, keyword: str) -> Any:
    value = ext.view.get(keyword)
    if value is None:
        value = primary.get(keyword)
    return value


def _section(spec: str | None, ext: ExtensionHeader, primary: HeaderView,
             what: str, name: str, *, required: bool) -> str | None:
    if spec is None:
        return None
    if spec.startswith("["):
        return spec
    value = _lookup(ext, primary, spec)
    if value is None or not str(value).strip():
        if required:
            raise AmplifierError(f"amplifier {name}: no {what} ({spec} is missing)")
        return None
    return str(text_value(value)).replace(" ", "")


def _number(spec: str | float | None, keywords: Sequence[str], override: float | None,
            ext: ExtensionHeader, primary: HeaderView, what: str,
            ) -> tuple[float | None, str]:
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return float(spec), "profile"
    if spec == MEASURED:
        return None, MEASURED
    if spec is None and override is not None:
        return float(override), "profile"
    for keyword in ([spec] if isinstance(spec, str) else list(keywords)):
        value = _lookup(ext, primary, keyword)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        number = parse_float(keyword, value)
        if not math.isfinite(number) or number < 0 or (what == "gain" and number == 0):
            raise AmplifierError(f"{keyword}={describe(value)}: not a usable {what}")
        return number, f"header {keyword}"
    return None, "none given"


def _detsec(text: str, name: str) -> tuple[int, int, int, int]:
    match = _DETSEC_RE.match(text)
    if match is None:
        raise AmplifierError(f"amplifier {name}: DETSEC {text!r} is not a section "
                             "'[x1:x2,y1:y2]' of detector pixels")
    x1, x2, y1, y2 = (int(g) for g in match.groups())
    if min(x1, x2, y1, y2) < 1:
        raise AmplifierError(f"amplifier {name}: DETSEC {text!r} starts below pixel 1")
    return x1, x2, y1, y2


def _find(spec: AmplifierSpec, exts: Sequence[ExtensionHeader]) -> ExtensionHeader:
    if isinstance(spec.hdu, int):
        for ext in exts:
            if ext.index == spec.hdu:
                return ext
        raise AmplifierError(f"image extension {spec.hdu} is missing: the profile's "
                             "amplifiers name it")
    name, _, ver = spec.hdu.upper().partition(",")
    version = int(ver) if ver.strip() else None
    for ext in exts:
        if ext.extname == name.strip() and (version is None or ext.extver == version):
            return ext
    raise AmplifierError(f"extension {spec.hdu!r} is missing: the profile's amplifiers "
                         "name it")


def _spec_for_all(ext: ExtensionHeader) -> AmplifierSpec:
    return AmplifierSpec(hdu=ext.index)


def amplifier_layout(primary: Mapping[str, Any], extensions: Sequence[ExtensionHeader],
                     specs: Sequence[AmplifierSpec] | None, *,
                     binning: tuple[int, int] = (1, 1),
                     gain_keywords: Sequence[str] = ("GAIN",),
                     read_noise_keywords: Sequence[str] = ("RDNOISE",),
                     saturation_keywords: Sequence[str] = ("SATURATE",),
                     gain: float | None = None, read_noise: float | None = None,
                     saturation: float | None = None,
                     crosstalk: tuple[tuple[float, ...], ...] | None = None,
                     ccd_keyword: str | None = None, overscan_skip: int = 0,
                     ) -> AmplifierLayout:
    """The amplifiers of one file, checked against each other.

    Parameters
    ----------
    primary : mapping
        The primary header's values.
    extensions : sequence of ExtensionHeader
        Every image HDU of the file (headers only).
    specs : sequence of AmplifierSpec or None
        The profile's amplifiers; ``None``: every image extension is one, its
        sections from ``DATASEC``, ``BIASSEC`` and ``DETSEC``.
    binning : tuple of int
        ``(x, y)`` binning: ``DETSEC`` is unbinned, ``DATASEC`` binned.
    gain_keywords, read_noise_keywords, saturation_keywords : sequence of str
        Keywords tried (extension, then primary) where a spec names none.
    gain, read_noise, saturation : float or None
        The profile's overrides, where a spec gives no value of its own.
    crosstalk : tuple of tuple of float or None
        Square matrix, one row and column per amplifier.
    ccd_keyword : str or None
        Keyword naming each extension's CCD, for a mosaic.
    overscan_skip : int
        Overscan columns next to the data to ignore.

    Raises
    ------
    AmplifierError
        The extensions do not make the detector (see the module doc).
    """
    view = HeaderView(primary)
    if specs is None:
        if not extensions:
            raise AmplifierError("no image extension in the file")
        specs = [_spec_for_all(e) for e in extensions]
    used: set[int] = set()
    resolved: list[tuple[AmplifierSpec, ExtensionHeader, str]] = []
    for spec in specs:
        ext = _find(spec, extensions)
        if ext.index in used:
            raise AmplifierError(f"extension {spec.hdu!r} is named by two amplifiers")
        used.add(ext.index)
        resolved.append((spec, ext, spec.name or ext.extname or f"HDU{ext.index}"))
    extra = [e for e in extensions if e.index not in used]
    if extra:
        names = ", ".join(f"{e.index} ({e.extname or 'no EXTNAME'})" for e in extra)
        raise AmplifierError(f"extra image extension(s) {names}: not among the "
                             f"{len(specs)} amplifiers the profile describes")
    shapes = {ext.shape for _, ext, _ in resolved}
    if len(shapes) > 1:
        listed = ", ".join(f"{n} {e.shape[0]}x{e.shape[1]}" for _, e, n in resolved)
        raise AmplifierError(f"the amplifiers' extensions differ in shape: {listed}")
    raw_shape = next(iter(shapes))
    if crosstalk is not None and (len(crosstalk) != len(resolved)
                                  or any(len(r) != len(resolved) for r in crosstalk)):
        raise AmplifierError(f"the crosstalk matrix is {len(crosstalk)} rows for "
                             f"{len(resolved)} amplifiers")
    bx, by = binning
    boxes: list[tuple[int, int, int, int]] = []
    partial = []
    for spec, ext, name in resolved:
        datasec = _section(spec.datasec, ext, view, "data section", name, required=True)
        biassec = _section(spec.biassec, ext, view, "overscan section", name,
                           required=False)
        detsec = _section(spec.detsec, ext, view, "detector section", name, required=True)
        assert datasec is not None and detsec is not None
        try:
            data_shape = section_shape(parse_section(datasec, raw_shape), raw_shape)
            if biassec is not None:
                parse_section(biassec, raw_shape)
        except SectionError as exc:
            raise AmplifierError(f"amplifier {name}: {exc}") from None
        x1, x2, y1, y2 = _detsec(detsec, name)
        xlo, xhi, ylo, yhi = min(x1, x2), max(x1, x2), min(y1, y2), max(y1, y2)
        width, height = xhi - xlo + 1, yhi - ylo + 1
        if width % bx or height % by or (height // by, width // bx) != data_shape:
            raise AmplifierError(
                f"amplifier {name}: DETSEC {detsec} ({width}x{height} detector pixels, "
                f"binning {bx}x{by}) does not hold DATASEC {datasec} "
                f"({data_shape[1]}x{data_shape[0]} pixels)")
        boxes.append((xlo, xhi, ylo, yhi))
        g, g_src = _number(spec.gain, gain_keywords, gain, ext, view, "gain")
        rn, rn_src = _number(spec.read_noise, read_noise_keywords, read_noise, ext, view,
                             "read noise")
        sat, _ = _number(spec.saturation, saturation_keywords, saturation, ext, view,
                         "saturation")
        ccd = None
        if ccd_keyword is not None:
            value = _lookup(ext, view, ccd_keyword)
            ccd = None if value is None else str(text_value(value))
        partial.append((name, ext.index, datasec, biassec, detsec, g, g_src, rn, rn_src, sat,
                        spec.nonlinearity, (x1 > x2), (y1 > y2), ccd))
    x0 = min(b[0] for b in boxes)
    y0 = min(b[2] for b in boxes)
    _check_tiling(boxes, [p[0] for p in partial], by_ccd=[p[-1] for p in partial])
    if ccd_keyword is None:
        shape = ((max(b[3] for b in boxes) - y0 + 1) // by,
                 (max(b[1] for b in boxes) - x0 + 1) // bx)
    else:
        shape = _ccd_shape(boxes, [p[-1] for p in partial], binning)
    amps = []
    for (xlo, xhi, ylo, yhi), p in zip(boxes, partial, strict=True):
        name, hdu, datasec, biassec, detsec, g, g_src, rn, rn_src, sat, nl, fx, fy, ccd = p
        if ccd_keyword is not None:
            ccd_boxes = [b for b, q in zip(boxes, partial, strict=True) if q[-1] == ccd]
            cx0, cy0 = min(b[0] for b in ccd_boxes), min(b[2] for b in ccd_boxes)
        else:
            cx0, cy0 = x0, y0
        rows = ((ylo - cy0) // by, (yhi - cy0 + 1) // by)
        cols = ((xlo - cx0) // bx, (xhi - cx0 + 1) // bx)
        amps.append(Amplifier(name=name, hdu=hdu, datasec=datasec, biassec=biassec,
                              detsec=detsec, gain=g, gain_source=g_src, read_noise=rn,
                              read_noise_source=rn_src, saturation=sat, nonlinearity=nl,
                              rows=rows, cols=cols, flip_y=fy, flip_x=fx, ccd=ccd))
    return AmplifierLayout(amplifiers=tuple(amps), raw_shape=raw_shape, shape=shape,
                           binning=binning, crosstalk=crosstalk, overscan_skip=overscan_skip)


def _check_tiling(boxes: Sequence[tuple[int, int, int, int]], names: Sequence[str], *,
                  by_ccd: Sequence[str | None]) -> None:
    """The ``DETSEC`` boxes of each CCD neither overlap nor leave a gap."""
    for ccd in dict.fromkeys(by_ccd):
        idx = [i for i, c in enumerate(by_ccd) if c == ccd]
        for n, i in enumerate(idx):
            for j in idx[n + 1:]:
                a, b = boxes[i], boxes[j]
                if a[0] <= b[1] and b[0] <= a[1] and a[2] <= b[3] and b[2] <= a[3]:
                    raise AmplifierError(f"amplifiers {names[i]} and {names[j]} overlap "
                                         "on the detector (their DETSEC)")
        sub = [boxes[i] for i in idx]
        area = sum((b[1] - b[0] + 1) * (b[3] - b[2] + 1) for b in sub)
        full = ((max(b[1] for b in sub) - min(b[0] for b in sub) + 1)
                * (max(b[3] for b in sub) - min(b[2] for b in sub) + 1))
        if area != full:
            where = f" of CCD {ccd}" if ccd else ""
            raise AmplifierError(
                f"the amplifiers{where} cover {area} of the {full} detector pixels their "
                "DETSEC span: an amplifier is missing or a DETSEC is wrong")


def _ccd_shape(boxes: Sequence[tuple[int, int, int, int]], ccds: Sequence[str | None],
               binning: tuple[int, int]) -> tuple[int, int]:
    """One CCD's assembled shape; every CCD of a mosaic must have the same one."""
    shapes = set()
    for ccd in dict.fromkeys(ccds):
        sub = [b for b, c in zip(boxes, ccds, strict=True) if c == ccd]
        shapes.add(((max(b[3] for b in sub) - min(b[2] for b in sub) + 1) // binning[1],
                    (max(b[1] for b in sub) - min(b[0] for b in sub) + 1) // binning[0]))
    if len(shapes) > 1:
        raise AmplifierError(f"the CCDs of the mosaic differ in shape: {sorted(shapes)}")
    return next(iter(shapes))
