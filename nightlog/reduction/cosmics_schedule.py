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
* **patches** -- around each group of candidates grown by the 2 growth pixels,
  with a margin of :func:`~nightlog.reduction.cosmics_step.reach` pixels, packed
  side by side into one mosaic for a single call; results are kept only
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

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

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

__all__ = ["ScheduleReport", "dilate", "scheduled_lacosmic"]

_SAT_TILE = 32
_MIN_SIDE = 24  # smallest side given to astroscrappy's filters (the 9-wide median's C
#                 writes outside arrays much smaller than its window)
_FULL_FRAME_FRACTION = 0.7  # patches covering more than this: one full-frame step


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
                       sigfrac: float, objlim: float, niter: int, sepmed: bool
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
    rn = float(np.float32(readnoise))
    ny, nx = data.shape
    clean = np.empty((ny, nx), dtype=np.float32)
    clean[:, :] = data * g
    if invar is not None:
        var = np.ascontiguousarray(invar * float(np.float32(g * g)), dtype=np.float32)
    else:
        var = clean + float(np.float32(rn * rn))
    mask = _astroscrappy_mask(core, utils, clean, inmask, float(np.float32(satlevel)), sepmed)
    scalars = StepScalars.of(sigclip, sigfrac, objlim, sepmed)
    margin = reach(sepmed)
    bad = mask.astype(bool)
    # The noise median's half window, widened by the cleaning's 5 × 5 mean.
    noise_floor = np.sqrt(np.maximum(_block_minimum(var, (3 if sepmed else 2) + 2), 1e-5))
    backgrounds: tuple[float, float] | None = None
    original = clean.copy(), var.copy()  # the fallback medians are of the uncleaned frame

    report = ScheduleReport()
    crmask = np.zeros((ny, nx), dtype=bool)
    region: np.ndarray | None = None  # where seeds may differ from the last iteration
    for _ in range(niter):
        if region is None:
            flags, ran, report.candidates = _first_iteration(utils, clean, var, mask, scalars)
        else:
            allowed = _screen(clean, noise_floor, bad, scalars.sigclip, margin, region)
            if not allowed.any():
                break

            def step(c: np.ndarray, v: np.ndarray, m: np.ndarray, a: np.ndarray) -> np.ndarray:
                return detection_step(utils, c, v, m, a, scalars)

            flags, ran = _patchwise(step, [clean, var, mask, allowed], [0, 1, 1, False],
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
        _, need = clean_meanmask(clean, crmask, bad, None if backgrounds is None
                                 else backgrounds[0], pixels)
        if need:
            backgrounds = _backgrounds(utils, *original, bad)
            # A pixel with no good neighbour takes the frame's median variance,
            # which the noise floor must not exceed.
            np.minimum(noise_floor, np.float32(np.sqrt(max(backgrounds[1], 1e-5))),
                       out=noise_floor)
            clean_meanmask(clean, crmask, bad, backgrounds[0], pixels)
        clean_meanmask(var, crmask, bad, None if backgrounds is None else backgrounds[1],
                       pixels)
        changed = np.zeros((ny, nx), dtype=bool)
        changed[pixels] = (clean[pixels] != before[0]) | (var[pixels] != before[1])
        region = dilate(changed, margin)
    cleaned = clean / g
    return crmask, cleaned, report


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
    """``mask`` grown by ``radius`` pixels in every direction (a square), by shifted ORs
    that double their reach."""
    out = mask.copy()
    for axis in (0, 1):
        done = 0
        while done < radius:
            step = min(done + 1, radius - done)
            grown = out.copy()
            if axis == 0:
                grown[step:] |= out[:-step]
                grown[:-step] |= out[step:]
            else:
                grown[:, step:] |= out[:, :-step]
                grown[:, :-step] |= out[:, step:]
            out = grown
            done += step
    return out


def _block_minimum(values: np.ndarray, radius: int) -> np.ndarray:
    """A lower bound of the minimum of ``values`` within ``radius`` pixels of each pixel:
    the minimum over the blocks (of side ``radius``) around the pixel's block."""
    ny, nx = values.shape
    side = max(1, radius)
    by, bx = -(-ny // side), -(-nx // side)
    padded = np.full((by * side, bx * side), np.inf, dtype=np.float64)
    padded[:ny, :nx] = values
    blocks = padded.reshape(by, side, bx, side).min(axis=(1, 3))
    wide = np.pad(blocks, 1, constant_values=np.inf)
    around = np.min([wide[1 + dy:1 + dy + by, 1 + dx:1 + dx + bx]
                     for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
    return np.repeat(np.repeat(around, side, axis=0), side, axis=1)[:ny, :nx]


def _tiles_any(values: np.ndarray, tile: int) -> np.ndarray:
    ny, nx = values.shape
    padded = np.zeros((-(-ny // tile) * tile, -(-nx // tile) * tile), dtype=bool)
    padded[:ny, :nx] = values
    return padded.reshape(padded.shape[0] // tile, tile, -1, tile).any(axis=(1, 3))


def _backgrounds(utils: Any, clean: np.ndarray, var: np.ndarray,
                 bad: np.ndarray) -> tuple[float, float]:
    """astroscrappy's fallback values: medians of the good pixels, as it computes them
    (before the first cleaning, which leaves good pixels untouched)."""
    good = ~bad
    values = np.ascontiguousarray(clean[good], dtype=np.float32)
    variances = np.ascontiguousarray(var[good], dtype=np.float32)
    return (float(utils.median(values, values.size)),
            float(utils.median(variances, variances.size)))


def _first_iteration(utils: Any, clean: np.ndarray, var: np.ndarray, mask: np.ndarray,
                     scalars: StepScalars) -> tuple[np.ndarray, int, np.ndarray]:
    """The first iteration: ``sp`` on the whole frame, the fine structure (the dearest
    part) only around the pixels with ``sp > sigclip``, the only ones it can decide.
    Returns the flags, the pixels run and those pixels (the pre-screen)."""
    sepmed = scalars.sepmed
    s = laplacian(utils, clean)
    s /= 2.0 * noise_of(utils, var, sepmed)
    goodpix = np.logical_not(mask)
    # sp = s − median(s) ≤ s (s ≥ 0): its median is needed only where s passes.
    half = 3 if sepmed else 2

    def minus_median(values: np.ndarray) -> np.ndarray:
        return values - (utils.sepmedfilt7(values) if sepmed else utils.medfilt5(values))

    high = s > scalars.sigclip
    sp, ran = _patchwise(minus_median, [s], [0], high, half)
    possible = high & (sp > scalars.sigclip) & goodpix

    def fine(c: np.ndarray, v: np.ndarray) -> np.ndarray:
        return fine_structure(utils, c, noise_of(utils, v, sepmed), sepmed)

    f, ran_f = _patchwise(fine, [clean, var], [0, 1], possible,
                          max(seed_reach(sepmed), fine_structure_reach(sepmed)))
    seeds = possible.copy()
    seeds[possible] = (sp[possible] / f[possible]) > scalars.objlim
    # The second growth step takes neighbours down to sigcliplow.
    low = dilate(seeds, 2) & ~high & (s > scalars.sigcliplow)
    sp_low, ran_l = _patchwise(minus_median, [s], [0], low, half)
    sp = np.where(low, sp_low, np.where(high, sp, np.float32(0.0)))
    return grow(utils, seeds, sp, goodpix, scalars), ran + ran_f + ran_l, possible


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


def _patchwise(func: Any, arrays: list[np.ndarray], fills: list[Any], core: np.ndarray,
               margin: int) -> tuple[np.ndarray, int]:
    """``func`` (local within ``margin`` pixels) evaluated exactly on ``core``.

    The frame's outer band is run as four strips of the frame itself (so the edge is
    treated as in a full-frame run); each group of inner core pixels as a patch with
    the margin around it, all packed into one mosaic for a single call. When the
    patches would cover most of the frame, one full-frame call. Returns the result
    (valid on ``core``) and the pixels given to ``func``.
    """
    ny, nx = core.shape
    inner = np.zeros((ny, nx), dtype=bool)
    inner[margin:ny - margin, margin:nx - margin] = True
    labels = ndimage.label(core & inner, structure=np.ones((3, 3)))[0]
    boxes = ndimage.find_objects(labels)
    area = sum((b[0].stop - b[0].start + 2 * margin) * (b[1].stop - b[1].start + 2 * margin)
               for b in boxes)
    width = max(2 * margin, _MIN_SIDE)  # astroscrappy's filters need a few pixels
    strips = 2 * width * (nx + ny)
    if area + strips > _FULL_FRAME_FRACTION * ny * nx or min(ny, nx) < 4 * width:
        return np.asarray(func(*arrays)), ny * nx
    out: np.ndarray | None = None
    ran = 0
    for ys, xs, keep in (
            (slice(0, width), slice(None), (slice(0, margin), slice(None))),
            (slice(ny - width, ny), slice(None), (slice(width - margin, width), slice(None))),
            (slice(None), slice(0, width), (slice(None), slice(0, margin))),
            (slice(None), slice(nx - width, nx), (slice(None), slice(width - margin, width)))):
        if core[ys, xs][keep].any():
            result = np.asarray(func(*[np.ascontiguousarray(a[ys, xs]) for a in arrays]))
            if out is None:
                out = np.zeros((ny, nx), dtype=result.dtype)
            out[ys, xs][keep] = np.where(core[ys, xs][keep], result[keep], out[ys, xs][keep])
            ran += result.size
    if boxes:
        out, size = _mosaic(func, arrays, fills, margin, boxes, labels, out)
        ran += size
    if out is None:
        # Nothing to run: only the result's type is wanted. astroscrappy's C filters
        # write past a patch smaller than _MIN_SIDE (heap corruption), so probe with one.
        probe = [np.ascontiguousarray(a[:_MIN_SIDE, :_MIN_SIDE]) for a in arrays]
        out = np.zeros((ny, nx), dtype=np.asarray(func(*probe)).dtype)
    return out, ran


def _mosaic(func: Any, arrays: list[np.ndarray], fills: list[Any], margin: int,
            boxes: list[tuple[slice, slice]], labels: np.ndarray,
            out: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Run ``func`` once on the patches (boxes with their margin) packed in shelves;
    copy each box's own core pixels into ``out``; the mosaic's size."""
    patches = [(slice(b[0].start - margin, b[0].stop + margin),
                slice(b[1].start - margin, b[1].stop + margin)) for b in boxes]
    heights = [p[0].stop - p[0].start for p in patches]
    widths = [p[1].stop - p[1].start for p in patches]
    side = max(min(2048, labels.shape[1]), max(widths))
    places: list[tuple[int, int]] = [(0, 0)] * len(patches)
    y = x = shelf = 0
    for i in sorted(range(len(patches)), key=lambda k: -heights[k]):
        if x + widths[i] > side:
            y, x, shelf = y + shelf, 0, 0
        places[i] = (y, x)
        x += widths[i]
        shelf = max(shelf, heights[i])
    shape = (max(y + shelf, _MIN_SIDE), side)
    packed = [np.full(shape, fill, dtype=a.dtype) for a, fill in zip(arrays, fills, strict=True)]
    for (py, px), (ys, xs), h, w in zip(places, patches, heights, widths, strict=True):
        for target, source in zip(packed, arrays, strict=True):
            target[py:py + h, px:px + w] = source[ys, xs]
    found = np.asarray(func(*packed))
    if out is None:
        out = np.zeros(labels.shape, dtype=found.dtype)
    for number, ((py, px), box) in enumerate(zip(places, boxes, strict=True), start=1):
        h, w = box[0].stop - box[0].start, box[1].stop - box[1].start
        mine = labels[box] == number
        out[box][mine] = found[py + margin:py + margin + h, px + margin:px + margin + w][mine]
    return out, shape[0] * shape[1]
