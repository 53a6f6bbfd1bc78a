"""Cosmic-ray hits: sharp deposits of charge in one to a few pixels.

Muons and secondary particles cross the chip at random at a rate per unit area
(about 1-2 cm⁻² min⁻¹); the number of hits grows with the integration time.
Each hit is a short straight track: most light up one or two pixels, a few cross
up to eight. The deposited charge per pixel is log-normal around ~1000 e⁻, so
hits stand far above the sky and read noise, like real ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CosmicRays", "draw_cosmic_rays"]

_LENGTH_PROBS = np.array([0.40, 0.25, 0.15, 0.08, 0.05, 0.03, 0.02, 0.02])  # 1..8 pixels
_CHARGE_MEDIAN_E = 1000.0
_CHARGE_SIGMA = 0.7


@dataclass(frozen=True, slots=True)
class CosmicRays:
    """The hits of one frame on its image area.

    Attributes
    ----------
    rows, cols : numpy.ndarray
        int64 pixel coordinates of every hit pixel (unique).
    charge_e : numpy.ndarray
        float32 electrons deposited in each of those pixels.
    events : int
        Number of particles.
    """

    rows: np.ndarray
    cols: np.ndarray
    charge_e: np.ndarray
    events: int


def draw_cosmic_rays(shape: tuple[int, int], seconds: float, rate_per_pixel_s: float,
                     rng: np.random.Generator) -> CosmicRays:
    """Draw the hits of an integration of ``seconds`` on an image of ``shape``.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the light-sensitive area.
    seconds : float
        Integration time (the dark time: the chip collects hits with the shutter shut too).
    rate_per_pixel_s : float
        Events per pixel per second.
    rng : numpy.random.Generator

    Returns
    -------
    CosmicRays
    """
    ny, nx = shape
    events = int(rng.poisson(max(seconds, 0.0) * rate_per_pixel_s * ny * nx))
    if events == 0:
        empty = np.empty(0, dtype=np.int64)
        return CosmicRays(empty, empty, np.empty(0, dtype=np.float32), 0)
    lengths = rng.choice(np.arange(1, _LENGTH_PROBS.size + 1), size=events,
                         p=_LENGTH_PROBS / _LENGTH_PROBS.sum())
    angle = rng.uniform(0.0, np.pi, events)
    y0 = rng.uniform(0, ny, events)
    x0 = rng.uniform(0, nx, events)
    which = np.repeat(np.arange(events), lengths)
    step = np.arange(which.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    rows = np.floor(y0[which] + step * np.sin(angle[which])).astype(np.int64)
    cols = np.floor(x0[which] + step * np.cos(angle[which])).astype(np.int64)
    charge = rng.lognormal(np.log(_CHARGE_MEDIAN_E), _CHARGE_SIGMA, which.size)
    inside = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
    flat = rows[inside] * nx + cols[inside]
    unique, inverse = np.unique(flat, return_inverse=True)
    summed = np.bincount(inverse, weights=charge[inside], minlength=unique.size)
    return CosmicRays(rows=unique // nx, cols=unique % nx, charge_e=summed.astype(np.float32),
                      events=events)
