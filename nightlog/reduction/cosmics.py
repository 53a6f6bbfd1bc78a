"""Cosmic-ray detection with astroscrappy's L.A.Cosmic (van Dokkum 2001).

Cosmic rays deposit charge in one to a few pixels, so their edges are sharper
than anything the optics can make. L.A.Cosmic finds them in the Laplacian of
the frame, compares it with a noise model, and uses a "fine-structure" image to
spare the cores of stars. :func:`detect_cosmic_rays` wraps
:func:`astroscrappy.detect_cosmics` with the camera's numbers and with what the
reduction already knows about the frame:

* **units** -- astroscrappy multiplies the data by ``gain`` to work in
  electrons, takes ``readnoise`` in electrons, multiplies ``invar`` by
  ``gain**2`` and compares ``satlevel`` with the data *after* that
  multiplication. Frames here are in ADU, so the data and the variance are
  passed in ADU and ADU², and the saturation level (ADU) is converted to
  electrons before the call.
* **bad pixels** (``inmask``) -- a hot pixel leaves a sharp residual after dark
  subtraction (its own Poisson noise, and any error in the dark's scaling);
  without a mask it is flagged as a cosmic ray in every frame. Masked pixels
  are never flagged and never used to clean their neighbours.
* **variance** (``invar``) -- after flat division the noise in ADU is larger
  where the flat is low (vignetted corners, dust shadows) than the data values
  suggest; astroscrappy's own model (data + read noise²) then underestimates the
  noise there and flags it. The propagated variance is the right model.

Defaults, chosen from ``benchmarks/cosmics_settings.py`` (full table in
``docs/reduction.md``): astroscrappy's own (``sigclip=4.5``, ``sigfrac=0.3``,
``objlim=5.0``, ``sepmed=True``, ``cleantype='meanmask'``, ``fsmode='median'``)
except ``niter=2``. On reduced LFC-like frames (1024 × 1024, sky, 3--5 px stars,
hot pixels, vignetting, ~600 hits per megapixel), CPU time relative to
astroscrappy's defaults, fraction of cosmic-ray pixels masked, fraction of clean
pixels flagged::

    setting                               CPU   complete  false
    astroscrappy defaults, naive call     1.00  0.943     5.4e-4  (hot pixels: 0.25)
    astroscrappy defaults, inmask+invar   1.01  0.923     0.9e-4  (hot pixels: 0)
    niter=1                               0.31  0.910     0.6e-4
    niter=2  (chosen)                     0.57  0.923     0.8e-4
    sepmed=False                          3.07  0.836     0.4e-4
    fsmode='convolve'                     0.99  0.897     1.1e-4
    sigclip=4.0                           1.02  0.938     2.4e-4

Two iterations find all that four find in 57 % of the time; the full median is
3× slower and less complete; the PSF-matched fine-structure image gained nothing.

The second look (``CosmicRaySettings.refine``, on by default): after astroscrappy,
:func:`nightlog.reduction.cosmics_sharpness.refine_cosmic_rays` tests the
neighbourhoods of candidates with the propagated variance -- hits beside bad pixels
and faint pixels of a hit added, star pixels the point-spread function explains and
noise peaks dropped. On the frames above it takes completeness from 0.93 to 0.955 and
false flags from 6e-5 to 4e-5, for about 30 % more CPU time (``docs/reduction.md``,
"The second look"). Added pixels are cleaned with the masked 5 × 5 mean, dropped
ones get their data back. Then (``CosmicRaySettings.star_model``, on by default)
:func:`nightlog.reduction.cosmics_stars.refine_on_stars` tests the pixels of stars
against a model of each star fitted with the frame's own PSF: hits on stars found,
star pixels flagged as hits given back. Last (``CosmicRaySettings.background_model``,
on by default) :func:`nightlog.reduction.cosmics_background.refine_on_background` tests
each pixel off stars against a smooth mesh of the background (medians of 64 × 64 px
cells, interpolated; its own noise negligible): points above ``seed_sigma`` − 0.25
and pairs of adjacent pixels summing over √2 above ``seed_sigma`` + 0.5 added,
flagged pixels grown above ``grow_sigma``, wherever the frame has no structure the
mesh does not follow. Completeness and false flags per million of
``benchmarks/cosmics_misses.py`` (one thread), before the background model and the
star model's wider boxes; with both; with the star model's point test at its scope's
edge, its seeds beyond the fitted boxes, blends within 11 px and boxes beside hot
pixels on the star's brightest good pixel (``docs/reduction.md``, "The star model's
edges"); and now with fits spoilt by unflagged hits fitted again without their
outliers and the brightest stars evaluated on 31 × 31 boxes (``docs/reduction.md``,
"Fits spoilt by hits, the brightest stars' wings")::

    frames                    before         both           edges          now
    4 × 1024² (seeds 0--3)    0.9747  27.7   0.9922  28.0   0.9951  28.7   0.9959  32.5
    2 × 1024² (seeds 10--11)  0.9821  42.4   0.9964  35.7   0.9964  37.6   0.9964  37.6  held out
    3 × 1024² (seeds 20--22)  0.9742  40.5   0.9911  37.0   0.9923  38.2   0.9944  38.6  held out
    4128 × 2080 (seed 0)      0.9787  46.8   0.9917  42.3   0.9927  39.2   0.9946  37.2

the background model for 0.11--0.13 s CPU on a full frame (``docs/reduction.md``,
"The background model"), the last rules for no measurable time.

Where it runs: with ``cleantype='meanmask'`` and ``fsmode='median'`` (the defaults)
astroscrappy's iterations run only where they can flag a pixel
(:mod:`nightlog.reduction.cosmics_schedule`): the same mask and cleaned image as
:func:`astroscrappy.detect_cosmics`, bit for bit, about 4× less CPU on full-size frames
(``benchmarks/cosmics_speed.py``); ``CosmicRaySettings(scheduled=False)`` calls
astroscrappy on the whole frame.

Threads: the scheduled detection runs on horizontal bands of the frame, one thread
each (:mod:`nightlog.reduction.cosmics_tiles`, the same mask bit for bit), as many
as :attr:`CosmicRaySettings.threads` (``None``: every core this process may use),
each band's OpenMP team capped at one thread; astroscrappy's own run caps its
OpenMP team there (:func:`nightlog.threads.openmp_threads`). When several frames are
reduced at once, give each worker :func:`nightlog.threads.threads_per_worker`
threads so that workers × threads never exceeds the cores.
"""

