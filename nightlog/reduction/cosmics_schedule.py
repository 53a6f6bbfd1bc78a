"""astroscrappy's L.A.Cosmic run only where it can find something.

:func:`scheduled_lacosmic` gives exactly the mask and cleaned image of
:func:`astroscrappy.detect_cosmics` (``cleantype='meanmask'``, ``fsmode='median'``)
but runs each iteration (:func:`~nightlog.reduction.cosmics_step.detection_step`)
only on patches that can hold a cosmic-ray pixel:

* **pre-screen** -- every flagged pixel lies within 2 pixels of a *seed*, and a
  seed has ``s − median(s) > sigclip`` where the Laplacian-to-noise ``s`` is never
  negative, so ``s > sigclip`` is necessary. ``s`` is bounded from above in numpy
  (the Laplacian of the 2× subsampled image is, per pixel, the mean of four
  clipped ``2 x − x_a − x_b``; the noise is at least the square root of the
  variance's minimum over the median window widened by the cleaning's 5 × 5), at
  ``sigclip × (1 − 10⁻³)`` for float32 rounding. Pixels that fail cannot be seeds.
  In the first iteration the exact Laplacian over that floor decides where the
  noise model itself (a median of the variance) is computed.
* **patches** -- around each group of candidates grown by the 2 growth pixels,
  with a margin of :func:`~nightlog.reduction.cosmics_step.reach` pixels, packed
  side by side into one mosaic for a single call
  (:func:`~nightlog.reduction.cosmics_patches.patchwise`); results are kept only
  farther than the margin from a patch's edge. The frame's outer band, where
  astroscrappy's filters treat the edge, is run as four strips of the frame itself.
* **iterations** -- iteration *k + 1* differs from iteration *k* only near the
  pixels the cleaning of iteration *k* changed; it runs only there, and stops when
  an iteration finds no new pixel (astroscrappy's later iterations would repeat it).
* **saturated stars** -- astroscrappy's ``update_mask`` (median of the whole
  frame) is run only on tiles that hold a saturated pixel.

What the pre-screen rejected is reported, so a benchmark can count any flag of the
full run it would have missed (none, by construction; ``benchmarks/cosmics_speed.py``
measures it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nightlog.reduction.cosmics_patches import patchwise
from nightlog.reduction.cosmics_step import (
    StepScalars,
    clean_meanmask,
    detection_step,
    fine_structure,
    fine_structure_reach,
    grow,
    laplacian,
    noise_of,
    reach,
    seed_reach,
)

__all__ = ["ScheduleReport", "dilate", "fallback_values", "scheduled_lacosmic"]

_SAT_TILE = 32


@dataclass
class ScheduleReport:
    """What the scheduler ran.

    Attributes
    ----------
    iterations : int
        Iterations run (≤ ``niter``; fewer when one found nothing new).
    pixels_run : list of int
        Pixels given to the detection step per iteration (patches, strips and
        mosaic padding), to compare with the frame's size.
    candidates : ndarray of bool
        First iteration's pre-screen: where seeds were allowed.
    """

    iterations: int = 0
    pixels_run: list[int] = field(default_factory=list)
    candidates: np.ndarray | None = None


def scheduled_lacosmic(data: np.ndarray, inmask: np.ndarray, invar: np.ndarray | None, *,
                       gain: float, readnoise: float, satlevel: float, sigclip: float,
                       sigfrac: float, objlim: float, niter: int, sepmed: bool,
                       backgrounds: Callable[[], tuple[float, float]] | None = None
                       ) -> tuple[np.ndarray, np.ndarray, ScheduleReport]:
    """:func:`astroscrappy.detect_cosmics` with ``cleantype='meanmask'`` and
    ``fsmode='median'``, same arguments and units, run only where it can flag.

    Parameters
    ----------
    data : ndarray
        Image in ADU.
    inmask : ndarray of bool
        Known bad pixels.
    invar : ndarray or None
        Variance in ADU² (``None``: astroscrappy's model, data + read noise²).
    gain : float
        e-/ADU.
    readnoise : float
        e-.
    satlevel : float
        Saturation in electrons (``inf``: none).
    sigclip, sigfrac, objlim : float
        astroscrappy's thresholds.
    niter : int
        Maximum iterations.
    sepmed : bool
        Separable median filters.
    backgrounds : callable, optional
        Returns astroscrappy's fallback values (the median good value and variance,
        e- and e-², of the whole uncleaned frame) when a flagged pixel has no good
        neighbour; given when ``data`` is a tile of a larger frame
        (:func:`fallback_values` of the frame). Default: those of ``data``.

    Returns
    -------
    crmask : ndarray of bool
        Cosmic-ray pixels.
    cleaned : ndarray of float32
        Image in ADU with flagged pixels replaced by the masked 5 × 5 mean.
    report : ScheduleReport
        Iterations and pixels run.
    """
    import astroscrappy.astroscrappy as core  # deferred: compiled, loads OpenMP
    from astroscrappy import utils

    g = float(np.float32(gain))
    ny, nx = data.shape
    clean, var = _electrons(data, invar, g, readnoise)
    mask = _astroscrappy_mask(core, utils, clean, inmask, float(np.float32(satlevel)), sepmed)
    scalars = StepScalars.of(sigclip, sigfrac, objlim, sepmed)
    margin = reach(sepmed)
    bad = mask.astype(bool)
    # The noise median's half window, widened by the cleaning's 5 × 5 mean.
    # float32 as the noise itself: sqrt is monotone, so the floor never exceeds it.
    noise_floor = np.sqrt(np.maximum(_block_minimum(var, (3 if sepmed else 2) + 2),
                                     np.float32(1e-5)))
    fallback: tuple[float, float] | None = None
    if backgrounds is None:
        original = clean.copy(), var.copy()  # the fallback medians: the uncleaned frame

        def backgrounds() -> tuple[float, float]:
            return _backgrounds(*original, bad)

    report = ScheduleReport()
    crmask = np.zeros((ny, nx), dtype=bool)
    region: np.ndarray | None = None  # where seeds may differ from the last iteration
    for _ in range(niter):
        if region is None:
            flags, ran, report.candidates = _first_iteration(utils, clean, var, mask, scalars,
                                                             noise_floor)
        else:
            allowed = _screen(clean, noise_floor, bad, scalars.sigclip, margin, region)
            if not allowed.any():
                break

            def step(c: np.ndarray, v: np.ndarray, m: np.ndarray, a: np.ndarray) -> np.ndarray:
                return detection_step(utils, c, v, m, a, scalars)

            flags, ran = patchwise(step, [clean, var, mask, allowed], [0, 1, 1, False],
                                    dilate(allowed, 2), margin)
        report.iterations += 1
        report.pixels_run.append(int(ran))
        new = flags & ~crmask
        if not new.any():
            break
        crmask |= new
        rows, cols = np.nonzero(crmask[2:-2, 2:-2])
        pixels = (rows + 2, cols + 2)
        before = clean[pixels], var[pixels]
        _, need = clean_meanmask(clean, crmask, bad, None if fallback is None
                                 else fallback[0], pixels)
        if need:
            fallback = backgrounds()
            # A pixel with no good neighbour takes the frame's median variance,
            # which the noise floor must not exceed.
            np.minimum(noise_floor, np.float32(np.sqrt(max(fallback[1], 1e-5))),
                       out=noise_floor)
            clean_meanmask(clean, crmask, bad, fallback[0], pixels)
        clean_meanmask(var, crmask, bad, None if fallback is None else fallback[1],
                       pixels)
        changed = np.zeros((ny, nx), dtype=bool)
        changed[pixels] = (clean[pixels] != before[0]) | (var[pixels] != before[1])
        region = dilate(changed, margin)
    cleaned = clean / g
    return crmask, cleaned, report


def fallback_values(data: np.ndarray, inmask: np.ndarray, invar: np.ndarray | None, *,
                    gain: float, readnoise: float, satlevel: float, sepmed: bool
                    ) -> tuple[float, float]:
    """astroscrappy's fallback values of a whole frame (arguments and units of
    :func:`scheduled_lacosmic`): the median good value (e-) and variance (e-²) of
    the uncleaned frame, good meaning outside its grown bad-pixel and saturated-star
    mask."""
    import astroscrappy.astroscrappy as core  # deferred: compiled, loads OpenMP
    from astroscrappy import utils

    clean, var = _electrons(data, invar, float(np.float32(gain)), readnoise)
    mask = _astroscrappy_mask(core, utils, clean, inmask, float(np.float32(satlevel)), sepmed)
    return _backgrounds(clean, var, mask.astype(bool))


def _electrons(data: np.ndarray, invar: np.ndarray | None, g: float, readnoise: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """The image and its variance in electrons, float32, as astroscrappy makes them."""
    clean = np.empty(data.shape, dtype=np.float32)
    np.multiply(data, g, out=clean)  # data × gain in data's precision, then float32
    if invar is not None:
        var = np.ascontiguousarray(invar * float(np.float32(g * g)), dtype=np.float32)
    else:
        rn = float(np.float32(readnoise))
        var = clean + float(np.float32(rn * rn))
    return clean, var


def _astroscrappy_mask(core: Any, utils: Any, clean: np.ndarray, inmask: np.ndarray,
                       satlevel: float, sepmed: bool) -> np.ndarray:
    """astroscrappy's ``update_mask``: bad pixels grown by one, saturated stars by
    four; its median filter run only on tiles (with an 8-pixel margin) holding a
    saturated pixel."""
    base = np.ascontiguousarray(inmask, dtype=np.uint8)
    mask = np.asarray(utils.dilate3(base), dtype=np.uint8)
    saturated = clean >= satlevel
    if not saturated.any():
        return mask
    ny, nx = clean.shape
    pad = 8
    near = dilate(saturated, 4)  # astroscrappy's dilation of saturated stars
    for ty, tx in zip(*np.nonzero(_tiles_any(near, _SAT_TILE)), strict=True):
        y0, x0 = ty * _SAT_TILE, tx * _SAT_TILE
        y1, x1 = min(ny, y0 + _SAT_TILE), min(nx, x0 + _SAT_TILE)
        ys, xs = slice(max(0, y0 - pad), min(ny, y1 + pad)), slice(max(0, x0 - pad),
                                                                   min(nx, x1 + pad))
        crop = np.ascontiguousarray(clean[ys, xs])
        crop_mask = np.ascontiguousarray(base[ys, xs])
        core.update_mask(crop, crop_mask, satlevel, sepmed)
        mask[y0:y1, x0:x1] = crop_mask[y0 - ys.start:y1 - ys.start, x0 - xs.start:x1 - xs.start]
    return mask


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by ``radius`` pixels in every direction (a square) over its last
    two axes (each image of a stack on its own), by shifted ORs that double their
    reach."""
    out = mask.copy()
    for axis in (-2, -1):
        done = 0
        while done < radius:
            step = min(done + 1, radius - done)
            grown = out.copy()
            if axis == -2:
                grown[..., step:, :] |= out[..., :-step, :]
                grown[..., :-step, :] |= out[..., step:, :]
            else:
                grown[..., step:] |= out[..., :-step]
                grown[..., :-step] |= out[..., step:]
            out = grown
            done += step
    return out


