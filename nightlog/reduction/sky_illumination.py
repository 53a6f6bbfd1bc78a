"""A night-sky illumination model: the flat's large-scale error, measured on the sky.

A twilight (or dome) flat records the pixel-to-pixel response faithfully, but its
large-scale illumination is that of the twilight sky (or the screen), not that of
the dark night sky the science frames see: a gradient of a few per cent left in
every reduced frame. As the lecture puts it, a *sky flat* made of the night's own
science frames gives "the closest approximation to the actual sky illumination",
but at low signal-to-noise; so only its large scale is kept, by the low-order
2-D polynomial of :func:`~nightlog.reduction.illumination.fit_illumination`.

:func:`night_sky_illumination` takes the night's science frames of one set-up and
filter, already bias-, dark- and flat-corrected:

1. **sources masked** on each frame: pixels more than ``nsigma`` robust sigma
   above the frame's local sky (the median of ``block x block`` cells), grown by
   ``dilate`` pixels so the wings of stars go too; the frame's bad pixels too;
2. **scaled by its sky**: each frame divided by the median of its unmasked pixels;
3. **combined**: a per-pixel median of the frames after a sigma clip across them
   (``clip_sigma`` robust sigma, what a source the mask missed or a cosmic ray
   leaves); the frames must be dithered, so that each pixel sees sky in some of
   them: pixels with fewer than ``min_values`` sky values are left out;
4. **smoothed**: the 2-D polynomial fitted to the combination, normalised to 1
   over the flat's scale region (so fluxes keep the flat's scale).

:func:`apply_illumination` divides a reduced frame by that model.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from astropy.nddata import CCDData
from astropy.stats import sigma_clip
from scipy import ndimage

from nightlog.errors import ReductionError, ShapeMismatchError
from nightlog.reduction._cards import add_history, header_of, set_card
from nightlog.reduction._frame import new_frame
from nightlog.reduction.illumination import fit_illumination
from nightlog.reduction.science_record import ReducedFrame, StepRecord
from nightlog.sections import Section

__all__ = ["SkyFlatOptions", "SkyIllumination", "apply_illumination", "illuminate_reduced",
           "mask_sources", "night_sky_illumination"]

_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class SkyFlatOptions:
    """How a night-sky illumination model is made.

    Attributes
    ----------
    degree : int
        Total degree of the 2-D polynomial (the profile's ``illumination_degree``).
    min_frames : int
        Fewest frames (the profile's ``illumination_min_frames``), at least 2.
    nsigma : float
        A pixel more than this many robust sigma above its local sky is a source.
    dilate : int
        Pixels by which each source mask is grown.
    block : int
        Side in pixels of the cells of the local sky, and of the blocks the
        polynomial is fitted to.
    clip_sigma : float
        Rejection across the frames before the median, in robust sigma.
    min_values : int
        Fewest sky values a pixel needs in the combination.
    """

    degree: int = 2
    min_frames: int = 5
    nsigma: float = 3.0
    dilate: int = 3
    block: int = 16
    clip_sigma: float = 3.0
    min_values: int = 2


@dataclass(frozen=True, slots=True)
class SkyIllumination:
    """The model and how it was made.

    Attributes
    ----------
    model : CCDData
        The smooth illumination correction, dimensionless, 1 over the scale region
        (float32); cards ``ILLUMDEG``, ``ILLUMC<i>``, ``ILLUMNFR``.
    combined : CCDData
        The sky flat before smoothing (sky-normalised median; NaN where too few
        frames saw sky).
    skies : tuple of float
        Each frame's sky level (median of its unmasked pixels), in its unit.
    masked_fractions : tuple of float
        Fraction of each frame's pixels masked (sources and bad pixels).
    uncovered_fraction : float
        Fraction of pixels with fewer than ``min_values`` sky values (frames
        not dithered enough leave holes where the stars stay).
    residual_rms : float
        Root mean square of the combined sky flat about the model, over its
        ``block``-averaged cells (dimensionless).
    """

    model: CCDData
    combined: CCDData
    skies: tuple[float, ...]
    masked_fractions: tuple[float, ...]
    uncovered_fraction: float
    residual_rms: float


def _bad(ccd: CCDData) -> npt.NDArray[np.bool_]:
    data = np.asarray(ccd.data)
    bad = ~np.isfinite(data)
    if ccd.mask is not None:
        bad |= np.asarray(ccd.mask, dtype=bool)
    return bad


def _local_sky(data: npt.NDArray[np.float64], block: int) -> npt.NDArray[np.float64]:
    """Median of each ``block x block`` cell (NaN ignored), spread back over its pixels."""
    ny, nx = data.shape
    by, bx = -(-ny // block), -(-nx // block)
    padded = np.full((by * block, bx * block), np.nan)
    padded[:ny, :nx] = data
    cells = padded.reshape(by, block, bx, block).transpose(0, 2, 1, 3).reshape(by, bx, -1)
    with np.errstate(all="ignore"), _quiet():
        medians = np.nanmedian(cells, axis=2)
    if np.all(np.isnan(medians)):
        raise ReductionError("no valid pixel to measure the sky on")
    medians = np.where(np.isnan(medians), np.nanmedian(medians), medians)
    return np.repeat(np.repeat(medians, block, axis=0), block, axis=1)[:ny, :nx]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's all-NaN slice warnings (the NaN is what is wanted)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def mask_sources(ccd: CCDData, *, nsigma: float = 3.0, dilate: int = 3,
                 block: int = 16) -> npt.NDArray[np.bool_]:
    """Pixels of ``ccd`` that are not sky: sources (grown) and bad pixels.

    Parameters
    ----------
    ccd : CCDData
        A reduced frame (any unit); its mask counts as not sky. Not modified.
    nsigma : float
        Threshold above the local sky, in robust sigma (1.4826 × the median
        absolute deviation of the frame about its local sky).
    dilate : int
        Pixels by which the source mask is grown (0: not grown).
    block : int
        Side in pixels of the cells whose median is the local sky.

    Returns
    -------
    ndarray of bool
        ``True`` where the pixel is a source, next to one, or bad.
    """
    if nsigma <= 0 or dilate < 0 or block < 1:
        raise ReductionError(f"need nsigma > 0, dilate >= 0, block >= 1; got {nsigma}, "
                             f"{dilate}, {block}")
    bad = _bad(ccd)
    data = np.array(ccd.data, dtype=np.float64)
    data[bad] = np.nan
    residual = data - _local_sky(data, block)
    finite = residual[np.isfinite(residual)]
    if finite.size == 0:
        raise ReductionError("no valid pixel to measure the sky on")
    sigma = _MAD_TO_SIGMA * float(np.median(np.abs(finite - np.median(finite))))
    with np.errstate(invalid="ignore"):
        sources = residual > nsigma * sigma if sigma > 0 else np.zeros(data.shape, bool)
    if dilate:
        sources = ndimage.binary_dilation(sources, iterations=dilate)
    return np.asarray(sources | bad, dtype=bool)


def night_sky_illumination(frames: Sequence[CCDData], *,
                           options: SkyFlatOptions | None = None,
                           scale_region: Section | None = None) -> SkyIllumination:
    """Build the night-sky illumination model of dithered, reduced science frames.

    Parameters
    ----------
    frames : sequence of CCDData
        The night's science frames of one set-up and filter, bias-, dark- and
        flat-corrected, all of one shape. Not modified.
    options : SkyFlatOptions, optional
        Masking, combination and fit settings (defaults as documented there).
    scale_region : tuple of slice, optional
        Numpy slices (the flat's scale region) over which the model is
        normalised to 1; default the whole frame.

    Returns
    -------
    SkyIllumination

    Raises
    ------
    ReductionError
        Fewer frames than ``options.min_frames``, a frame without sky, or too
        few valid blocks for the polynomial.
    ShapeMismatchError
        Frames of different shapes.
    """
    opts = options or SkyFlatOptions()
    if opts.min_frames < 2:
        raise ReductionError(f"a sky flat needs at least 2 frames, not {opts.min_frames}")
    if len(frames) < opts.min_frames:
        raise ReductionError(f"{len(frames)} frame(s) for a night-sky illumination model, "
                             f"{opts.min_frames} needed")
    shape = frames[0].shape
    if any(f.shape != shape for f in frames):
        raise ShapeMismatchError("the frames of a sky flat differ in shape: "
                                 + ", ".join(str(f.shape) for f in frames))
    stack = np.empty((len(frames), *shape), dtype=np.float32)
    masked = np.empty((len(frames), *shape), dtype=bool)
    skies: list[float] = []
    for i, frame in enumerate(frames):
        not_sky = mask_sources(frame, nsigma=opts.nsigma, dilate=opts.dilate, block=opts.block)
        data = np.asarray(frame.data, dtype=np.float64)
        sky_values = data[~not_sky]
        if sky_values.size == 0:
            raise ReductionError(f"frame {i} of the sky flat has no sky pixel left")
        sky = float(np.median(sky_values))
        if not sky > 0:
            raise ReductionError(f"frame {i} of the sky flat has a sky level of {sky:g}: "
                                 "a sky flat needs a positive sky")
        skies.append(sky)
        stack[i] = (data / sky).astype(np.float32)
        masked[i] = not_sky
    with _quiet():
        clipped = sigma_clip(np.ma.masked_array(stack, mask=masked), sigma=opts.clip_sigma,
                             axis=0, cenfunc="median", stdfunc="mad_std", maxiters=3,
                             masked=True, copy=False)
        counts = np.ma.count(clipped, axis=0)
        median = np.ma.median(clipped, axis=0)
    few = counts < opts.min_values
    combined_data = np.asarray(median.filled(np.nan), dtype=np.float32)
    combined_data[few] = np.nan
    header = header_of(frames[0]).copy()
    combined = CCDData(combined_data, unit="", meta=header, mask=~np.isfinite(combined_data))
    fitted = fit_illumination(combined, opts.degree, block=opts.block)
    model = np.asarray(fitted.data, dtype=np.float64)
    region = model[scale_region] if scale_region is not None else model
    norm = float(np.mean(region))
    if not norm > 0:
        raise ReductionError(f"the illumination model's mean over its scale region is {norm:g}")
    model /= norm
    residual_rms = _residual_rms(combined_data / norm, model, opts.block)
    out_header = fitted.header
    set_card(out_header, "ILLUMNFR", len(frames), "science frames of the sky flat")
    set_card(out_header, "ILLUMNRM", norm, "model divided by this (mean over scale region)")
    set_card(out_header, "ILLUMRMS", residual_rms, "sky flat rms about the model (blocks)")
    add_history(out_header, f"Night-sky illumination: {len(frames)} frames, sources masked "
                            f"at {opts.nsigma:g} sigma grown {opts.dilate} px, scaled by "
                            f"their sky, median after a {opts.clip_sigma:g}-sigma clip")
    result = CCDData(model.astype(np.float32), unit="", meta=out_header)
    return SkyIllumination(
        model=result, combined=combined, skies=tuple(skies),
        masked_fractions=tuple(float(m.mean()) for m in masked),
        uncovered_fraction=float(few.mean()), residual_rms=residual_rms)


def _residual_rms(combined: npt.NDArray[np.float64], model: npt.NDArray[np.float64],
                  block: int) -> float:
    ny, nx = combined.shape
    b = min(block, ny, nx)
    by, bx = ny // b, nx // b
    diff = (combined - model)[: by * b, : bx * b].reshape(by, b, bx, b)
    with _quiet():
        cells = np.nanmean(diff, axis=(1, 3))
    cells = cells[np.isfinite(cells)]
    return float(np.sqrt(np.mean(cells**2))) if cells.size else float("nan")


def apply_illumination(ccd: CCDData, illumination: CCDData) -> CCDData:
    """Divide a reduced frame by an illumination model.

    Parameters
    ----------
    ccd : CCDData
        A bias-, dark- and flat-corrected frame (any unit). Not modified.
    illumination : CCDData
        The model (dimensionless, near 1) of the same shape, e.g.
        :attr:`SkyIllumination.model`. Its own noise is negligible (a
        low-order fit to many pixels of many frames) and is not propagated.

    Returns
    -------
    CCDData
        New float32 frame ``ccd / model``, its uncertainty divided alike, mask
        and bit plane kept; ``ILLUMCOR`` and HISTORY recorded.

    Raises
    ------
    ShapeMismatchError
        Different shapes.
    ReductionError
        The frame is already illumination-corrected, or the model is not
        positive and finite everywhere.
    """
    if ccd.shape != illumination.shape:
        raise ShapeMismatchError(f"illumination model {illumination.shape} and frame "
                                 f"{ccd.shape} differ in shape")
    header = header_of(ccd)
    if "ILLUMCOR" in header:
        raise ReductionError("the frame is already illumination-corrected (ILLUMCOR)")
    model = np.asarray(illumination.data, dtype=np.float32)
    if not np.all(np.isfinite(model)) or not np.all(model > 0):
        raise ReductionError("the illumination model is not positive and finite everywhere")
    data = np.asarray(ccd.data, dtype=np.float32) / model
    unc = None if ccd.uncertainty is None else (
        np.asarray(ccd.uncertainty.array, dtype=np.float32) / model)
    set_card(header, "ILLUMCOR", True, "divided by a night-sky illumination model")
    set_card(header, "ILLUMMIN", float(model.min()), "smallest value of the model")
    set_card(header, "ILLUMMAX", float(model.max()), "largest value of the model")
    add_history(header, f"Illumination: divided by a night-sky model "
                        f"({float(model.min()):.4f} to {float(model.max()):.4f})")
    return new_frame(ccd, data, header, uncertainty=unc)


def illuminate_reduced(reduced: ReducedFrame, illumination: CCDData) -> ReducedFrame:
    """:func:`apply_illumination` on a reduced frame, its step recorded after the others.

    Parameters
    ----------
    reduced : ReducedFrame
        The output of :func:`~nightlog.reduction.science.reduce_science`. Not modified.
    illumination : CCDData
        The night-sky illumination model (dimensionless), of the frame's shape.

    Returns
    -------
    ReducedFrame
        The divided frame, the same bit plane, the steps plus ``illumination``
        (the model's range and the number of frames it was made of).
    """
    start = time.perf_counter()
    ccd = apply_illumination(reduced.ccd, illumination)
    model = np.asarray(illumination.data)
    step = StepRecord("illumination", True,
                      {"degree": illumination.meta.get("ILLUMDEG"),
                       "frames": illumination.meta.get("ILLUMNFR")},
                      {"min": float(model.min()), "max": float(model.max())},
                      time.perf_counter() - start)
    return ReducedFrame(ccd=ccd, bits=reduced.bits.copy(), steps=(*reduced.steps, step))
