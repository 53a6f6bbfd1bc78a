"""Amplifiers into one detector image: the per-amplifier steps, then the assembly.

A CCD read through several amplifiers is written as one image extension per
amplifier, each with its own bias level, overscan, gain and read noise. Every
step that depends on the amplifier is done on its own pixels, in this order
(BANZAI and DRAGONS do the same; ``docs/reduction.md`` has the reasons):

1. **saturation** -- flagged on the raw values (ADU, bias included) against the
   amplifier's own level; non-finite pixels are NO_DATA;
2. **overscan** -- the amplifier's level from its ``BIASSEC`` (per row, or one
   fitted model, as :func:`~nightlog.reduction.overscan.overscan_levels`);
3. **crosstalk** -- ``x_j -= Σ_i c_ij x_i``: amplifiers read at the same time see
   a fraction of each other's signal at the same pixel of the readout;
4. **nonlinearity** -- the profile's polynomial of the overscan-subtracted ADU;
5. **trim** -- to ``DATASEC``;
6. **gain** -- times the amplifier's gain: electrons, so that amplifiers of
   different gains meet without a step;
7. **placement** -- into the detector image at ``DETSEC`` (unbinned, so divided by
   the binning), flipped on an axis where ``DETSEC`` runs backwards.

The result is one CCDData in electrons whose uncertainty is the read noise of the
amplifier each pixel came from (a per-pixel map: the later Poisson term is added
to it), with the SATURATED and NO_DATA bits, and header cards that record each
amplifier's gain, read noise, overscan level and detector section.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty

from nightlog.errors import ReductionError, ShapeMismatchError
from nightlog.header.amplifiers import Amplifier, AmplifierLayout
from nightlog.reduction.mask import MASK_DTYPE, MaskBit
from nightlog.reduction.overscan import OverscanMethod, overscan_levels
from nightlog.sections import parse_section

__all__ = ["assemble_amplifiers", "prepare_amplifier"]

#: Keywords of one amplifier's extension that say nothing true of the assembled image.
_AMPLIFIER_ONLY = ("SIMPLE", "BITPIX", "EXTEND", "XTENSION", "EXTNAME", "EXTVER", "INHERIT",
                   "PCOUNT", "GCOUNT",
                   "DATASEC", "BIASSEC", "TRIMSEC", "DETSEC", "CCDSEC", "AMPNAME", "GAIN",
                   "RDNOISE", "READNOIS", "SATURATE", "MAXLIN", "BUNIT", "BSCALE", "BZERO",
                   "BLANK", "CHECKSUM", "DATASUM")


def _raw(ccd: CCDData | npt.ArrayLike) -> npt.NDArray[np.float32]:
    """The raw values as float32, the input's own array when it is one: read only."""
    data = ccd.data if isinstance(ccd, CCDData) else ccd
    return np.asarray(data, dtype=np.float32)


def _bits(data: npt.NDArray[np.float32], amp: Amplifier) -> npt.NDArray[np.uint16]:
    bits = np.zeros(data.shape, dtype=MASK_DTYPE)
    if amp.saturation is not None:
        bits[data >= np.float32(amp.saturation)] |= MASK_DTYPE(MaskBit.SATURATED)
    bits[~np.isfinite(data)] |= MASK_DTYPE(MaskBit.NO_DATA)
    return bits


def _overscan(data: npt.NDArray[np.float32], amp: Amplifier, layout: AmplifierLayout, *,
              method: OverscanMethod, per_row: bool, model_degree: int | None
              ) -> tuple[npt.NDArray[np.float32], float]:
    """``data`` less the amplifier's overscan (a new array; ``data`` itself when it has
    none), and the mean level."""
    if amp.biassec is None:
        return data, 0.0
    levels = overscan_levels(CCDData(data, unit=u.adu, copy=False), region=amp.biassec,
                             skip_columns=layout.overscan_skip, method=method,
                             model_degree=model_degree, per_row=per_row)
    return data - levels.astype(np.float32)[:, np.newaxis], float(np.mean(levels))


