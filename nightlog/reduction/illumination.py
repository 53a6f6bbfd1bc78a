"""A smooth illumination model of a flat: a low-order 2-D polynomial.

As in the lecture, a normalised flat (for instance a twilight flat) is fitted
with ``astropy.modeling.models.Polynomial2D`` by linear least squares; the model
keeps the large-scale illumination pattern and drops the pixel-to-pixel
response. To stay fast on full frames the fit is made on a block-averaged copy
(masked and non-finite pixels left out of each block's mean) and the model is
then evaluated on every pixel.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt
from astropy.io import fits
from astropy.modeling import fitting, models
from astropy.nddata import CCDData
from astropy.utils.exceptions import AstropyUserWarning

from nightlog.errors import ReductionError

__all__ = ["fit_illumination"]


def _block_means(data: npt.NDArray[np.float64], block: int
                 ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64],
                            npt.NDArray[np.float64]]:
    """Mean of each ``block x block`` cell (NaN ignored) and the cell centres (x, y)."""
    ny, nx = data.shape
    by, bx = ny // block, nx // block
    cells = data[: by * block, : bx * block].reshape(by, block, bx, block)
    valid = np.isfinite(cells)
    sums = np.where(valid, cells, 0.0).sum(axis=(1, 3))
    counts = valid.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    yc = (np.arange(by) * block + (block - 1) / 2.0)[:, None] * np.ones((1, bx))
    xc = (np.arange(bx) * block + (block - 1) / 2.0)[None, :] * np.ones((by, 1))
    return means, xc, yc


def fit_illumination(flat: CCDData, degree: int = 2, *, block: int = 16) -> CCDData:
    """Fit a low-order 2-D polynomial illumination model to a flat.

    Parameters
    ----------
    flat : CCDData
        A (normalised) flat; masked and non-finite pixels are ignored. Not
        modified.
    degree : int
        Total degree of the polynomial in x (column) and y (row); default 2.
    block : int
        Side in pixels of the blocks averaged before fitting (default 16); must
        leave at least as many blocks as the polynomial has coefficients.

    Returns
    -------
    CCDData
        The model evaluated on every pixel (float32, the flat's unit), with the
        coefficients as ``ILLUMC<i>`` cards and a HISTORY line.

    Raises
    ------
    ReductionError
        ``degree`` < 0, ``block`` < 1, or too few valid blocks to fit.
    """
    if degree < 0 or block < 1:
        raise ReductionError(f"need degree >= 0 and block >= 1, got {degree} and {block}")
    data = np.array(flat.data, dtype=np.float64)
    if flat.mask is not None:
        data[np.asarray(flat.mask, dtype=bool)] = np.nan
    data[~np.isfinite(data)] = np.nan
    block = min(block, *data.shape)
    means, xc, yc = _block_means(data, block)
    good = np.isfinite(means)
    model = models.Polynomial2D(degree=degree)
    if np.count_nonzero(good) < len(model.parameters):
        raise ReductionError(
            f"{np.count_nonzero(good)} valid blocks cannot fit a degree-{degree} polynomial "
            f"({len(model.parameters)} coefficients); use smaller blocks or a lower degree"
        )
    # Scale coordinates to [-1, 1] so the least-squares system is well conditioned.
    ny, nx = data.shape
    sx, sy = 2.0 / max(nx - 1, 1), 2.0 / max(ny - 1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        fitted = fitting.LinearLSQFitter()(model, xc[good] * sx - 1, yc[good] * sy - 1,
                                           means[good])
    out = np.empty((ny, nx), dtype=np.float32)
    x = np.arange(nx) * sx - 1
    for r0 in range(0, ny, 256):
        # Row chunks keep the float64 coordinate grids small on full frames.
        y = np.arange(r0, min(r0 + 256, ny)) * sy - 1
        xx, yy = np.meshgrid(x, y)
        out[r0:r0 + y.size] = fitted(xx, yy)
    header = fits.Header(flat.header) if flat.header else fits.Header()
    result = CCDData(out, unit=flat.unit, meta=header)
    result.header["ILLUMDEG"] = (degree, "degree of the illumination polynomial")
    for i, value in enumerate(fitted.parameters):
        result.header[f"ILLUMC{i}"] = (float(value), f"coefficient {fitted.param_names[i]}")
    result.header["HISTORY"] = (f"Illumination model: Polynomial2D degree {degree} on "
                                f"{block}x{block} blocks, x and y scaled to [-1, 1]")
    return result