def _block_minimum(values: np.ndarray, radius: int) -> np.ndarray:
    """A lower bound of the minimum of ``values`` within ``radius`` pixels of each pixel:
    the minimum over the blocks (of side ``radius``) around the pixel's block."""
    ny, nx = values.shape
    side = max(1, radius)
    by, bx = -(-ny // side), -(-nx // side)
    padded = np.full((by * side, bx * side), np.inf, dtype=values.dtype)
    padded[:ny, :nx] = values
    blocks = padded.reshape(by, side, bx, side).min(axis=(1, 3))
    wide = np.pad(blocks, 1, constant_values=np.inf)
    around = np.min([wide[1 + dy:1 + dy + by, 1 + dx:1 + dx + bx]
                     for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
    # Each block's value over its pixels, written once into the padded buffer.
    padded.reshape(by, side, bx, side)[...] = around[:, None, :, None]
    return padded[:ny, :nx]


def _tiles_any(values: np.ndarray, tile: int) -> np.ndarray:
    ny, nx = values.shape
    padded = np.zeros((-(-ny // tile) * tile, -(-nx // tile) * tile), dtype=bool)
    padded[:ny, :nx] = values
    return padded.reshape(padded.shape[0] // tile, tile, -1, tile).any(axis=(1, 3))


def _backgrounds(clean: np.ndarray, var: np.ndarray, bad: np.ndarray) -> tuple[float, float]:
    """astroscrappy's fallback values: medians of the good pixels, as it computes them
    (before the first cleaning, which leaves good pixels untouched)."""
    good = ~bad
    return _lower_median(clean[good]), _lower_median(var[good])


def _lower_median(values: np.ndarray) -> float:
    """astroscrappy's ``median``: the element of rank ``(n − 1) // 2`` (its quickselect
    returns the lower of the two middle values), found by numpy's introselect. With
    no good pixel at all (astroscrappy then reads memory it never wrote) it is 0: every
    pixel is masked, so no cleaning or noise estimate depends on it."""
    if values.size == 0:
        return 0.0
    k = (values.size - 1) // 2
    return float(np.partition(values, k)[k])


def _first_iteration(utils: Any, clean: np.ndarray, var: np.ndarray, mask: np.ndarray,
                     scalars: StepScalars, noise_floor: np.ndarray
                     ) -> tuple[np.ndarray, int, np.ndarray]:
    """The first iteration: the Laplacian on the whole frame; the noise (a median of
    the variance), ``s`` and ``sp`` only near the pixels whose Laplacian over
    ``noise_floor`` (a lower bound of the noise) passes ``sigclip``; the fine
    structure (the dearest part) only around the pixels with ``sp > sigclip``, the
    only ones it can decide. Returns the flags, the pixels run and those pixels (the
    pre-screen)."""
    sepmed = scalars.sepmed
    half = 3 if sepmed else 2
    lap = laplacian(utils, clean)
    # s = lap / (2 noise) ≤ lap / (2 noise_floor): elsewhere s cannot pass sigclip.
    # s is needed exactly where it can pass, at the seeds' growth (2 pixels) and
    # within the median's half window of those.
    bound = lap > scalars.sigclip * (1 - 1e-3) * 2.0 * noise_floor
    needed = dilate(bound, 2 + half)

    def noise(variance: np.ndarray) -> np.ndarray:
        return noise_of(utils, variance, sepmed)

    # The noise is kept (exact on ``needed``) for the fine structure below.
    sigma, ran_s = patchwise(noise, [var], [1], needed, half, seeds=bound, grow=2 + half)
    s = np.zeros_like(lap)
    np.divide(lap, 2.0 * sigma, out=s, where=needed)
    goodpix = np.logical_not(mask)
    # sp = s − median(s) ≤ s (s ≥ 0): its median is needed only where s passes.

    def minus_median(values: np.ndarray) -> np.ndarray:
        return values - (utils.sepmedfilt7(values) if sepmed else utils.medfilt5(values))

    high = s > scalars.sigclip
    sp, ran = patchwise(minus_median, [s], [0], high, half)
    possible = high & (sp > scalars.sigclip) & goodpix

    def fine(c: np.ndarray, n: np.ndarray) -> np.ndarray:
        # The noise enters pixel by pixel: ``sigma`` is exact on ``possible`` (and
        # may be 0 elsewhere, where the result is not kept).
        with np.errstate(divide="ignore", invalid="ignore"):
            return fine_structure(utils, c, n, sepmed)

    f, ran_f = patchwise(fine, [clean, sigma], [0, 1], possible,
                          max(seed_reach(sepmed), fine_structure_reach(sepmed)))
    seeds = possible.copy()
    seeds[possible] = (sp[possible] / f[possible]) > scalars.objlim
    # The second growth step takes neighbours down to sigcliplow.
    low = dilate(seeds, 2) & ~high & (s > scalars.sigcliplow)
    sp_low, ran_l = patchwise(minus_median, [s], [0], low, half)
    sp = np.where(low, sp_low, np.where(high, sp, np.float32(0.0)))
    return grow(utils, seeds, sp, goodpix, scalars), ran_s + ran + ran_f + ran_l, possible


def _screen(clean: np.ndarray, noise_floor: np.ndarray, bad: np.ndarray, sigclip: float,
            margin: int, region: np.ndarray) -> np.ndarray:
    """Pixels of ``region`` that may be seeds: an upper bound of ``s`` above ``sigclip``
    (float32 slack), not masked; in the frame's outer band (edge treatment) always."""
    ny, nx = clean.shape
    band = margin + 2
    candidates = np.zeros((ny, nx), dtype=bool)
    inner = region.copy()
    inner[:band] = inner[-band:] = False
    inner[:, :band] = inner[:, -band:] = False
    rows, cols = np.nonzero(inner)
    x = clean
    v = 2.0 * x[rows, cols].astype(np.float64)
    up, down = x[rows - 1, cols].astype(np.float64), x[rows + 1, cols].astype(np.float64)
    left, right = x[rows, cols - 1].astype(np.float64), x[rows, cols + 1].astype(np.float64)
    lap = np.zeros(rows.size)
    for a in (up, down):
        for b in (left, right):
            lap += np.maximum(v - a - b, 0.0)
    lap *= 0.25
    candidates[rows, cols] = lap > sigclip * (1 - 1e-3) * 2.0 * noise_floor[rows, cols]
    edge = region & ~inner
    edge[band:ny - band, band:nx - band] = False
    candidates |= edge
    candidates &= ~bad
    return candidates