def prepare_amplifier(raw: CCDData | npt.ArrayLike, amplifier: Amplifier,
                      layout: AmplifierLayout, *, method: OverscanMethod = "median",
                      per_row: bool = True, model_degree: int | None = None
                      ) -> npt.NDArray[np.float32]:
    """One amplifier's pixels overscan-subtracted and trimmed, in ADU, as read out.

    The view a characterisation needs (no crosstalk, nonlinearity, gain or
    flip): a pair of biases or flats of one amplifier, compared pixel by pixel.

    Parameters
    ----------
    raw : CCDData or array
        The amplifier's extension, raw ADU (not modified).
    amplifier : Amplifier
        Its entry in ``layout``.
    layout : AmplifierLayout
        The file's amplifiers (for the overscan columns to skip).
    method, per_row, model_degree
        As :func:`~nightlog.reduction.overscan.overscan_levels`.

    Returns
    -------
    numpy.ndarray of float32
        The ``DATASEC`` pixels less the overscan level.
    """
    data = _raw(raw)
    if data.shape != layout.raw_shape:
        raise ShapeMismatchError(f"amplifier {amplifier.name}: shape {data.shape}, the "
                                 f"layout says {layout.raw_shape}")
    data, _ = _overscan(data, amplifier, layout, method=method, per_row=per_row,
                        model_degree=model_degree)
    return np.array(data[parse_section(amplifier.datasec, layout.raw_shape)], copy=True)


def _header(first: CCDData | npt.ArrayLike) -> fits.Header:
    meta = first.meta if isinstance(first, CCDData) else None
    header = fits.Header(meta) if meta else fits.Header()
    for key in _AMPLIFIER_ONLY:
        header.remove(key, ignore_missing=True, remove_all=True)
    for key in [k for k in header if k.startswith("NAXIS")]:
        header.remove(key, ignore_missing=True)
    return header


