"""How good a reduced science frame is: sky, sources, seeing, saturation, cosmic rays.

:func:`measure_quality` follows what LCO's BANZAI does with ``sep`` (Source
Extractor as a library) on each reduced frame:

1. **sky** -- ``sep.Background`` (a 64-pixel mesh, 3×3 median filter) over the
   unmasked pixels; the sky level is the median of the mesh (``globalback``), the
   sky noise its global RMS (per pixel). In electrons when the frame is in electrons or a gain
   is given; otherwise only in the frame's units, and a note says so.
2. **sources** -- ``sep.extract`` at ``detect_sigma`` times the sky noise, at
   least ``min_area`` connected pixels above it, on the sky-subtracted frame; every
   detection counts in ``n_sources``.
3. **point sources for the seeing** -- detections that ``sep`` did not flag
   (merged with a neighbour, truncated by an edge), whose stamp holds no
   saturated, dead, no-data or cosmic-ray pixel, with no other detection within
   two stamp radii (isolated) and axis ratio ``b/a ≥ 0.5`` (round-ish: not a
   trail, not a blend); the ``max_psf_stars`` brightest of them.
4. **FWHM** -- a Moffat profile fitted to each (:mod:`~nightlog.reduction.psf`);
   the median, and 1.4826 × the median absolute deviation as its scatter, when at
   least ``min_psf_stars`` were fitted; in arcseconds when a plate scale is
   given. **Ellipticity** -- the median of ``1 − b/a`` from the same stars' second
   moments.
5. **saturation and cosmic rays** -- the fraction of pixels with the SATURATED
   bit, and the pixels with the COSMIC_RAY bit (``NCOSMIC``) of the bit plane.

Airmass and plate scale are not read here: the caller gives them (with where
they came from, :mod:`nightlog.header.pointing`), and a missing one is a note.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import sep
from astropy import units as u
from astropy.nddata import CCDData
from scipy.spatial import cKDTree

from nightlog.errors import ReductionError
from nightlog.reduction.mask import MASK_DTYPE, MaskBit
from nightlog.reduction.psf import fit_moffat

__all__ = ["FrameQuality", "QualityOptions", "measure_quality"]

_MAD_TO_SIGMA = 1.482602218505602
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
_SPOILED = MASK_DTYPE(MaskBit.SATURATED | MaskBit.DEAD | MaskBit.NO_DATA | MaskBit.COSMIC_RAY)
_NO_SKY = MASK_DTYPE(MaskBit.SATURATED | MaskBit.DEAD | MaskBit.NO_DATA | MaskBit.COSMIC_RAY
                     | MaskBit.HOT)


@dataclass(frozen=True, slots=True)
class QualityOptions:
    """How sources are found and which stars measure the seeing.

    Attributes
    ----------
    detect_sigma : float
        Detection threshold, in sky-noise sigmas per pixel.
    min_area : int
        Connected pixels above the threshold a detection needs.
    max_psf_stars : int
        At most this many (the brightest) point sources are fitted.
    min_psf_stars : int
        With fewer fitted point sources no FWHM is given (a median of one or two
        stars is not the seeing), and a note says so.
    min_axis_ratio : float
        Round-ish: ``b/a`` of a star used for the seeing at least this.
    background_box : int
        Mesh size of the sky background, pixels.
    """

    detect_sigma: float = 5.0
    min_area: int = 5
    max_psf_stars: int = 40
    min_psf_stars: int = 5
    min_axis_ratio: float = 0.5
    background_box: int = 64


@dataclass(frozen=True, slots=True)
class FrameQuality:
    """The quality figures of one reduced frame.

    Attributes
    ----------
    unit : str
        Unit of ``sky`` and ``sky_noise`` (the frame's: ``adu`` or ``electron``).
    sky, sky_noise : float
        Sky level and its noise per pixel, in ``unit``.
    sky_e, sky_noise_e : float or None
        The same in electrons (``None`` without a gain).
    n_sources : int
        Detections above the threshold.
    n_psf_stars : int
        Point sources whose fit gave the FWHM.
    fwhm_px, fwhm_scatter_px : float or None
        Median FWHM of the point sources and its robust scatter, pixels.
    fwhm_arcsec : float or None
        The median FWHM in arcseconds (``None`` without a plate scale).
    ellipticity : float or None
        Median ``1 − b/a`` of the point sources.
    saturated_fraction : float
        Fraction of the frame's pixels flagged SATURATED.
    cosmic_ray_pixels : int
        Pixels flagged COSMIC_RAY.
    airmass : float or None
        As given by the caller; ``airmass_source`` says from where.
    pixel_scale_arcsec : float or None
        As given; ``pixel_scale_source`` says from where.
    seconds : float
        Wall-clock time of the measurement.
    notes : tuple of str
        Every figure that could not be measured, and why.
    """

    unit: str
    sky: float
    sky_noise: float
    sky_e: float | None
    sky_noise_e: float | None
    n_sources: int
    n_psf_stars: int
    fwhm_px: float | None
    fwhm_scatter_px: float | None
    fwhm_arcsec: float | None
    ellipticity: float | None
    saturated_fraction: float
    cosmic_ray_pixels: int
    airmass: float | None
    airmass_source: str
    pixel_scale_arcsec: float | None
    pixel_scale_source: str
    seconds: float
    notes: tuple[str, ...] = field(default_factory=tuple)


def _unit_name(ccd: CCDData) -> str:
    unit = u.Unit(ccd.unit) if ccd.unit is not None else u.adu
    if unit == u.electron:
        return "electron"
    if unit == u.adu:
        return "adu"
    raise ReductionError(f"quality is measured on frames in adu or electron, not {unit}")


def _robust(values: npt.NDArray[np.float64]) -> tuple[float, float]:
    median = float(np.median(values))
    return median, float(_MAD_TO_SIGMA * np.median(np.abs(values - median)))


def measure_quality(
    ccd: CCDData,
    *,
    bits: npt.ArrayLike | None = None,
    gain: float | None = None,
    pixel_scale_arcsec: float | None = None,
    pixel_scale_source: str = "",
    airmass: float | None = None,
    airmass_source: str = "",
    options: QualityOptions | None = None,
) -> FrameQuality:
    """Measure the quality figures of a reduced science frame.

    Parameters
    ----------
    ccd : CCDData
        Reduced frame (bias, dark and flat corrected), in ADU or electrons.
    bits : array_like of uint16, optional
        Its :class:`~nightlog.reduction.mask.MaskBit` plane (default ``ccd.flags``,
        else none: every pixel good).
    gain : float, optional
        e⁻/ADU of a frame in ADU, for the sky in electrons; not used for a frame in
        electrons.
    pixel_scale_arcsec : float, optional
        Arcseconds per pixel, for the FWHM in arcseconds; ``pixel_scale_source``
        says where it came from.
    airmass : float, optional
        Recorded as given; ``airmass_source`` says where it came from.
    options : QualityOptions, optional
        Detection and selection settings.

    Returns
    -------
    FrameQuality
        New figures; the frame and the bit plane are not modified.

    Raises
    ------
    ReductionError
        The frame is not 2-D, not in ADU or electrons, or has no finite pixel.
    """
    start = time.perf_counter()
    opts = options or QualityOptions()
    unit = _unit_name(ccd)
    data = np.ascontiguousarray(np.asarray(ccd.data), dtype=np.float32)
    if data.ndim != 2:
        raise ReductionError(f"quality needs a 2-D frame, not shape {data.shape}")
    if bits is None:
        bits = ccd.flags if ccd.flags is not None else np.zeros(data.shape, MASK_DTYPE)
    plane = np.asarray(bits).astype(MASK_DTYPE, copy=False)
    if plane.shape != data.shape:
        raise ReductionError(f"bit plane {plane.shape} is not the frame's {data.shape}")
    notes: list[str] = []
    finite = np.isfinite(data)
    if not finite.any():
        raise ReductionError("the frame has no finite pixel")
    data = np.where(finite, data, np.float32(0.0))
    sky_mask = (plane & _NO_SKY) != 0
    sky_mask |= ~finite
    box = max(8, min(opts.background_box, *data.shape))
    background = sep.Background(data, mask=sky_mask, bw=box, bh=box, fw=3, fh=3)
    sky = float(background.globalback)  # the median of the mesh
    noise = float(background.globalrms)
    subtracted = data - background.back()
    sep.set_extract_pixstack(max(300000, data.size // 2))
    sep.set_sub_object_limit(4096)
    try:
        sources = sep.extract(subtracted, opts.detect_sigma, err=noise, mask=~finite,
                              minarea=opts.min_area)
    except Exception as exc:  # sep raises plain Exceptions on its internal limits
        notes.append(f"source extraction failed: {exc}")
        sources = np.zeros(0, dtype=[("x", float), ("y", float), ("a", float),
                                     ("b", float), ("flux", float), ("flag", int)])

    fwhm_px = scatter = ellipticity = None
    widths, ratios = _point_sources(subtracted, plane, sources, opts)
    if widths.size >= max(1, opts.min_psf_stars):
        fwhm_px, scatter = _robust(widths)
        ellipticity = float(np.median(1.0 - ratios))
    else:
        notes.append(f"no FWHM: {widths.size} of the {len(sources)} detections are "
                     "isolated, unsaturated point sources free of cosmic-ray pixels whose "
                     f"profile could be fitted; at least {opts.min_psf_stars} are needed")
    if unit == "electron":
        sky_e, noise_e = sky, noise
    elif gain is not None:
        sky_e, noise_e = sky * gain, noise * gain
    else:
        sky_e = noise_e = None
        notes.append("sky in ADU only: the gain is not known")
    fwhm_arcsec = None
    if fwhm_px is not None:
        if pixel_scale_arcsec is not None:
            fwhm_arcsec = fwhm_px * pixel_scale_arcsec
        else:
            notes.append("FWHM in pixels only: no plate scale in the profile or the header")
    if airmass is None:
        notes.append(f"no airmass: {airmass_source or 'not given'}")
    return FrameQuality(
        unit=unit, sky=sky, sky_noise=noise, sky_e=sky_e, sky_noise_e=noise_e,
        n_sources=len(sources), n_psf_stars=int(widths.size), fwhm_px=fwhm_px,
        fwhm_scatter_px=scatter, fwhm_arcsec=fwhm_arcsec, ellipticity=ellipticity,
        saturated_fraction=float(np.count_nonzero(plane & MASK_DTYPE(MaskBit.SATURATED))
                                 / plane.size),
        cosmic_ray_pixels=int(np.count_nonzero(plane & MASK_DTYPE(MaskBit.COSMIC_RAY))),
        airmass=airmass, airmass_source=airmass_source,
        pixel_scale_arcsec=pixel_scale_arcsec, pixel_scale_source=pixel_scale_source,
        seconds=time.perf_counter() - start, notes=tuple(notes))


def _point_sources(image: npt.NDArray[np.float32], plane: npt.NDArray[np.uint16],
                   sources: np.ndarray, opts: QualityOptions
                   ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """FWHM (Moffat fits) and axis ratios of the isolated, clean, round point sources."""
    empty = np.zeros(0)
    if len(sources) == 0:
        return empty, empty
    a = np.asarray(sources["a"], dtype=np.float64)
    b = np.asarray(sources["b"], dtype=np.float64)
    x = np.asarray(sources["x"], dtype=np.float64)
    y = np.asarray(sources["y"], dtype=np.float64)
    moment_fwhm = _FWHM_PER_SIGMA * np.sqrt((a * a + b * b) / 2.0)
    half = np.maximum(4, np.ceil(2.0 * moment_fwhm)).astype(int)
    ny, nx = image.shape
    ratio = np.divide(b, a, out=np.zeros_like(a), where=a > 0)
    keep = ((sources["flag"] == 0) & (ratio >= opts.min_axis_ratio)
            & (x - half >= 0) & (x + half < nx) & (y - half >= 0) & (y + half < ny))
    if len(sources) > 1:
        distance, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=2)
        keep &= distance[:, 1] > 2.0 * half
    order = [i for i in np.argsort(-np.asarray(sources["flux"])) if keep[i]]
    widths: list[float] = []
    ratios: list[float] = []
    for i in order:
        if len(widths) >= opts.max_psf_stars:
            break
        xc, yc, h = round(x[i]), round(y[i]), int(half[i])
        window = (slice(yc - h, yc + h + 1), slice(xc - h, xc + h + 1))
        if np.any(plane[window] & _SPOILED):
            continue
        fit = fit_moffat(image[window], x0=x[i] - (xc - h), y0=y[i] - (yc - h),
                         fwhm0=float(moment_fwhm[i]))
        if fit is None or not 0.5 <= fit.fwhm <= 2.0 * h:
            continue
        widths.append(fit.fwhm)
        ratios.append(float(ratio[i]))
    return np.asarray(widths), np.asarray(ratios)
