"""A detector read through several amplifiers, each written as its own image extension.

A profile describes the amplifiers as data (:class:`AmplifierSpec`, from the
``amplifiers`` key); :func:`~nightlog.header.amplifier_layout.amplifier_layout`
applies it to one file's headers and returns the :class:`AmplifierLayout` of that
file: which HDU holds which amplifier, its data, overscan and detector sections, gain,
read noise, saturation and nonlinearity, and where it lands in the assembled detector
image. Pure: headers in (plain mappings), values out; nothing reads pixels.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nightlog.header.values import HeaderView, text_value

__all__ = ["MEASURED", "Amplifier", "AmplifierLayout", "AmplifierSpec", "ExtensionHeader"]

#: The value of ``gain`` or ``read_noise`` that asks nightlog to measure it.
MEASURED = "measured"


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
