"""Overscan subtraction: remove the bias level measured in the serial overscan.

The overscan (``BIASSEC``) holds "pixels" read after each row that never saw
light, so it measures the bias level of *that* readout. :func:`subtract_overscan`
estimates a level per row (median, mean or sigma-clipped mean over the overscan
columns), optionally smooths it with a low-order polynomial in the row number,
and subtracts it from every column of that row.

Overscan **or** bias level, never both
---------------------------------------
Subtracting the overscan *and* a full master bias removes the bias level twice
and leaves a mostly negative image. When overscan subtraction is on, every
frame — including the biases, darks and flats that build the masters — must be
overscan-corrected first; the master bias then carries only the *residual* bias
structure (a few ADU of two-dimensional pattern), and subtracting it afterwards
is correct. :func:`subtract_overscan` therefore refuses a frame whose header
already says the overscan (``OVERSCAN``) or a bias (``ZEROCOR``) was
subtracted, and :func:`nightlog.reduction.calibrate.subtract_bias` checks that
frame and master agree on it.

Columns next to the data
------------------------
The first overscan columns after the image area often carry residual charge
(charge-transfer tail) or a light leak — on the Palomar LFC, columns 2049–2055
of ``BIASSEC='[2049:2080,1:4127]'``. ``skip_columns`` drops that many overscan
columns on the side that touches the data section.

Rows the overscan does not cover (the LFC's ``BIASSEC`` stops at row 4127 of
4128) take the fitted model's value when a model is used and otherwise the
level of the nearest covered row; the header says how many rows that was.
The uncertainty and mask of the frame are carried over unchanged: the overscan
is averaged over many pixels and its noise is neglected, as in ccdproc.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import numpy.typing as npt
from astropy.nddata import CCDData

from nightlog.errors import ReductionError, SectionError
from nightlog.reduction._cards import add_history, header_of, set_card
from nightlog.reduction._frame import new_frame
from nightlog.sections import Section, format_section, parse_section

__all__ = ["OverscanMethod", "overscan_levels", "subtract_overscan"]

OverscanMethod = Literal["median", "mean", "clipped_mean"]
_METHODS = ("median", "mean", "clipped_mean")
_CLIP_ITERATIONS = 5


def _region_slices(
    ccd: CCDData, region: str | Section | None, skip_columns: int
) -> tuple[slice, slice]:
    """Positive-step (rows, columns) slices of the overscan after skipping columns."""
    shape = ccd.shape
    if region is None:
        text = ccd.meta.get("BIASSEC")
        if not text:
            raise ReductionError("no overscan region given and the header has no BIASSEC")
        rows, cols = parse_section(str(text), shape)
    elif isinstance(region, str):
        rows, cols = parse_section(region, shape)
    else:
        rows, cols = region
    row_range = range(*rows.indices(shape[0]))
    col_range = range(*cols.indices(shape[1]))
    if len(row_range) == 0 or len(col_range) == 0:
        raise SectionError("the overscan region is empty")
    r0, r1 = min(row_range), max(row_range) + 1
    c0, c1 = min(col_range), max(col_range) + 1
    if skip_columns < 0:
        raise ReductionError(f"skip_columns must be >= 0, not {skip_columns}")
    if skip_columns >= c1 - c0:
        raise ReductionError(
            f"skip_columns={skip_columns} leaves none of the {c1 - c0} overscan columns"
        )
    if _data_is_left_of(ccd, c0, c1):
        c0 += skip_columns
    else:
        c1 -= skip_columns
    return slice(r0, r1), slice(c0, c1)


def _data_is_left_of(ccd: CCDData, c0: int, c1: int) -> bool:
    """Whether the image area lies at lower column numbers than the overscan."""
    datasec = ccd.meta.get("DATASEC")
    if datasec:
        try:
            _, dcols = parse_section(str(datasec), ccd.shape)
            drange = range(*dcols.indices(ccd.shape[1]))
            if len(drange):
                return (min(drange) + max(drange)) / 2 < (c0 + c1 - 1) / 2
        except SectionError:
            pass
    return bool((c0 + c1 - 1) / 2 > (ccd.shape[1] - 1) / 2)


def _row_statistic(strip: npt.NDArray[np.float64], method: str,
                   clip_sigma: float) -> npt.NDArray[np.float64]:
    """Per-row statistic of ``strip`` (NaN = excluded), float64, all-NaN rows give NaN."""
    # Rows whose pixels are all excluded legitimately give NaN; numpy's warning
    # about them is expected and the caller fills those rows.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return _row_statistic_nan(strip, method, clip_sigma)


def _row_statistic_nan(strip: npt.NDArray[np.float64], method: str,
                       clip_sigma: float) -> npt.NDArray[np.float64]:
    has_nan = bool(np.isnan(strip).any())
    if method == "median":
        median = np.nanmedian(strip, axis=1) if has_nan else _row_median(strip)
        return np.asarray(median, dtype=np.float64)
    if method == "mean":
        mean = np.nanmean(strip, axis=1) if has_nan else np.mean(strip, axis=1)
        return np.asarray(mean, dtype=np.float64)
    values = strip.copy()
    for _ in range(_CLIP_ITERATIONS):
        centre = np.nanmedian(values, axis=1, keepdims=True)
        spread = np.nanstd(values, axis=1, keepdims=True)
        reject = np.abs(values - centre) > clip_sigma * spread
        if not reject.any():
            break
        values[reject] = np.nan
    return np.asarray(np.nanmean(values, axis=1), dtype=np.float64)


def _row_median(strip: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``numpy.median(strip, axis=1)`` of a strip without NaN: the same middle values
    and their mean, found by sorting each row (for rows of an overscan's few dozen
    pixels several times faster than the partition ``numpy.median`` makes)."""
    n = strip.shape[1]
    if n == 0:
        return np.asarray(np.median(strip, axis=1), dtype=np.float64)
    ordered = np.sort(strip, axis=1)
    k = n // 2
    return np.mean(ordered[:, k - 1:k + 1] if n % 2 == 0 else ordered[:, k:k + 1], axis=1)