def assemble_amplifiers(amplifiers: Sequence[CCDData | npt.ArrayLike], layout: AmplifierLayout,
                        *, ccd: str | None = None, method: OverscanMethod = "median",
                        per_row: bool = True, model_degree: int | None = None) -> CCDData:
    """The amplifiers of one readout as one detector image in electrons.

    Parameters
    ----------
    amplifiers : sequence of CCDData or array
        The raw extensions (ADU) in the order of ``layout.amplifiers``; not modified.
    layout : AmplifierLayout
        Sections, gains, read noise, saturation, nonlinearity, crosstalk and
        placement (:func:`nightlog.header.amplifiers.amplifier_layout`).
    ccd : str, optional
        For a mosaic, the CCD to assemble (its amplifiers only); default: all,
        which must then be one CCD.
    method : {'median', 'mean', 'clipped_mean'}
        Overscan statistic.
    per_row : bool
        One overscan level per row (``True``) or one per amplifier.
    model_degree : int, optional
        Fit a polynomial of this degree in the row number to the per-row levels.

    Returns
    -------
    CCDData
        float32 data in electrons of ``layout.shape`` (one CCD's), a
        :class:`~astropy.nddata.StdDevUncertainty` of each pixel's amplifier read
        noise (e-) when every amplifier's is known (else none, and a HISTORY line
        says so), ``flags`` (SATURATED, NO_DATA) and ``mask``; the header is the
        first amplifier's without its sections and numbers, plus ``NAMPS``, and
        ``GAIN_A<n>``, ``RDN_A<n>``, ``OVSC_A<n>`` (ADU) and ``DSEC_A<n>`` per
        amplifier, ``GAIN = 1`` and ``BUNIT = 'electron'``.

    Raises
    ------
    ShapeMismatchError
        An amplifier's array is not ``layout.raw_shape``.
    ReductionError
        The number of arrays is not the layout's, or ``ccd`` names no CCD.
    """
    if len(amplifiers) != len(layout.amplifiers):
        raise ReductionError(f"{len(amplifiers)} arrays for the layout's "
                             f"{len(layout.amplifiers)} amplifiers")
    chosen = [i for i, a in enumerate(layout.amplifiers) if ccd is None or a.ccd == ccd]
    if not chosen:
        raise ReductionError(f"no amplifier of CCD {ccd!r} in the layout")
    if ccd is None and len(layout.ccd_names) > 1:
        raise ReductionError(f"a mosaic of {len(layout.ccd_names)} CCDs: name the ccd")
    datas: list[npt.NDArray[np.float32]] = []
    planes: list[npt.NDArray[np.uint16]] = []
    levels: list[float] = []
    for i, (raw, amp) in enumerate(zip(amplifiers, layout.amplifiers, strict=True)):
        needed = i in chosen or layout.crosstalk is not None
        if not needed:
            datas.append(np.empty((0, 0), np.float32))
            planes.append(np.empty((0, 0), MASK_DTYPE))
            levels.append(0.0)
            continue
        data = _raw(raw)
        if data.shape != layout.raw_shape:
            raise ShapeMismatchError(f"amplifier {amp.name}: shape {data.shape}, the layout "
                                     f"says {layout.raw_shape}")
        planes.append(_bits(data, amp))
        data, level = _overscan(data, amp, layout, method=method, per_row=per_row,
                                model_degree=model_degree)
        levels.append(level)
        datas.append(data)  # never written to below: a view of the input when no overscan
    if layout.crosstalk is not None:
        matrix = np.asarray(layout.crosstalk, dtype=np.float32)
        sources = datas
        datas = [sources[j] - sum((matrix[i, j] * sources[i] for i in range(len(sources))
                                   if i != j and matrix[i, j] != 0),
                                  start=np.zeros(layout.raw_shape, np.float32))
                 if j in chosen else sources[j] for j in range(len(sources))]
    # The amplifiers of a CCD tile it (the layout checked it): every pixel is written.
    out = np.empty(layout.shape, dtype=np.float32)
    bits = np.empty(layout.shape, dtype=MASK_DTYPE)
    noise = np.empty(layout.shape, dtype=np.float32)
    header = _header(amplifiers[chosen[0]])
    known_noise = True
    for n, i in enumerate(chosen):
        amp = layout.amplifiers[i]
        section = parse_section(amp.datasec, layout.raw_shape)
        data = datas[i][section]
        plane = planes[i][section]
        if amp.nonlinearity is not None:
            data = np.polynomial.polynomial.polyval(
                data, np.asarray(amp.nonlinearity, np.float64)).astype(np.float32)
        gain = amp.gain if amp.gain is not None else 1.0
        data = data * np.float32(gain)
        flip = (slice(None, None, -1) if amp.flip_y else slice(None),
                slice(None, None, -1) if amp.flip_x else slice(None))
        target = (slice(*amp.rows), slice(*amp.cols))
        out[target] = data[flip]
        bits[target] = plane[flip]
        if amp.read_noise is None:
            known_noise = False
        noise[target] = np.float32(amp.read_noise or 0.0)
        k = n + 1
        header[f"GAIN_A{k}"] = (gain, f"{amp.name} e-/ADU ({amp.gain_source})"[:47])
        header[f"RDN_A{k}"] = (amp.read_noise if amp.read_noise is not None else "unknown",
                               f"{amp.name} read noise e- ({amp.read_noise_source})"[:47])
        header[f"OVSC_A{k}"] = (round(levels[i], 3), f"{amp.name} mean overscan [ADU]")
        header[f"DSEC_A{k}"] = (amp.detsec, f"{amp.name} detector section")
        if amp.gain is None:
            header.add_history(f"Amplifier {amp.name}: no gain known "
                               f"({amp.gain_source}); 1 e-/ADU assumed")
    header["NAMPS"] = (len(chosen), "amplifiers assembled into this image")
    if ccd is not None:
        header["CCDNAME"] = (ccd, "CCD of the mosaic")
    header["GAIN"] = (1.0, "e-/e-: amplifiers converted to electrons")
    header["BUNIT"] = "electron"
    if layout.crosstalk is not None:
        header.add_history("Crosstalk between amplifiers corrected")
    header.add_history(f"{len(chosen)} amplifiers: overscan "
                       f"({method}{'/row' if per_row else '/amplifier'}), trim, gain, "
                       "assembled by DETSEC")
    if not known_noise:
        header.add_history("Read noise of an amplifier unknown: no read-noise map")
    return CCDData(out, unit=u.electron, meta=header,
                   uncertainty=StdDevUncertainty(noise) if known_noise else None,
                   mask=bits != 0, flags=bits)
