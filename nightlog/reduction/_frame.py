"""Building the new CCDData a reduction step returns, never sharing memory with its input."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from astropy.io import fits
from astropy.nddata import CCDData, NDUncertainty, StdDevUncertainty

_KEEP: Any = object()


def new_frame(
    ccd: CCDData,
    data: npt.NDArray[Any],
    header: fits.Header,
    *,
    uncertainty: npt.NDArray[Any] | Any | None = _KEEP,
    mask: npt.NDArray[Any] | Any | None = _KEEP,
    flags: npt.NDArray[Any] | Any | None = _KEEP,
    unit: Any = None,
) -> CCDData:
    """A new frame with ``data`` and ``header``; other planes copied from ``ccd``.

    ``uncertainty`` (a standard-deviation array, or an uncertainty object kept as
    it is), ``mask`` (boolean) and
    ``flags`` (the ``uint16`` bit plane) replace those of ``ccd`` when given
    (``None`` removes them); left out, they are copied. ``data`` and a given
    ``uncertainty`` are taken as they are, not copied: pass arrays the step
    allocated itself.
    """
    if uncertainty is _KEEP:
        unc = None if ccd.uncertainty is None else ccd.uncertainty.__class__(
            np.array(ccd.uncertainty.array, copy=True), copy=False)
    else:
        unc = (uncertainty if uncertainty is None or isinstance(uncertainty, NDUncertainty)
               else StdDevUncertainty(uncertainty, copy=False))
    if mask is _KEEP:
        new_mask = None if ccd.mask is None else np.array(ccd.mask, copy=True)
    else:
        new_mask = mask
    if flags is _KEEP:
        flags = None if ccd.flags is None else np.array(ccd.flags, copy=True)
    return CCDData(
        data,
        unit=ccd.unit if unit is None else unit,
        meta=header,
        uncertainty=unc,
        mask=new_mask,
        wcs=None if ccd.wcs is None else ccd.wcs.deepcopy(),
        flags=flags,
    )