def _fit_rows(rows: npt.NDArray[np.float64], levels: npt.NDArray[np.float64], degree: int,
              niterate: int, low_reject: float, high_reject: float
              ) -> tuple[np.polynomial.Polynomial, int]:
    """Least-squares polynomial of the row levels, with IRAF ``icfit``'s rejection.

    Each of at most ``niterate`` passes measures sigma from the residuals of the
    rows still in the fit (``sqrt(sum(r**2) / (n - 1))``), rejects those below
    ``-low_reject`` or above ``high_reject`` sigma (0 switches a side off; grow 0)
    and fits again; rejected rows stay out. It stops early when a pass rejects
    nothing or would leave no more rows than the model has terms.
    """
    used = np.ones(rows.size, dtype=bool)
    fit = np.polynomial.Polynomial.fit(rows, levels, degree)
    for _ in range(niterate):
        resid = levels - fit(rows)
        n = int(used.sum())
        sigma = float(np.sqrt(np.sum(resid[used] ** 2) / (n - 1))) if n > 1 else 0.0
        if not sigma > 0:
            break
        out = np.zeros(rows.size, dtype=bool)
        if low_reject > 0:
            out |= resid < -low_reject * sigma
        if high_reject > 0:
            out |= resid > high_reject * sigma
        out &= used
        if not out.any() or n - int(out.sum()) <= degree + 1:
            break
        used &= ~out
        fit = np.polynomial.Polynomial.fit(rows[used], levels[used], degree)
    return fit, int(rows.size - used.sum())


