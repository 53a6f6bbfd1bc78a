"""What the recovery tests of the simulated multi-amplifier nights share: the
products of a reduced night, the masters' per-amplifier figures, and the reduced
sky's robust scatter against its noise floor computed from the simulator's truth."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from nightlog.archive import Archive
from nightlog.store.products import read_product


def products(archive: Archive) -> dict[tuple[str, str | None], Any]:
    """Reduced products by raw file name and CCD (``None`` for a file of one CCD)."""
    frames = archive.frames()
    names = {int(f["id"]): (Path(str(f["path"])).name, f["ccd"] or None) for f in frames}
    return {names[int(r["frame_id"])]: archive.product(int(r["id"]))
            for r in archive.products()}


def science(truth: dict[str, Any]) -> list[dict[str, Any]]:
    """The truth's entries of the science files."""
    return [f for f in truth["files"] if f["kind"] == "science"]


def amplifier_stats(archive: Archive, kind: str) -> list[list[dict[str, Any]]]:
    """Each master of ``kind``: its per-amplifier statistics."""
    out = []
    for row in archive.masters(kind=kind):
        out.append(archive.master(int(row["id"])).record["stats"]["amplifiers"])
    assert out, f"no master {kind}"
    return out


def robust_std(values: np.ndarray) -> float:
    """1.4826 times the median absolute deviation of the finite values."""
    values = values[np.isfinite(values)]
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def sky(product: Any) -> np.ndarray:
    """The reduced frame (e-) with flagged pixels as NaN."""
    ccd = read_product(product.path).ccd
    data = np.asarray(ccd.data, dtype=np.float64).copy()
    assert ccd.flags is not None
    data[ccd.flags != 0] = np.nan
    return data


def without_plane(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` less the plane fitted to them (the simulated sky has a linear
    gradient of up to 2 % along each axis), the fit repeated without the pixels
    beyond 4 robust sigma (stars, cosmic rays)."""
    yy, xx = np.indices(pixels.shape)
    good = np.isfinite(pixels)
    for _ in range(5):
        design = np.column_stack([np.ones(good.sum()), yy[good], xx[good]])
        coef, *_ = np.linalg.lstsq(design, pixels[good], rcond=None)
        residual = pixels - (coef[0] + coef[1] * yy + coef[2] * xx)
        good = np.isfinite(pixels) & (np.abs(residual) <= 4.0 * robust_std(residual))
    return residual


def noise_floor(truth: dict[str, Any], entry: dict[str, Any], amp: int,
                response: np.ndarray) -> np.ndarray:
    """The reduced sky's noise per pixel (product units), from the truth alone.

    ``response`` is the truth's pixel response over the image one product holds
    (the whole detector, or one CCD of a mosaic). In electrons the pixel holds
    ``sky x response``: its photon noise, the amplifier's read noise, the dark
    current, and the masters' own noise: the master bias's (read noise /
    sqrt(biases)), the master dark's (read noise scaled by the exposure ratio over
    sqrt(darks)). Divided by the master flat (the response over its median in the
    image's central box, the flat's normalisation), and the master flat's own
    relative noise, 1 / sqrt(flats x electrons per flat at that pixel), times the
    reduced sky.
    """
    files = truth["files"]
    read = truth["amplifiers"][amp]["read_noise_e"]
    sky_e = entry["signal_e"]
    dark = truth["dark_current_e_per_s"] * entry["exptime"]
    biases = [f for f in files if f["kind"] == "bias"]
    darks = [f for f in files if f["kind"] == "dark"]
    flats = [f for f in files if f["kind"] == "flat" and f["filter"] == entry["filter"]]
    flat_e = float(np.mean([f["signal_e"] for f in flats]))
    dark_scale = entry["exptime"] / float(np.mean([f["exptime"] for f in darks]))
    ny, nx = response.shape
    norm = float(np.median(response[ny // 4: ny // 4 + ny // 2, nx // 4: nx // 4 + nx // 2]))
    electrons = (sky_e * response + read**2 + dark + read**2 / len(biases)
                 + (read * dark_scale) ** 2 / len(darks))
    reduced = sky_e * norm
    flat_part = reduced**2 / (len(flats) * flat_e * response)
    return np.sqrt(electrons * (norm / response) ** 2 + flat_part)


def fixed_sources(residuals: list[np.ndarray], *, threshold: float = 1.5,
                  grow: int = 3) -> np.ndarray:
    """Where the stars of a pointing lie: the pixels whose median over the frames of
    ``residuals`` (each frame's sky, plane taken out, in units of its noise floor)
    is above ``threshold`` (3 standard errors of a six-frame median of unit noise),
    grown by ``grow`` pixels. The sky is the same nowhere twice; the stars are."""
    with warnings.catch_warnings():  # a pixel flagged in every frame: NaN, not a star
        warnings.simplefilter("ignore", RuntimeWarning)
        stack = np.nanmedian(np.stack(residuals), axis=0)
    core = np.nan_to_num(stack, nan=0.0) > threshold
    grown = core.copy()
    for dy in range(-grow, grow + 1):
        for dx in range(-grow, grow + 1):
            grown |= np.roll(np.roll(core, dy, axis=0), dx, axis=1)
    return grown
