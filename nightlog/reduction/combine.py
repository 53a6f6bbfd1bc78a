"""Combine a stack of frames: average, median or sum, with outlier rejection.

:func:`combine` takes each input once (arrays, CCDData, or loaders that read a file
when it is needed), applies
an optional per-frame ``prepare`` step and scaling, and combines the stack row
band by row band within a memory limit. Rejection is min/max (``nlow``/``nhigh``)
then iterated sigma clipping (:class:`~nightlog.reduction.rejection.ClipSpec`)
around the median, with the spread measured by the standard deviation, the
MAD, or the detector noise model (IRAF ``ccdclip``).

Differences from ``ccdproc.combine`` (which the tests compare against):

* ``ccdproc`` clips once (``maxiters=1``) around ``sigma_clip_func`` (default the
  mean); here ``ClipSpec(max_iters=1, centre='mean')`` reproduces it exactly, and
  the default iterates around the median until nothing more is rejected.
* ``ccdproc`` applies its sigma clip to all values even after ``clip_extrema``;
  here min/max rejection comes first and sigma clipping sees only its survivors.
* The median's uncertainty is ``1.2533 * std / sqrt(n)`` (the standard error of
  a median of normal samples); ``ccdproc`` uses ``1.4826 * MAD / sqrt(n)``.
* Everything is float32 in and out (statistics accumulate in float64).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty

from nightlog.errors import CombineError
from nightlog.reduction.rejection import ClipSpec, Method, TileResult, combine_tile
from nightlog.reduction.scaling import RegionLike, ScaleStat, region_level
from nightlog.reduction.stack import (
    WORK_BYTES_PER_VALUE,
    FrameInput,
    FrameSteps,
    Prepare,
    Stack,
    build_stack,
)
from nightlog.reduction.stored_frame import StackRow, gather_tile

__all__ = ["DEFAULT_MEMORY_LIMIT", "ClipSpec", "CombineResult", "combine"]

#: Default memory limit of :func:`combine`: 2 GiB.
DEFAULT_MEMORY_LIMIT = 2 * 1024**3


@dataclass
class CombineResult:
    """The combined image and what is known about each pixel.

    Attributes
    ----------
    data : ndarray, float32
        Combined value; NaN where nothing survived.
    uncertainty : ndarray, float32
        Standard deviation of ``data``: ``std/sqrt(n)`` (average),
        ``1.2533*std/sqrt(n)`` (median), ``std*sqrt(n)`` (sum), with ``std`` the
        population standard deviation (``ddof=0``, as ``ccdproc``) of the ``n``
        surviving values, unweighted also when ``weights`` are given; NaN where
        nothing survived. It describes the scatter of the stack, so it includes
        any real frame-to-frame variation.
    count : ndarray, uint16
        Number of frames that contributed to each pixel.
    mask : ndarray, bool
        True where nothing survived.
    scales : list of float
        Multiplicative factor applied to each frame before combining.
    header : astropy.io.fits.Header
        Copy of the first (prepared) input's header, with ``NCOMBINE``.
    frame_stats : list
        Results of the ``frame_stat`` callable for each frame, if given.
    offset_response : ndarray, float32, or None
        With ``offset_response=δ``: how much each combined value falls per unit
        of a value subtracted from every frame before scaling (a master bias's
        error), through the rejection as it is: ``(c(+δ) - c(-δ)) / 2δ`` with
        ``c(±δ)`` the combination of the frames less ``∓δ`` (NaN where nothing
        survived).
    """

    data: npt.NDArray[np.float32]
    uncertainty: npt.NDArray[np.float32]
    count: npt.NDArray[np.uint16]
    mask: npt.NDArray[np.bool_]
    scales: list[float]
    header: fits.Header
    frame_stats: list[Any] = field(default_factory=list)
    offset_response: npt.NDArray[np.float32] | None = None

    def to_ccddata(self, unit: u.UnitBase | str = u.adu) -> CCDData:
        """A new CCDData with a :class:`StdDevUncertainty` and the boolean mask."""
        return CCDData(self.data.copy(), unit=unit, mask=self.mask.copy(),
                       uncertainty=StdDevUncertainty(self.uncertainty.copy()),
                       meta=self.header.copy())


def _check_options(n: int, method: str, nlow: int, nhigh: int, weights: Any,
                   scale: Any, threads: int) -> npt.NDArray[np.float64] | None:
    if n == 0:
        raise CombineError("no frames to combine")
    if method not in ("average", "median", "sum"):
        raise CombineError(f"unknown combine method {method!r}: use 'average', 'median' or 'sum'")
    if nlow < 0 or nhigh < 0:
        raise CombineError(f"nlow={nlow} and nhigh={nhigh} must be >= 0")
    if nlow + nhigh >= n:
        raise CombineError(f"nlow + nhigh = {nlow + nhigh} would reject all {n} frames")
    if threads < 1:
        raise CombineError(f"threads={threads} must be >= 1")
    if isinstance(scale, str):
        if scale not in ("median", "mode"):
            raise CombineError(f"unknown scale {scale!r}: use 'median', 'mode' or factors")
    elif scale is not None and len(scale) != n:
        raise CombineError(f"{len(scale)} scale factors for {n} frames")
    if weights is None:
        return None
    if method == "median":
        raise CombineError("weights apply to 'average' and 'sum', not to 'median'")
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise CombineError(f"weights must be {n} finite values >= 0 with a positive sum")
    return w


def combine(inputs: Sequence[FrameInput], *, method: Method = "average",
            clip: ClipSpec | None = None, nlow: int = 0, nhigh: int = 0,
            scale: Sequence[float] | ScaleStat | None = None, scale_region: RegionLike = None,
            weights: Sequence[float] | None = None,
            prepare: Prepare | FrameSteps | None = None,
            memory_limit: int = DEFAULT_MEMORY_LIMIT,
            scratch_dir: str | os.PathLike[str] | None = None, threads: int = 1,
            frame_stat: Callable[[npt.NDArray[np.float32]], Any] | None = None,
            offset_response: float | None = None) -> CombineResult:
    """Combine a stack of frames with optional scaling, weights and rejection.

    Parameters
    ----------
    inputs : sequence of ndarray, CCDData or FrameLoader
        The frames, or loaders that read them when needed (the store's
        :class:`~nightlog.store.images.FrameFile`). Each is taken once and never
        modified. A CCDData mask excludes those pixels; non-finite
        values are excluded too.
    method : {'average', 'median', 'sum'}
        Combination of the surviving values. ``'sum'`` adds the survivors only
        (it is not rescaled for rejected values).
    clip : ClipSpec or None
        Iterated sigma clipping; ``None`` for none.
    nlow, nhigh : int
        Number of lowest and highest values of each pixel rejected before
        sigma clipping (IRAF ``minmax``).
    scale : sequence of float, 'median', 'mode' or None
        Per-frame multiplicative factors, or normalise each frame by ``1/level``
        with ``level`` the median or mode of ``scale_region`` of the prepared
        frame (flats). The factors used are returned in ``scales``.
    scale_region : str, pair of slices or None
        Region for ``scale='median'|'mode'`` (FITS section or numpy slices);
        default the central half of each axis.
    weights : sequence of float or None
        Per-frame weights (``'average'`` and ``'sum'``).
    prepare : callable, FrameSteps or None
        ``CCDData -> CCDData`` applied once to each frame as it is read, e.g.
        overscan subtraction, trimming and bias subtraction; called in input
        order, in the calling thread. A
        :class:`~nightlog.reduction.stack.FrameSteps` (pure steps that may also
        take the frame's index) is applied ``threads`` frames at a time instead.
        Array inputs are wrapped as ADU.
    memory_limit : int
        Bytes the combination may use beyond the interpreter (default 2 GiB):
        the stack, working copies and the output. Stacks that do not fit are
        staged in a scratch file and combined in row bands.
    scratch_dir : str, path or None
        Folder for the scratch file (default: the system temporary folder). The
        file is always removed.
    threads : int
        Threads combining tiles in parallel (numpy releases the GIL).
    frame_stat : callable or None
        Called on each prepared, unscaled float32 frame; results are returned in
        ``frame_stats`` (statistics without a second read).
    offset_response : float or None
        ``δ``, in the frames' unit before scaling: also combine the frames shifted
        by ``±δ`` times their scale and return the slope per pixel
        (``offset_response``): the weight in the result of anything subtracted
        alike from every frame (a master bias's error of about ``δ``). An average
        without rejection gives the mean scale; a clip keeps or drops a value
        with the shift, and cuts the noisy frames' values to its window, so their
        share is smaller. Two more combinations of each tile, unless every frame
        has the same scale ``s`` and the rejection moves with a common shift
        (:func:`shift_invariant`): the shifts then change no decision and the
        slope is ``s`` (``s`` times the count for a sum) without them.

    Returns
    -------
    CombineResult

    Raises
    ------
    CombineError
        No frames, bad options, a non-positive scale level, or a memory limit
        too small for one row band.
    ShapeMismatchError
        Frames of different shapes.
    NightlogError
        Whatever a loader raises (the store's: a file or HDU that cannot be read).
    """
    n = len(inputs)
    w = _check_options(n, method, nlow, nhigh, weights, scale, threads)
    factors: Sequence[float] | Callable[[npt.NDArray[np.float32]], float] | None
    if isinstance(scale, str):
        stat: ScaleStat = scale

        def factors(frame: npt.NDArray[np.float32]) -> float:
            level = region_level(frame, scale_region, stat)
            if not level > 0:
                raise CombineError(f"{stat} level {level} of the scale region is not positive")
            return 1.0 / level
    else:
        factors = scale
    with build_stack(inputs, prepare=prepare, scale=factors, frame_stat=frame_stat,
                     memory_limit=memory_limit, threads=threads,
                     scratch_dir=scratch_dir) as stack:
        result = _combine_stack(stack, method=method, clip=clip, nlow=nlow, nhigh=nhigh,
                                weights=w, threads=threads, offset_response=offset_response)
    return result


#: Largest block after whose release the C allocator raises its thresholds.
_ALLOCATOR_MAX_THRESHOLD = 32 * 1024**2


def _keep_tile_memory(nbytes: int) -> None:
    """Let the tiles' temporaries reuse freed memory instead of fresh pages.

    The C allocator (glibc) maps every block above its threshold (128 KiB at
    start) afresh and returns heap tops above its trim threshold at once, so a
    kernel that allocates and frees a tile's temporaries faults in new pages for
    each tile (about a gigabyte for 6 full frames, at high system CPU time). It
    raises both thresholds when a mapped block is freed; one block of a tile's
    planned working memory, allocated and freed untouched, does that. Elsewhere
    this costs one untouched allocation.
    """
    block = np.empty(min(nbytes, _ALLOCATOR_MAX_THRESHOLD), dtype=np.uint8)
    del block


def shift_invariant(clip: ClipSpec | None) -> bool:
    """Whether a combination with ``clip`` (and any ``nlow``/``nhigh``) makes the
    same decisions when one value is added to every frame's value of a pixel:
    min/max ranks, and clips whose centre and spread move with the values or not
    at all (the standard deviation, the MAD, IRAF's ``sigclip`` in the stack's
    units, the read noise of a bias). Not the noise model of frames that collected
    light, ``avsigclip`` or residuals in each frame's Poisson units: their spread
    grows with the level."""
    if clip is None or clip.spread in ("std", "mad"):
        return True
    if clip.spread == "sigclip":
        return not clip.frame_scales
    return clip.spread == "noise" and not clip.light


def _uniform_response(count: npt.NDArray[np.uint16], scale: float, method: Method
                      ) -> npt.NDArray[np.float32]:
    """The slope of a shift-invariant combination of frames of one scale (see
    :func:`combine`'s ``offset_response``): the scale, times the count for a sum,
    NaN where nothing survived."""
    response = (np.float32(scale) * count.astype(np.float32) if method == "sum"
                else np.full(count.shape, scale, dtype=np.float32))
    response[count == 0] = np.nan
    return response


def _combine_stack(stack: Stack, *, method: Method, clip: ClipSpec | None, nlow: int,
                   nhigh: int, weights: npt.NDArray[np.float64] | None,
                   threads: int, offset_response: float | None = None) -> CombineResult:
    """Stage 2: combine the stack band by band, tiles in parallel."""
    ny, nx = stack.shape
    _keep_tile_memory(stack.plan.tile_pixels * stack.n * WORK_BYTES_PER_VALUE)
    data = np.empty(ny * nx, dtype=np.float32)
    unc = np.empty(ny * nx, dtype=np.float32)
    count = np.empty(ny * nx, dtype=np.uint16)
    mean_scale = float(np.mean(stack.scales))
    scales = np.asarray(stack.scales, dtype=np.float64)
    # A weighted sum moves by its weights' sum: measured, as mixed scales are.
    uniform = (bool(offset_response) and shift_invariant(clip)
               and (weights is None or method != "sum") and bool(np.all(scales == scales[0])))
    measured = bool(offset_response) and not uniform
    response = np.empty(ny * nx, dtype=np.float32) if measured else None
    tile = stack.plan.tile_pixels
    line_length = None
    if clip is not None and clip.spread == "avsigclip":
        # avsigclip measures its factor per image line: tiles of whole lines.
        tile, line_length = max(nx, tile - tile % nx), nx

    def one(values: npt.NDArray[np.float32]) -> TileResult:
        # ``values`` is the tile's own array: the kernel may sort it in place.
        return combine_tile(values, method=method, clip=clip, nlow=nlow, nhigh=nhigh,
                            weights=weights, mean_scale=mean_scale, scales=scales,
                            line_length=line_length, overwrite=True)

    def work(rows: list[StackRow], start: int, p0: int) -> None:
        # The tile's own (N, P) float32 array, gathered from the frames' rows
        # while they are in cache.
        values = gather_tile(rows, p0, min(p0 + tile, rows[0].size))
        tile_response = None
        if response is not None and offset_response:
            # The shifted copies are made before the kernel may reorder ``values``.
            shift = (np.float32(offset_response) * scales.astype(np.float32))[:, None]
            up, down = one(values + shift), one(values - shift)
            tile_response = (up.data - down.data) / np.float32(2.0 * offset_response)
        res = one(values)
        sl = slice(start + p0, start + p0 + res.data.size)
        data[sl], unc[sl], count[sl] = res.data, res.uncertainty, res.count
        if response is not None and tile_response is not None:
            response[sl] = tile_response

    if threads == 1:
        # One thread: the tiles in this one, without a pool's hand-offs.
        for row0, rows in stack.bands():
            for p0 in range(0, rows[0].size, tile):
                work(rows, row0 * nx, p0)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for row0, rows in stack.bands():
                futures = [pool.submit(work, rows, row0 * nx, p0)
                           for p0 in range(0, rows[0].size, tile)]
                for future in futures:
                    future.result()
    if uniform:
        response = _uniform_response(count, float(scales[0]), method)
    header = stack.header.copy()
    header["NCOMBINE"] = (stack.n, "number of frames combined")
    return CombineResult(data=data.reshape(ny, nx), uncertainty=unc.reshape(ny, nx),
                         count=count.reshape(ny, nx), mask=(count == 0).reshape(ny, nx),
                         scales=list(stack.scales), header=header,
                         frame_stats=list(stack.frame_stats),
                         offset_response=(None if response is None
                                          else response.reshape(ny, nx)))