def _check_rejection(niterate: int, low_reject: float, high_reject: float,
                     model_degree: int | None) -> None:
    if niterate < 0 or not low_reject >= 0 or not high_reject >= 0:
        raise ReductionError(
            f"niterate={niterate}, low_reject={low_reject}, high_reject={high_reject}: "
            "all must be >= 0")
    if niterate and model_degree is None:
        raise ReductionError("rejection of overscan rows (niterate) needs a model_degree")


def overscan_levels(
    ccd: CCDData,
    *,
    region: str | Section | None = None,
    skip_columns: int = 0,
    method: OverscanMethod = "median",
    model_degree: int | None = None,
    per_row: bool = True,
    clip_sigma: float = 3.0,
    niterate: int = 0,
    low_reject: float = 3.0,
    high_reject: float = 3.0,
) -> npt.NDArray[np.float64]:
    """The overscan level to subtract from each row of ``ccd``, in the data's units.

    Parameters are those of :func:`subtract_overscan`.

    Returns
    -------
    numpy.ndarray of float64
        One level per image row (length ``ccd.shape[0]``); with ``per_row=False``
        every entry holds the single frame level.

    Raises
    ------
    ReductionError
        Unknown method, a model without per-row levels, a degree that the number
        of valid rows cannot support, or no valid overscan pixel at all.
    SectionError
        The region (or ``BIASSEC``) is malformed or off the image.
    """
    return _levels(ccd, region, skip_columns, method, model_degree, per_row, clip_sigma,
                   niterate, low_reject, high_reject)[0]


def _levels(ccd: CCDData, region: str | Section | None, skip_columns: int, method: str,
            model_degree: int | None, per_row: bool, clip_sigma: float, niterate: int,
            low_reject: float, high_reject: float
            ) -> tuple[npt.NDArray[np.float64], int]:
    """The levels of :func:`overscan_levels` and the number of rows the fit rejected."""
    if method not in _METHODS:
        raise ReductionError(f"overscan method must be one of {_METHODS}, not {method!r}")
    _check_rejection(niterate, low_reject, high_reject, model_degree)
    if model_degree is not None and (not per_row or model_degree < 0):
        raise ReductionError("a polynomial model needs per_row=True and a degree >= 0")
    rows, cols = _region_slices(ccd, region, skip_columns)
    strip = np.array(ccd.data[rows, cols], dtype=np.float64)
    if ccd.mask is not None:
        strip[np.asarray(ccd.mask)[rows, cols].astype(bool)] = np.nan
    strip[~np.isfinite(strip)] = np.nan
    if np.isnan(strip).all():
        raise ReductionError("the overscan region holds no valid pixel")
    nrows = ccd.shape[0]
    if not per_row:
        level = float(_row_statistic(strip.reshape(1, -1), method, clip_sigma)[0])
        return np.full(nrows, level), 0
    per = _row_statistic(strip, method, clip_sigma)
    covered = np.arange(rows.start, rows.stop, dtype=np.float64)
    valid = np.isfinite(per)
    if model_degree is not None:
        if valid.sum() <= model_degree:
            raise ReductionError(
                f"{valid.sum()} valid overscan rows cannot fit a degree-{model_degree} model"
            )
        fit, rejected = _fit_rows(covered[valid], per[valid], model_degree, niterate,
                                  low_reject, high_reject)
        return np.asarray(fit(np.arange(nrows, dtype=np.float64)), dtype=np.float64), rejected
    # Rows without a level (outside the region, or fully masked) take the level of
    # the nearest row that has one: np.interp holds the end values constant.
    return np.interp(np.arange(nrows, dtype=np.float64), covered[valid], per[valid]), 0


