"""The :class:`~nightlog.header.amplifiers.AmplifierLayout` of one file, from its headers.

:func:`amplifier_layout` resolves each amplifier's sections and numbers (extension
first, then primary header) and refuses, with an
:class:`~nightlog.errors.AmplifierError`, a set of extensions that does not make the
detector (see :mod:`nightlog.header.amplifiers`). Pure: header values in, a layout out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from nightlog.errors import AmplifierError, SectionError
from nightlog.header.amplifiers import (
    MEASURED,
    Amplifier,
    AmplifierLayout,
    AmplifierSpec,
    ExtensionHeader,
)
from nightlog.header.values import HeaderView, describe, parse_float, text_value
from nightlog.sections import parse_section, section_shape

__all__ = ["amplifier_layout"]

_DETSEC_RE = re.compile(r"^\s*\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]\s*$")


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


def _default_name(ext: ExtensionHeader, extensions: Sequence[ExtensionHeader]) -> str:
    """The extension's EXTNAME; ``'SCI,2'`` where several share it (BANZAI's four
    ``SCI`` extensions told apart by EXTVER); ``HDU<n>`` without one."""
    if ext.extname is None:
        return f"HDU{ext.index}"
    shared = sum(e.extname == ext.extname for e in extensions) > 1
    return f"{ext.extname},{ext.extver}" if shared else ext.extname


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
        resolved.append((spec, ext, spec.name or _default_name(ext, extensions)))
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
