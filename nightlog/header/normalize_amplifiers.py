"""A multi-amplifier file's headers -> one :class:`NormalizedHeader` and its amplifiers.

The frame's facts (type, exposure, filter, time, set-up) are read as for any frame
from the primary header merged with the first amplifier's extension; its shape is
the assembled detector's, and the sections of one amplifier are not the frame's
(``datasec``, ``biassec``, ``trimsec``, ``ccdsec`` are ``None``: each amplifier
keeps its own in the layout). The assembled image is in electrons, so the frame's
``gain`` is 1 and its ``read_noise`` the amplifiers' root mean square; ``extra``
says so.
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

__all__ = ["normalize_amplifiers"]


def normalize_amplifiers(values: Mapping[str, Any], primary: Mapping[str, Any],
                         extensions: Sequence[ExtensionHeader], profile: InstrumentProfile,
                         *, site: Site | None = None
                         ) -> tuple[NormalizedHeader, AmplifierLayout]:
    """Describe a multi-amplifier frame and its amplifiers.

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
        several CCDs (one product per CCD is not catalogued yet).
    HeaderError
        The frame's own facts cannot be read (see :func:`normalize_header`).
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
    ccds = layout.ccd_names
    if len(ccds) > 1:
        raise AmplifierError(
            f"a mosaic of {len(ccds)} CCDs ({', '.join(ccds)}): the archive catalogues one "
            "CCD per file; split the file per CCD, or reduce it with "
            "nightlog.reduction.amplifiers.assemble_amplifiers(ccd=...)")
    fields = {"instrument": first.instrument, "detector": first.detector,
              "binning": first.binning, "readout_mode": first.readout_mode,
              "shape": layout.shape, "filter": first.filter, "exptime": first.exptime,
              "set_temp": first.set_temp}
    extra = dict(first.extra)
    extra["amplifiers"] = (f"{len(layout.amplifiers)} amplifiers assembled into "
                           f"{layout.shape[1]}x{layout.shape[0]}: the frame is in electrons "
                           "(gain 1); gains " + ", ".join(
                               f"{a.name} {a.gain if a.gain is not None else '?'} "
                               f"({a.gain_source})" for a in layout.amplifiers))
    unknown = [a.name for a in layout.amplifiers if a.gain is None]
    if unknown:
        extra["amplifier_gain"] = (f"no gain for {', '.join(unknown)}: assembled with "
                                   "1 e-/ADU until one is given")
    norm = dataclasses.replace(
        first, shape=layout.shape, datasec=None, trimsec=None, biassec=None, ccdsec=None,
        gain=1.0, read_noise=layout.read_noise_rms,
        saturation=None, setup_key=setup_key(fields, profile.setup_keys), extra=extra)
    return norm, layout