def subtract_overscan(
    ccd: CCDData,
    *,
    region: str | Section | None = None,
    skip_columns: int = 0,
    method: OverscanMethod = "median",
    model_degree: int | None = None,
    per_row: bool = True,
    clip_sigma: float = 3.0,
    niterate: int = 0,
    low_reject: float = 3.0,
    high_reject: float = 3.0,
) -> CCDData:
    """Subtract the overscan level from a raw frame.

    Parameters
    ----------
    ccd : CCDData
        Raw frame in ADU, overscan not yet trimmed away.
    region : str or tuple of slice, optional
        Overscan region as a FITS section (1-based, ``'[2049:2080,1:4127]'``) or
        numpy ``(rows, columns)`` slices; default the header's ``BIASSEC``.
    skip_columns : int, optional
        Number of overscan columns next to the data section to ignore (residual
        charge / light leak). Default 0.
    method : {'median', 'mean', 'clipped_mean'}, optional
        Statistic over the overscan columns of each row (or over the whole region
        with ``per_row=False``). ``'clipped_mean'`` rejects values more than
        ``clip_sigma`` standard deviations from the median, iterating up to 5 times.
    model_degree : int, optional
        If given, fit a polynomial of this degree to the per-row levels as a
        function of row number and subtract the model instead of the raw levels.
    per_row : bool, optional
        ``True`` (default): one level per row. ``False``: one level for the frame.
    clip_sigma : float, optional
        Rejection threshold of ``'clipped_mean'``, in standard deviations.
    niterate : int, optional
        IRAF ``ccdproc``'s ``niterate``: passes of rejection of outlying rows from
        the model fit (a row hit by a cosmic ray or a bright column's bleed).
        Default 0, no rejection; needs ``model_degree``.
    low_reject, high_reject : float, optional
        IRAF's ``low_reject``/``high_reject``: rows whose level lies more than this
        many sigma of the fit residuals below/above the fit are rejected; sigma
        is measured from the rows still in the fit, ``sqrt(sum(r**2)/(n - 1))``;
        0 switches that side off. Default 3.

    Returns
    -------
    CCDData
        New frame, float32, same shape (the overscan itself is still there: trim
        afterwards), uncertainty, mask and ``flags`` copied, header with ``OVERSCAN`` (what was
        done), ``OVSCLEV`` (mean level subtracted, ADU) and a HISTORY line.

    Raises
    ------
    ReductionError
        The header says the overscan (``OVERSCAN``) or a bias (``ZEROCOR``) was
        already subtracted; no region and no ``BIASSEC``; bad method/model; or no
        valid overscan pixel.
    SectionError
        The region is malformed or outside the frame.
    """
    for key, what in (("OVERSCAN", "the overscan"), ("ZEROCOR", "a bias")):
        if key in ccd.meta:
            raise ReductionError(
                f"{what} was already subtracted from this frame ({key}={ccd.meta[key]!r}); "
                "subtract the overscan or a full bias level, never both"
            )
    levels, rejected = _levels(ccd, region, skip_columns, method, model_degree, per_row,
                               clip_sigma, niterate, low_reject, high_reject)
    rows, cols = _region_slices(ccd, region, skip_columns)
    data = np.asarray(ccd.data, dtype=np.float32) - levels.astype(np.float32)[:, np.newaxis]
    header = header_of(ccd)
    used = format_section((rows, cols), ccd.shape)
    how = f"{method}/row" if per_row else f"{method}/frame"
    if model_degree is not None:
        how += f" poly{model_degree}"
    if niterate:
        how += f" rej{low_reject:g}/{high_reject:g}x{niterate}"
    set_card(header, "OVERSCAN", f"{used} {how}", "overscan section and method")
    set_card(header, "OVSCLEV", round(float(np.mean(levels)), 4), "mean overscan level [ADU]")
    uncovered = ccd.shape[0] - (rows.stop - rows.start)
    note = f"; {uncovered} rows outside the region extrapolated" if uncovered and per_row else ""
    if niterate:
        note += f"; {rejected} rows rejected from the fit"
    add_history(header, f"Overscan {used} subtracted ({how}, skip {skip_columns} cols){note}")
    return new_frame(ccd, data, header)