from __future__ import annotations

import numpy as np
from astropy.nddata import CCDData

from nightlog.errors import ReductionError, ShapeMismatchError
from nightlog.reduction._cards import add_history, header_of, set_card
from nightlog.reduction._frame import new_frame
from nightlog.reduction.cosmics_background import refine_on_background
from nightlog.reduction.cosmics_settings import CosmicRaySettings
from nightlog.reduction.cosmics_sharpness import clean_pixels, refine_cosmic_rays
from nightlog.reduction.cosmics_stars import refine_on_stars
from nightlog.reduction.cosmics_tiles import tiled_lacosmic
from nightlog.reduction.lacosmic import leak_free_astroscrappy
from nightlog.reduction.mask import MASK_DTYPE, MaskBit
from nightlog.threads import available_cores, openmp_threads

__all__ = ["CosmicRaySettings", "cosmic_ray_threads", "detect_cosmic_rays"]


def cosmic_ray_threads(settings: CosmicRaySettings) -> int:
    """Threads the detection uses: ``settings.threads``, or (``None``) every core this
    process may run on.

    Parameters
    ----------
    settings : CosmicRaySettings
        The detection's settings.

    Returns
    -------
    int
        At least 1.
    """
    return settings.threads if settings.threads is not None else available_cores()


def _check_plane(name: str, plane: np.ndarray | None, shape: tuple[int, ...]) -> None:
    if plane is not None and plane.shape != shape:
        raise ShapeMismatchError(f"{name} has shape {plane.shape}, the frame {shape}")


