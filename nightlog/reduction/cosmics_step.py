"""One L.A.Cosmic iteration of astroscrappy, step by step, on any sub-array.

:func:`astroscrappy.detect_cosmics` runs every iteration on the whole frame. Its
iteration is made of astroscrappy's own compiled filters (subsample, Laplacian,
rebin, separable medians, 3 × 3 dilations) and a few numpy operations, and each
of them is *local*: a pixel's result depends only on the input within a fixed
distance (its *reach*). :func:`detection_step` is that iteration, the same calls
in the same order with the same float32 scalars, so that run on a patch of the
frame it gives, on the patch's pixels farther than :func:`reach` from the patch's
edge, bit for bit what the full-frame run gives there. :func:`clean_meanmask` is
astroscrappy's masked-mean cleaning (a compiled routine it does not export),
rewritten in numpy with the same float32 accumulation order and the same
double-precision division. ``tests/test_cosmics_schedule.py`` checks both
against :func:`astroscrappy.detect_cosmics` itself.

Reaches (pixels), ``sepmed=True`` / ``False``: noise model (median of the
variance) 3 / 2; Laplacian-to-noise ``s`` 3 / 2; ``sp = s − median(s)`` 6 / 4;
fine structure ``f`` 6 / 4; a seed (``sp > sigclip`` and ``sp / f > objlim``) 6 / 4;
the two neighbour growths add 2, on ``sp`` of the grown pixels.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["StepScalars", "clean_meanmask", "detection_step", "fine_structure",
           "fine_structure_reach", "grow", "laplacian", "noise_of", "reach", "seed_reach",
           "significance", "significance_from"]


@dataclass(frozen=True)
class StepScalars:
    """The settings as astroscrappy holds them: C ``float`` (float32) values.

    Attributes
    ----------
    sigclip, sigcliplow, objlim : float
        Laplacian-to-noise threshold, its neighbour fraction ``sigfrac × sigclip``
        (computed in float32, as astroscrappy does) and the fine-structure contrast.
    sepmed : bool
        Separable medians (astroscrappy's default) or full ones.
    """

    sigclip: float
    sigcliplow: float
    objlim: float
    sepmed: bool

    @classmethod
    def of(cls, sigclip: float, sigfrac: float, objlim: float, sepmed: bool) -> StepScalars:
        """Round the settings to float32 as astroscrappy's ``float`` arguments are."""
        clip, frac = np.float32(sigclip), np.float32(sigfrac)
        return cls(float(clip), float(np.float32(frac * clip)), float(np.float32(objlim)),
                   bool(sepmed))


def seed_reach(sepmed: bool) -> int:
    """Distance (pixels) over which the input decides whether a pixel is a seed."""
    return 6 if sepmed else 4


def reach(sepmed: bool) -> int:
    """Margin (pixels) a patch needs around the pixels whose flags it must get right:
    a seed's own reach, or the reach of ``sp`` two growth steps away."""
    return seed_reach(sepmed) + 2


def laplacian(utils: Any, clean: np.ndarray) -> np.ndarray:
    """astroscrappy's clipped Laplacian of the 2× subsampled image, rebinned.

    On the inner pixels it is computed in numpy without the 4× larger subsampled
    image, with the same float32 operations in the same order as astroscrappy's C
    (each subpixel ``(4 v − right − left) − (lower + upper)``, the order astroscrappy's
    compiled loop rounds in; the four summed top-left, bottom-left, bottom-right,
    top-right, then divided by 4); the
    outermost pixels, where its C treats the edge, come from astroscrappy's own
    routines on 3-pixel strips.
    """
    ny, nx = clean.shape
    if ny < 6 or nx < 6 or not _same_rounding(utils):
        conved = utils.laplaceconvolve(utils.subsample(clean))
        conved[conved < 0] = 0.0
        return np.asarray(utils.rebin(conved))
    v = clean[1:-1, 1:-1]
    up, down, left, right = clean[:-2, 1:-1], clean[2:, 1:-1], clean[1:-1, :-2], clean[1:-1, 2:]
    # The same float32 operations as the four clipped subpixel values, each shared
    # part computed once and the temporaries reused in place.
    four = v * np.float32(4.0)
    zero = np.float32(0.0)
    left_part = four - v
    left_part -= left  # (4 v − v) − left
    right_part = np.subtract(four, right, out=four)
    right_part -= v  # (4 v − right) − v
    above, below = v + up, down + v
    top_left = np.maximum(np.subtract(left_part, above), zero)
    bottom_left = np.maximum(np.subtract(left_part, below, out=left_part), zero,
                             out=left_part)
    bottom_right = np.maximum(np.subtract(right_part, below, out=below), zero, out=below)
    top_right = np.maximum(np.subtract(right_part, above, out=above), zero, out=above)
    out = np.empty((ny, nx), dtype=np.float32)
    inside = np.add(top_left, bottom_right, out=top_left)
    inside += np.add(bottom_left, top_right, out=bottom_left)
    np.divide(inside, np.float32(4.0), out=out[1:-1, 1:-1])
    for rows, cols, keep in ((slice(0, 3), slice(None), (slice(0, 1), slice(None))),
                             (slice(ny - 3, ny), slice(None), (slice(2, 3), slice(None))),
                             (slice(None), slice(0, 3), (slice(None), slice(0, 1))),
                             (slice(None), slice(nx - 3, nx), (slice(None), slice(2, 3)))):
        conved = utils.laplaceconvolve(utils.subsample(np.ascontiguousarray(clean[rows, cols])))
        conved[conved < 0] = 0.0
        out[rows, cols][keep] = np.asarray(utils.rebin(conved))[keep]
    return out


_ROUNDING: dict[int, bool] = {}
_ROUNDING_LOCK = threading.RLock()  # bands of a frame ask at once; the probe re-enters


def _same_rounding(utils: Any) -> bool:
    """Whether this build of astroscrappy rounds as :func:`laplacian` assumes (a
    compiler may order the sums otherwise): checked once on a small random image;
    if not, astroscrappy's own routines are used."""
    key = id(utils)
    with _ROUNDING_LOCK:
        if key not in _ROUNDING:
            _ROUNDING[key] = True  # the probe below must take the fast path
            probe = np.random.default_rng(0).normal(1e3, 50.0, (64, 64)).astype(np.float32)
            probe *= np.float32(3.3) ** (np.arange(probe.size).reshape(probe.shape) % 3)
            conved = utils.laplaceconvolve(utils.subsample(probe))
            conved[conved < 0] = 0.0
            _ROUNDING[key] = bool(np.array_equal(utils.rebin(conved),
                                                 laplacian(utils, probe)))
        return _ROUNDING[key]


def significance(utils: Any, clean: np.ndarray, var: np.ndarray, sepmed: bool
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``sp`` (Laplacian-to-noise minus its median) and the noise, as astroscrappy."""
    return significance_from(utils, laplacian(utils, clean), var, sepmed)


def noise_of(utils: Any, var: np.ndarray, sepmed: bool) -> np.ndarray:
    """astroscrappy's noise model: square root of the median-filtered variance (e-)."""
    m5 = utils.sepmedfilt7(var) if sepmed else utils.medfilt5(var)
    m5[m5 < 0.00001] = 0.00001
    return np.sqrt(m5)


def significance_from(utils: Any, lap: np.ndarray, var: np.ndarray, sepmed: bool
                      ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`significance` from the Laplacian (:func:`laplacian`) already computed."""
    s = np.array(lap, dtype=np.float32)
    noise = noise_of(utils, var, sepmed)
    s /= 2.0 * noise
    sp = s - (utils.sepmedfilt7(s) if sepmed else utils.medfilt5(s))
    return sp, noise


def fine_structure(utils: Any, clean: np.ndarray, noise: np.ndarray, sepmed: bool
                   ) -> np.ndarray:
    """astroscrappy's fine-structure image (``fsmode='median'``), floored at 0.01."""
    f = utils.sepmedfilt5(clean) if sepmed else utils.medfilt3(clean)
    m7 = utils.sepmedfilt9(f) if sepmed else utils.medfilt7(f)
    f = (f - m7) / noise
    f[f < 0.01] = 0.01
    return np.asarray(f)


def fine_structure_reach(sepmed: bool) -> int:
    """Distance (pixels) over which the image decides the fine structure (the noise
    given)."""
    return 6 if sepmed else 4


def grow(utils: Any, seeds: np.ndarray, sp: np.ndarray, goodpix: np.ndarray,
         scalars: StepScalars) -> np.ndarray:
    """astroscrappy's two neighbour growths of the seeds."""
    cosmics = utils.dilate3(seeds)
    cosmics = np.logical_and(cosmics, goodpix)
    cosmics = np.logical_and(sp > scalars.sigclip, cosmics)
    cosmics = utils.dilate3(cosmics)
    cosmics = np.logical_and(cosmics, goodpix)
    return np.logical_and(sp > scalars.sigcliplow, cosmics)


def detection_step(utils: Any, clean: np.ndarray, var: np.ndarray, mask: np.ndarray,
                   allowed: np.ndarray | None, scalars: StepScalars) -> np.ndarray:
    """The cosmic-ray pixels one L.A.Cosmic iteration finds (``fsmode='median'``).

    Parameters
    ----------
    utils : module
        :mod:`astroscrappy.utils` (its compiled filters).
    clean : ndarray of float32
        The image in electrons as the iteration sees it (C-contiguous).
    var : ndarray of float32
        Its variance in electrons² (C-contiguous).
    mask : ndarray of uint8
        astroscrappy's grown bad-pixel and saturated-star mask.
    allowed : ndarray of bool or None
        Where seeds may be; a superset of where the full-frame run has them, so
        the result is unchanged (``None``: everywhere).
    scalars : StepScalars
        Thresholds.

    Returns
    -------
    ndarray of bool
        Pixels flagged by this iteration (seeds grown twice, as astroscrappy does).
    """
    sp, noise = significance(utils, clean, var, scalars.sepmed)
    goodpix = np.logical_not(mask)
    seeds = np.logical_and(sp > scalars.sigclip, goodpix)
    if allowed is not None:
        seeds &= allowed
    f = fine_structure(utils, clean, noise, scalars.sepmed)
    seeds = np.logical_and(seeds, (sp / f) > scalars.objlim)
    return grow(utils, seeds, sp, goodpix, scalars)


_OFFSETS = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]


def clean_meanmask(values: np.ndarray, crmask: np.ndarray, mask: np.ndarray,
                   background: float | None, pixels: tuple[np.ndarray, np.ndarray]
                   ) -> tuple[np.ndarray, bool]:
    """astroscrappy's ``clean_meanmask`` on ``pixels``: the mean of the 5 × 5
    neighbours neither flagged nor masked.

    Parameters
    ----------
    values : ndarray of float32
        Image (or variance) to clean; modified in place at ``pixels``.
    crmask, mask : ndarray of bool
        Cosmic rays found so far; astroscrappy's bad-pixel mask.
    background : float or None
        The frame's median good value, used where no neighbour is good; ``None``
        if it has not been computed (the call then reports that it is needed and
        changes nothing).
    pixels : tuple of ndarray
        Rows and columns of the flagged pixels at least 2 pixels inside the frame.

    Returns
    -------
    new : ndarray of float32
        The cleaned values at ``pixels`` (also written into ``values``).
    needs_background : bool
        ``True`` if some pixel has no good neighbour and ``background`` was ``None``.
    """
    rows, cols = pixels
    total = np.zeros(rows.size, dtype=np.float32)
    count = np.zeros(rows.size, dtype=np.int64)
    bad = crmask | mask
    for dy, dx in _OFFSETS:  # astroscrappy's order: rows outer, columns inner
        r, c = rows + dy, cols + dx
        good = ~bad[r, c]
        total = np.where(good, total + values[r, c], total)
        count += good
    empty = count == 0
    if empty.any() and background is None:
        return values[rows, cols], True
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (total.astype(np.float64) / count).astype(np.float32)
    if empty.any():
        mean[empty] = np.float32(background)
    values[rows, cols] = mean
    return mean, False
