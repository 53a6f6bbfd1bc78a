"""A multi-amplifier file's headers -> one :class:`NormalizedHeader` and its amplifiers
per CCD.

The frame's facts (type, exposure, filter, time, set-up) are read as for any frame
from the primary header merged with the first amplifier's extension (of its CCD,
for a mosaic); its shape is the assembled CCD's, and the sections of one amplifier
are not the frame's (``datasec``, ``biassec``, ``trimsec``, ``ccdsec`` are
``None``: each amplifier keeps its own in the layout). The assembled image is in
electrons, so the frame's ``gain`` is 1 and its ``read_noise`` the amplifiers' root
mean square; ``extra`` says so.

A mosaic (a profile with ``ccd``, the file's extensions naming several CCDs) is
one frame per CCD (:func:`normalize_ccds`), each with the layout of its own
amplifiers alone and its CCD's name in ``ccd`` and in its set-up key; the file's
tiling is checked for every CCD first, so a file one of whose CCDs does not tile is
refused whole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from nightlog.errors import AmplifierError
from nightlog.header.amplifier_layout import amplifier_layout
from nightlog.header.amplifiers import AmplifierLayout, ExtensionHeader
from nightlog.header.model import NormalizedHeader, Site
from nightlog.header.normalize import normalize_header, setup_key
from nightlog.header.profiles.model import InstrumentProfile

__all__ = ["ccd_layout", "normalize_amplifiers", "normalize_ccds"]


def normalize_amplifiers(values: Mapping[str, Any], primary: Mapping[str, Any],
                         extensions: Sequence[ExtensionHeader], profile: InstrumentProfile,
                         *, site: Site | None = None
                         ) -> tuple[NormalizedHeader, AmplifierLayout]:
    """Describe a multi-amplifier frame of one CCD and its amplifiers.

    Parameters
    ----------
    values : mapping
        The first image extension's header merged with the primary's.
    primary : mapping
        The primary header alone.
    extensions : sequence of ExtensionHeader
        Every image HDU (headers only).
    profile : InstrumentProfile
        A profile with ``amplifiers``.

    Raises
    ------
    AmplifierError
        The extensions do not make the detector, or the file is a mosaic of
        several CCDs (:func:`normalize_ccds` describes each).
    HeaderError
        The frame's own facts cannot be read (see :func:`normalize_header`).
    """
    described = normalize_ccds(values, primary, extensions, profile, site=site)
    if len(described) > 1:
        names = ", ".join(norm.ccd or "?" for norm, _ in described)
        raise AmplifierError(f"a mosaic of {len(described)} CCDs ({names}): one frame "
                             "per CCD (normalize_ccds)")
    return described[0]


def ccd_layout(layout: AmplifierLayout, ccd: str) -> AmplifierLayout:
    """The layout of one CCD of a mosaic: its amplifiers alone (their placement is
    already the CCD's own), the crosstalk between them alone.

    Raises
    ------
    AmplifierError
        No amplifier of ``layout`` is on ``ccd``.
    """
    chosen = [i for i, a in enumerate(layout.amplifiers) if (a.ccd or "") == ccd]
    if not chosen:
        raise AmplifierError(f"no amplifier of CCD {ccd!r} in the layout")
    xt = layout.crosstalk
    return dataclasses.replace(
        layout, amplifiers=tuple(layout.amplifiers[i] for i in chosen),
        crosstalk=None if xt is None else tuple(tuple(xt[i][j] for j in chosen)
                                                for i in chosen))


def normalize_ccds(values: Mapping[str, Any], primary: Mapping[str, Any],
                   extensions: Sequence[ExtensionHeader], profile: InstrumentProfile,
                   *, site: Site | None = None
                   ) -> tuple[tuple[NormalizedHeader, AmplifierLayout], ...]:
    """Describe each CCD of a multi-amplifier file: one frame and its amplifiers per CCD.

    Parameters
    ----------
    values : mapping
        The first image extension's header merged with the primary's.
    primary : mapping
        The primary header alone.
    extensions : sequence of ExtensionHeader
        Every image HDU (headers only).
    profile : InstrumentProfile
        A profile with ``amplifiers`` (and ``ccd`` for a mosaic).

    Returns
    -------
    tuple of (NormalizedHeader, AmplifierLayout)
        In order of the CCDs' first extension; one for a file of one detector
        (``ccd`` then ``None`` unless the profile's ``ccd`` keyword names it).

    Raises
    ------
    AmplifierError
        The extensions do not make the detector: any CCD's amplifiers overlap,
        leave a gap, or differ in shape from another CCD's (the whole file).
    HeaderError
        A CCD's own facts cannot be read (see :func:`normalize_header`).
    """
    plain = dataclasses.replace(profile, datasec=None, ccdsec=None, overscan=None, trim=None,
                                full_shape=None)
    first = normalize_header(values, plain, site=site,
                             shape=extensions[0].shape if extensions else None)
    layout = amplifier_layout(
        primary, extensions, profile.amplifier_specs, binning=first.binning,
        gain_keywords=profile.gain_keywords, read_noise_keywords=profile.read_noise_keywords,
        saturation_keywords=profile.saturation_keywords, gain=profile.gain,
        read_noise=profile.read_noise, saturation=profile.saturation,
        crosstalk=profile.crosstalk, ccd_keyword=profile.ccd,
        overscan_skip=profile.overscan_skip_columns)
    names = layout.ccd_names
    if len(names) == 1:
        return ((_described(first, layout, profile, names[0] or None), layout),)
    by_index = {e.index: e for e in extensions}
    out = []
    for name in names:
        sub = ccd_layout(layout, name)
        head = by_index[sub.amplifiers[0].hdu]
        if head.index == layout.amplifiers[0].hdu:
            facts = first
        else:
            facts = normalize_header({**primary, **head.values}, plain, site=site,
                                     shape=head.shape)
        out.append((_described(facts, sub, profile, name), sub))
    return tuple(out)


def _described(first: NormalizedHeader, layout: AmplifierLayout, profile: InstrumentProfile,
               ccd: str | None) -> NormalizedHeader:
    """The frame of the CCD ``layout`` assembles (``first``: its header's facts)."""
    fields = {"instrument": first.instrument, "detector": first.detector,
              "binning": first.binning, "readout_mode": first.readout_mode,
              "shape": layout.shape, "filter": first.filter, "exptime": first.exptime,
              "set_temp": first.set_temp, "ccd": ccd}
    keys = profile.setup_keys if ccd is None else (*profile.setup_keys, "ccd")
    extra = dict(first.extra)
    extra["amplifiers"] = (f"{len(layout.amplifiers)} amplifiers assembled into "
                           f"{layout.shape[1]}x{layout.shape[0]}"
                           + (f" (CCD {ccd})" if ccd is not None else "")
                           + ": the frame is in electrons (gain 1); gains " + ", ".join(
                               f"{a.name} {a.gain if a.gain is not None else '?'} "
                               f"({a.gain_source})" for a in layout.amplifiers))
    unknown = [a.name for a in layout.amplifiers if a.gain is None]
    if unknown:
        extra["amplifier_gain"] = (f"no gain for {', '.join(unknown)}: assembled with "
                                   "1 e-/ADU until one is given")
    return dataclasses.replace(
        first, shape=layout.shape, datasec=None, trimsec=None, biassec=None, ccdsec=None,
        gain=1.0, read_noise=layout.read_noise_rms,
        saturation=None, setup_key=setup_key(fields, keys), ccd=ccd, extra=extra)