def detect_cosmic_rays(
    ccd: CCDData,
    *,
    gain: float,
    read_noise: float,
    saturation: float | None,
    bad_pixels: np.ndarray | None = None,
    variance: np.ndarray | None = None,
    settings: CosmicRaySettings | None = None,
) -> tuple[np.ndarray, CCDData]:
    """Flag cosmic-ray pixels of a reduced frame (and optionally clean them).

    Parameters
    ----------
    ccd : CCDData
        Bias-, dark- and flat-corrected frame in ADU, sky *not* subtracted (the noise
        model needs it). Its boolean ``mask``, if any, joins ``bad_pixels``.
    gain : float
        Detector gain, e-/ADU (> 0).
    read_noise : float
        Read noise, e- (≥ 0).
    saturation : float or None
        Saturation level in ADU; regions of saturated stars are excluded. ``None``:
        no saturation masking.
    bad_pixels : ndarray of bool, optional
        Pixels known to be bad (hot, dead, no data, saturated); never flagged and never
        used to replace a neighbour.
    variance : ndarray, optional
        Propagated variance of ``ccd`` in ADU²; without it astroscrappy models the
        noise as (data × gain + read_noise²) / gain², which is wrong after flat
        division.
    settings : CosmicRaySettings, optional
        Algorithm settings and thread cap (default: ``CosmicRaySettings()``).

    Returns
    -------
    cosmic_rays : ndarray of bool
        ``True`` where a cosmic ray was found (all ``False`` if disabled).
    cleaned : CCDData
        A new frame: data (float32, ADU) with flagged pixels replaced when
        ``settings.clean``, else a copy; mask = input mask | cosmic rays (an integer
        bit-plane mask or ``flags`` gets :attr:`MaskBit.COSMIC_RAY`); uncertainty and
        unit copied; header with ``CRCOR``, ``NCOSMIC`` and a HISTORY line.

    Raises
    ------
    ShapeMismatchError
        ``bad_pixels`` or ``variance`` do not have the frame's shape.
    ReductionError
        Non-positive gain or negative read noise.
    """
    # Deferred: a compiled extension that loads OpenMP; and its leak is mended here.
    astroscrappy = leak_free_astroscrappy()
    settings = CosmicRaySettings() if settings is None else settings

    data = np.asarray(ccd.data)
    if data.ndim != 2:
        raise ReductionError(f"cosmic-ray detection needs a 2-D frame, not {data.ndim}-D")
    if not gain > 0:
        raise ReductionError(f"gain must be positive (e-/ADU), not {gain}")
    if not read_noise >= 0:
        raise ReductionError(f"read noise must be non-negative (e-), not {read_noise}")
    _check_plane("bad_pixels", bad_pixels, data.shape)
    _check_plane("variance", variance, data.shape)

    known_bad = np.zeros(data.shape, dtype=bool)
    if ccd.mask is not None:
        known_bad |= np.asarray(ccd.mask, dtype=bool)
    if bad_pixels is not None:
        known_bad |= np.asarray(bad_pixels, dtype=bool)
    work = np.array(data, dtype=np.float32)
    # Non-finite pixels would poison the median filters around them: mask them and
    # give them a typical value (median of a sample of the good pixels; exactness
    # does not matter for a masked pixel, speed does on an 8-Mpixel frame).
    not_finite = ~np.isfinite(work)
    var: np.ndarray | None = None
    if variance is not None:
        var = np.array(variance, dtype=np.float32)
        not_finite |= ~np.isfinite(var)
    known_bad |= not_finite
    if not_finite.any():
        work[not_finite] = _typical(work, known_bad, 0.0)
        if var is not None:
            var[not_finite] = _typical(var, known_bad, 1.0)
    if var is not None:
        # A zero or negative variance would divide by zero inside astroscrappy.
        np.maximum(var, np.float32(1e-12), out=var)

    if not settings.enabled:
        header = header_of(ccd)
        add_history(header, "Cosmic-ray detection skipped (disabled)")
        return np.zeros(data.shape, dtype=bool), new_frame(
            ccd, np.array(data, dtype=np.float32), header)

    satlevel = np.inf if saturation is None else float(saturation) * gain
    scheduled = (settings.scheduled and settings.cleantype == "meanmask"
                 and settings.fsmode == "median")
    if scheduled:
        crmask, cleaned = tiled_lacosmic(
            work, known_bad, var, threads=cosmic_ray_threads(settings),
            gain=float(gain), readnoise=float(read_noise), satlevel=satlevel,
            sigclip=settings.sigclip, sigfrac=settings.sigfrac, objlim=settings.objlim,
            niter=settings.niter, sepmed=settings.sepmed)
    else:
        with openmp_threads(settings.threads):
            crmask, cleaned = astroscrappy.detect_cosmics(
                work,
                inmask=known_bad,
                invar=var,
                gain=float(gain),
                readnoise=float(read_noise),
                satlevel=satlevel,
                verbose=False,
                **settings.as_keywords(),
            )
    crmask = np.asarray(crmask, dtype=bool)
    cleaned = np.array(cleaned, dtype=np.float32)
    if settings.refine:
        model = var if var is not None else (np.maximum(work, 0) / np.float32(gain)
                                             + np.float32((read_noise / gain) ** 2))
        refined = refine_cosmic_rays(work, model, known_bad, crmask,
                                     seed_sigma=settings.seed_sigma,
                                     grow_sigma=settings.grow_sigma,
                                     psf_contrast=settings.psf_contrast)
        if settings.star_model:
            refined = refine_on_stars(work, model, known_bad, refined,
                                      seed_sigma=settings.seed_sigma,
                                      grow_sigma=settings.grow_sigma)
        if settings.background_model:
            refined = refine_on_background(work, model, known_bad, refined,
                                           seed_sigma=settings.seed_sigma,
                                           grow_sigma=settings.grow_sigma)
        dropped = crmask & ~refined
        cleaned[dropped] = work[dropped]
        cleaned = clean_pixels(cleaned, refined & ~crmask, refined | known_bad)
        crmask = refined
    result = np.array(cleaned if settings.clean else data, dtype=np.float32)
    if settings.clean and not_finite.any():
        # Non-finite input stays visible (and masked), not silently invented.
        result[not_finite] = data[not_finite]
    background = settings.refine and settings.background_model
    header = header_of(ccd)
    set_card(header, "CRCOR", f"LACosmic niter {settings.niter} sigclip {settings.sigclip:g} "
                              f"sigfrac {settings.sigfrac:g} objlim {settings.objlim:g}"
                              + (f" refine {settings.seed_sigma:g}/{settings.grow_sigma:g}"
                                 f"/{settings.psf_contrast:g}" if settings.refine else ""),
             "cosmic-ray detection")
    set_card(header, "NCOSMIC", int(crmask.sum()), "pixels flagged as cosmic rays")
    add_history(header, f"Cosmic rays: astroscrappy {astroscrappy.__version__} "
                        f"{settings.as_keywords()}, gain {gain:g} e-/ADU, read noise "
                        f"{read_noise:g} e-, {int(known_bad.sum())} known bad pixels, "
                        f"variance {'given' if variance is not None else 'modelled'}, "
                        f"{'cleaned' if settings.clean else 'not cleaned'}"
                        f"{', scheduled' if scheduled else ''}"
                        f"{', refined (second look)' if settings.refine else ''}"
                        f"{', star model' if settings.refine and settings.star_model else ''}"
                        f"{', background model' if background else ''}")
    return crmask, new_frame(ccd, result, header, mask=_with_bit(ccd.mask, crmask, bool),
                             flags=_with_bit(ccd.flags, crmask, None))


def _typical(values: np.ndarray, bad: np.ndarray, default: float) -> float:
    """Median of (at most ~100 000 of) the good ``values``; ``default`` if none."""
    good = values[~bad]
    step = max(1, good.size // 100_000)
    return float(np.median(good[::step])) if good.size else default


def _with_bit(plane: object, crmask: np.ndarray, default: type | None) -> np.ndarray | None:
    """``plane`` with the cosmic rays added: as COSMIC_RAY in an integer bit plane,
    OR-ed into a boolean one; with no plane, ``crmask`` itself when ``default`` is bool."""
    if isinstance(plane, np.ndarray) and plane.dtype.kind in "ui":
        out = plane.astype(MASK_DTYPE)
        out[crmask] |= MASK_DTYPE(MaskBit.COSMIC_RAY)
        return out
    if plane is None or not isinstance(plane, np.ndarray):
        return crmask.copy() if default is bool else None
    combined: np.ndarray = np.asarray(plane, dtype=bool) | crmask
    return combined
