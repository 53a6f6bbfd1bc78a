"""Where a frame's pixels are: its image shape, its binning and its sections.

Pure, like :mod:`nightlog.header.normalize`, which calls these; a subarray's place
on the detector is :mod:`nightlog.header.window`'s. The rules:

* **shape** ``(ny, nx)``: the ``shape`` argument wins (compressed files); else
  NAXIS2, NAXIS1, each at least 1, with NAXIS (when present) 2.
* **binning** ``(x, y)``: the first of the profile's ``binning_keywords`` groups
  with a value, one keyword holding ``'x y'`` (``CCDSUM = '2 2'``, ``'2x2'``) or
  one keyword per axis; each 1..1024. None at all is 1x1, and ``extra`` says so.
* **sections** (data, trim, overscan, CCD): the profile gives a literal FITS section
  (applied only to frames of its ``full_shape``) or the keyword that holds one;
  either is checked against the image shape. ``CCDSEC`` is in unbinned detector
  pixels, so only its form is checked. A bad header section is refused, or noted
  and ignored with the profile's ``lenient_sections``; see ``docs/profiles.md``.
"""

from __future__ import annotations

from nightlog.errors import InvalidValueError, MissingKeywordError, SectionError
from nightlog.header.profiles.model import InstrumentProfile
from nightlog.header.values import HeaderView, describe, parse_int, text_value
from nightlog.sections import parse_section

__all__ = ["MAX_BINNING", "frame_binning", "frame_section", "frame_shape"]

#: Largest binning factor of either axis a header may give.
MAX_BINNING = 1024
#: The bounds CCDSEC is checked against: no real detector reaches them.
_DETECTOR_BOUND = (10**9, 10**9)


def frame_shape(view: HeaderView, shape: tuple[int, int] | None) -> tuple[int, int]:
    """``(ny, nx)`` of the image in pixels: ``shape`` when given, else NAXIS2, NAXIS1.

    Raises
    ------
    MissingKeywordError
        No ``shape`` and NAXIS1 or NAXIS2 absent.
    InvalidValueError
        ``shape`` not two positive ints, NAXIS not 2, or an axis below 1.
    """
    if shape is not None:
        if (len(shape) != 2 or not all(isinstance(n, int) and n >= 1 for n in shape)):
            raise InvalidValueError(f"shape={describe(shape)}: expected (ny, nx) positive ints")
        return (int(shape[0]), int(shape[1]))
    naxis = view.get("NAXIS")
    if naxis is not None and parse_int("NAXIS", naxis) != 2:
        raise InvalidValueError(f"NAXIS={describe(naxis)}: expected a 2-D image")
    sizes = []
    for keyword in ("NAXIS2", "NAXIS1"):
        value = view.get(keyword)
        if value is None:
            raise MissingKeywordError(f"{keyword} is missing: the image shape is unknown")
        size = parse_int(keyword, value)
        if size < 1:
            raise InvalidValueError(f"{keyword}={describe(value)}: an axis must be >= 1")
        sizes.append(size)
    return (sizes[0], sizes[1])


def frame_binning(view: HeaderView, profile: InstrumentProfile,
                  extra: dict[str, str]) -> tuple[int, int]:
    """``(x, y)`` binning (detector pixels per image pixel) from the profile's keywords.

    Absent: ``(1, 1)``, noted in ``extra["binning"]``.

    Raises
    ------
    MissingKeywordError
        One keyword of a per-axis pair present without the other.
    InvalidValueError
        A value that is not two integers, or a factor outside 1..``MAX_BINNING``.
    """
    for group in profile.binning_keywords:
        values = [view.get(k) for k in group]
        if all(v is None for v in values):
            continue
        if len(group) == 1:
            keyword, value = group[0], values[0]
            parts = str(value).replace("x", " ").replace("X", " ").replace(",", " ").split()
            if len(parts) != 2:
                raise InvalidValueError(f"{keyword}={describe(value)}: expected 'x y' binning")
            pair = [parse_int(keyword, p) for p in parts]
        else:
            missing = [k for k, v in zip(group, values, strict=True) if v is None]
            if missing:
                raise MissingKeywordError(f"{missing[0]} is missing while {group} give binning")
            pair = [parse_int(k, v) for k, v in zip(group, values, strict=True)]
        for number in pair:
            if not 1 <= number <= MAX_BINNING:
                raise InvalidValueError(f"{'/'.join(group)}={describe(values)}: "
                                        f"binning must be 1..{MAX_BINNING}")
        return (pair[0], pair[1])
    extra["binning"] = "absent; 1x1 assumed"
    return (1, 1)


def frame_section(view: HeaderView, profile: InstrumentProfile, key: str,
                  shape: tuple[int, int], extra: dict[str, str]) -> str | None:
    """The section ``profile.<key>`` designates, checked against ``shape``.

    ``key`` is the profile attribute: ``'datasec'``, ``'trim'``, ``'overscan'`` or
    ``'ccdsec'``. CCDSEC is in unbinned detector pixels, not image pixels, so it is
    given a shape no real detector reaches: only its form is checked.

    Returns
    -------
    str or None
        The FITS section without spaces; ``None`` when the profile names none, its
        keyword is absent, a literal section does not apply to this shape, or (with
        ``lenient_sections``) the header's is bad: ``extra`` then says why.

    Raises
    ------
    SectionError
        A section that is malformed or reaches outside the image.
    """
    bounds = _DETECTOR_BOUND if key == "ccdsec" else shape
    spec: str | None = getattr(profile, key)
    if spec is None:
        return None
    if spec.startswith("["):
        if profile.full_shape is not None and shape != profile.full_shape:
            extra[f"{key}_note"] = (f"profile {key} {spec} not applied: frame shape "
                                    f"{shape} is not the full readout {profile.full_shape}")
            return None
        try:
            parse_section(spec, bounds)
        except SectionError as exc:
            raise SectionError(f"profile {profile.name!r} {key}: {exc}") from None
        return spec
    value = view.get(spec)
    if value is None:
        return None
    text = text_value(value)
    try:
        parse_section(str(text), bounds)
    except SectionError as exc:
        if profile.lenient_sections:
            extra[f"ignored_{spec}"] = f"{spec}={describe(value)}: {exc}"
            return None
        raise SectionError(f"{spec}={describe(value)}: {exc}") from None
    return str(text).replace(" ", "")
