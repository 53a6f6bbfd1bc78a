"""The stars of the science field: one fixed field per night, drawn on each science frame.

Stars have Moffat profiles (β = 2.5, the shape of seeing-limited images) whose
width follows the seeing and the airmass; the telescope's pointing wanders by a
pixel or two between frames. Fluxes follow a power law (many faint stars, few
bright ones); the brightest saturate in a long exposure, as in real fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nightlog.simulate.cameras import CameraModel, Geometry

__all__ = ["StarField", "StarImage", "draw_star_field"]

_BETA = 2.5
_COUNT_SLOPE = 0.75  # N(> flux) ∝ flux^-0.75


@dataclass(frozen=True, slots=True)
class StarImage:
    """The stars of one frame: their electrons, their width and each one's peak.

    ``peak_e`` holds the brightest pixel of each star whose whole stamp lies on
    the image (stars cut by an edge are left out: no measurement takes them).
    """

    electrons: np.ndarray
    fwhm_px: float
    peak_e: np.ndarray


@dataclass(frozen=True, slots=True)
class StarField:
    """Star positions (image pixels, 0-based) and fluxes (e⁻/s above the atmosphere)."""

    x: np.ndarray
    y: np.ndarray
    flux_e: np.ndarray
    fwhm_px: float

    def render(self, shape: tuple[int, int], *, exptime: float, throughput: float,
               airmass: float, seeing: float, shift: tuple[float, float]) -> StarImage:
        """Electrons the stars put in each pixel of an image of ``shape``.

        Parameters
        ----------
        shape : tuple of int
            ``(ny, nx_data)`` of the image area.
        exptime : float
            Seconds.
        throughput : float
            Filter and atmosphere transmission (multiplies the fluxes).
        airmass : float
            Widens the images as ``airmass ** 0.6``.
        seeing : float
            Multiplies the nominal FWHM (frame-to-frame seeing change).
        shift : tuple of float
            Pointing offset ``(dy, dx)`` in pixels.

        Returns
        -------
        StarImage
            float32 electrons before the flat field, the frame's FWHM (pixels) and
            the peak of every star wholly on the image.
        """
        ny, nx = shape
        fwhm = self.fwhm_px * seeing * airmass**0.6
        alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / _BETA) - 1.0))
        half = int(np.ceil(2.5 * fwhm)) + 1
        offsets = np.arange(-half, half + 1)
        xs = self.x + shift[1]
        ys = self.y + shift[0]
        keep = (xs > -half) & (xs < nx + half) & (ys > -half) & (ys < ny + half)
        xs, ys = xs[keep], ys[keep]
        flux = self.flux_e[keep] * (exptime * throughput)
        x0 = np.rint(xs).astype(np.int64)
        y0 = np.rint(ys).astype(np.int64)
        px = x0[:, None, None] + offsets[None, None, :]  # (n, 1, k)
        py = y0[:, None, None] + offsets[None, :, None]  # (n, k, 1)
        dx = (px - xs[:, None, None]).astype(np.float32)
        dy = (py - ys[:, None, None]).astype(np.float32)
        profile = (1.0 + (dx * dx + dy * dy) / np.float32(alpha * alpha)) ** np.float32(-_BETA)
        # Normalise within the stamp so each star delivers its whole flux.
        profile *= (flux / profile.sum(axis=(1, 2)))[:, None, None].astype(np.float32)
        px_full = np.broadcast_to(px, profile.shape)
        py_full = np.broadcast_to(py, profile.shape)
        inside = (px_full >= 0) & (px_full < nx) & (py_full >= 0) & (py_full < ny)
        index = (py_full[inside] * nx + px_full[inside])
        image = np.bincount(index, weights=profile[inside], minlength=ny * nx)
        whole = inside.all(axis=(1, 2))
        return StarImage(electrons=image.astype(np.float32).reshape(ny, nx), fwhm_px=fwhm,
                         peak_e=profile[whole].max(axis=(1, 2)))


def draw_star_field(camera: CameraModel, geom: Geometry, rng: np.random.Generator) -> StarField:
    """Draw the night's star field for ``camera`` at the scaled geometry.

    The number of stars scales with the image area; fluxes are unchanged, so a
    shrunken frame shows the same stars with fewer of them.
    """
    n = max(3, round(camera.stars * geom.area_factor))
    lo, hi = camera.star_flux_e
    u = rng.uniform(0.0, 1.0, n)
    flux = np.minimum(lo * u ** (-1.0 / _COUNT_SLOPE), hi)
    return StarField(x=rng.uniform(0, geom.nx_data, n), y=rng.uniform(0, geom.ny, n),
                     flux_e=flux, fwhm_px=max(1.5, camera.fwhm_px * geom.scale))
