"""A stack of frames read once and served in row bands under a memory limit.

Stage 1 (:func:`build_stack`) takes each input once (an array, a CCDData, or a
loader the caller gives, which reads a file only when it is needed), applies the caller's
``prepare`` step, converts to float32 (masked pixels become NaN), scales it, and
either keeps the frames themselves in memory (when they fit the limit: no second
copy of the stack is made; without ``prepare``, scale callables or frame
statistics, a loader's stored values, converted tile by tile,
:mod:`~nightlog.reduction.stored_frame`) or writes them to a scratch file in a *band-major*
layout: band ``b`` holds rows ``r0:r1`` of frame 0, then of frame 1, ..., so a
band of all ``N`` frames is one contiguous read. Stage 2 (:meth:`Stack.bands`)
yields each band as ``N`` flat rows of pixels, read with plain file reads into
one reused buffer; a memory map would count the page cache into the resident
size and defeat the limit. The combination gathers a tile of pixels from those
rows into a small array of its own.

The scratch file is removed when the stack is closed, also on errors.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData

from nightlog.errors import CombineError, ShapeMismatchError
from nightlog.reduction.stored_frame import StackRow, StoredFrame, as_float32, stored_frame

__all__ = ["FrameInput", "FrameLoader", "FrameSteps", "MemoryPlan", "Stack", "build_stack",
           "plan_memory", "read_frame"]

#: A frame to read when the stack needs it: a callable of no argument returning a
#: new CCDData (the store's :class:`~nightlog.store.images.FrameFile` reads one HDU).
FrameLoader: TypeAlias = Callable[[], CCDData]
FrameInput: TypeAlias = np.ndarray | CCDData | FrameLoader
Prepare: TypeAlias = Callable[[CCDData], CCDData]


@dataclass(frozen=True)
class FrameSteps:
    """A preparation whose steps depend only on the frame and its place in the stack
    (``step(ccd, i)``): overscan, trim, a master's subtraction scaled to the frame's
    own exposure. Being pure, :func:`build_stack` prepares such frames ``threads``
    at a time (a plain ``prepare`` is called in input order, in one thread).
    """

    steps: tuple[Callable[[CCDData, int], CCDData], ...]

    def at(self, i: int) -> Prepare:
        """The preparation of the ``i``-th frame."""
        def prepare(ccd: CCDData) -> CCDData:
            for step in self.steps:
                ccd = step(ccd, i)
            return ccd

        return prepare


#: Bytes of tile working memory per pixel and frame (sorted copies, float64
#: prefix sums and temporaries of the rejection kernel).
WORK_BYTES_PER_VALUE = 56
#: Bytes per output pixel: data and uncertainty (float32), count (uint16), mask.
_OUTPUT_BYTES_PER_PIXEL = 11
#: Pixels per tile at most: a stack of few frames gets its 1 MiB of values in
#: longer tiles (fewer kernel calls; each pixel is combined alone, so the tile
#: size never changes a result).
_MAX_TILE = 65536
_MIN_TILE = 64


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """How a stack of ``n`` frames of ``shape`` is held and processed."""

    in_memory: bool
    band_rows: int
    tile_pixels: int


def plan_memory(n: int, shape: tuple[int, int], limit: int, threads: int,
                prepared: bool) -> MemoryPlan:
    """Choose in-memory or scratch, the band height and the tile size.

    The budget counts the stack (or one band of it), the output arrays, the
    rejection kernel's working copies for ``threads`` tiles, and the transient
    copies made while frames are read (three float32 frames per reading thread;
    six when a ``prepare`` step may make float64 copies).

    Raises
    ------
    CombineError
        The limit cannot hold even one row band next to the output arrays.
    """
    ny, nx = shape
    frame = ny * nx * 4
    # Reading workers (one with a plain ``prepare``) each hold their copies.
    reading = (6 if prepared else 3) * threads * frame
    output = ny * nx * _OUTPUT_BYTES_PER_PIXEL
    # About 1 MiB of float32 values per tile keeps the kernel's rows in cache.
    tile = int(min(_MAX_TILE, max(1024, 2**18 // n)))
    while True:
        work = tile * n * WORK_BYTES_PER_VALUE * threads
        if n * frame + max(reading, output + work) <= limit:
            return MemoryPlan(True, ny, tile)
        rows = (limit - output - work) // (n * nx * 4)
        if rows >= 1 and reading <= limit:
            return MemoryPlan(False, int(min(rows, ny)), tile)
        if tile <= _MIN_TILE:
            need = max(reading, output + work + n * nx * 4)
            raise CombineError(
                f"memory_limit={limit} bytes cannot hold one row band of {n} frames of "
                f"shape {shape} beside the output; at least {need} bytes are needed"
            )
        tile //= 2


def read_frame(item: FrameInput, *, prepare: Prepare | None = None
               ) -> tuple[npt.NDArray[np.float32], fits.Header]:
    """One input as a new float32 array (masked pixels NaN) and its header.

    Parameters
    ----------
    item : ndarray, CCDData or FrameLoader
        An image in memory (not modified), or a loader: a callable of no
        argument returning a new CCDData (for example
        :class:`nightlog.store.images.FrameFile`), called once, when the frame is
        needed, so that a stack of files is never all in memory at once.
    prepare : callable or None
        Applied to the frame (as CCDData) before conversion, e.g. overscan,
        trim and bias subtraction.

    Raises
    ------
    CombineError
        The input is not a 2-D image, or a loader returned something else.
    NightlogError
        Whatever a loader raises (a file that cannot be read).
    """
    owned = False
    if isinstance(item, np.ndarray):
        ccd = CCDData(item, unit=u.adu) if prepare is not None else None
        data: Any = item
    elif isinstance(item, CCDData):
        ccd = item
    elif callable(item):
        loaded = item()
        if not isinstance(loaded, CCDData):
            raise CombineError(f"a frame loader returned a {type(loaded).__name__}, "
                               "not a CCDData")
        ccd, owned = loaded, True
    else:
        raise CombineError(f"cannot combine an input of type {type(item).__name__}")
    header = fits.Header() if ccd is None or not ccd.header else fits.Header(ccd.header)
    if prepare is not None:
        assert ccd is not None
        ccd = prepare(ccd)
        header = fits.Header(ccd.header) if ccd.header else header
        owned = True  # a new frame
    if ccd is not None:
        # A frame this call made (loaded or prepared) is ours: no second copy,
        # unless ``prepare`` handed back the caller's own pixels.
        out = (np.asarray(ccd.data, dtype=np.float32) if owned
               else np.array(ccd.data, dtype=np.float32, copy=True))
        if (owned and isinstance(item, np.ndarray | CCDData)
                and np.may_share_memory(out, _pixels(item))):
            out = np.array(out, copy=True)
        if ccd.mask is not None:
            out[np.asarray(ccd.mask, dtype=bool)] = np.nan
    else:
        out = np.array(data, dtype=np.float32, copy=True)
    if out.ndim != 2:
        raise CombineError(f"only 2-D images can be combined, got shape {out.shape}")
    return out, header


def _pixels(item: FrameInput) -> Any:
    return item.data if isinstance(item, CCDData) else item


def _compact(frame: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """``frame`` itself when it is C-contiguous and holds no larger buffer alive
    (a trimmed view would keep the untrimmed frame in memory), else a copy."""
    base = frame.base
    if frame.flags.c_contiguous and (base is None or getattr(base, "nbytes", 0) <= frame.nbytes):
        return frame
    return np.ascontiguousarray(frame)


def _write_all(fd: int, buffer: memoryview, offset: int) -> None:
    while buffer:
        written = os.pwrite(fd, buffer, offset)
        buffer = buffer[written:]
        offset += written


def _read_all(fd: int, buffer: memoryview, offset: int) -> None:
    while buffer:
        got = os.preadv(fd, [buffer], offset)
        if got == 0:
            raise CombineError("scratch stack file is shorter than written")
        buffer = buffer[got:]
        offset += got


@dataclass
class Stack:
    """``N`` prepared, scaled float32 frames, held in memory (some perhaps as
    stored, :mod:`~nightlog.reduction.stored_frame`) or in a scratch file."""

    shape: tuple[int, int]
    n: int
    plan: MemoryPlan
    header: fits.Header
    scales: list[float]
    frame_stats: list[Any]
    _frames: list[npt.NDArray[np.float32] | StoredFrame | None] | None = None
    _fd: int | None = None
    _path: str | None = None
    _band_starts: list[int] = field(default_factory=list)

    def _band_offset(self, row0: int) -> int:
        return row0 * self.shape[1] * 4 * self.n

    def bands(self) -> Iterator[tuple[int, list[StackRow]]]:
        """Yield ``(first_row, rows)``: ``rows`` holds, for each of the ``N`` frames,
        its pixels of the band's image rows as one flat float32 array (a view, never
        to be written to) or, for a frame kept as stored, its
        :class:`~nightlog.reduction.stored_frame.StoredFrame` (read tiles of either
        with :func:`~nightlog.reduction.stored_frame.gather_tile`).

        A scratch-backed stack reuses one buffer: a band is valid only until the
        next one is requested.
        """
        ny, nx = self.shape
        if self._frames is not None:
            yield 0, [frame if isinstance(frame, StoredFrame) else frame.reshape(-1)
                      for frame in self._frames if frame is not None]
            return
        assert self._fd is not None
        buffer = np.empty(self.n * self.plan.band_rows * nx, dtype=np.float32)
        for row0 in range(0, ny, self.plan.band_rows):
            rows = min(self.plan.band_rows, ny - row0)
            band = buffer[: self.n * rows * nx].reshape(self.n, rows, nx)
            _read_all(self._fd, memoryview(band.data).cast("B"), self._band_offset(row0))
            yield row0, list(band.reshape(self.n, -1))

    def close(self) -> None:
        """Free the memory and remove the scratch file (idempotent)."""
        self._frames = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._path is not None:
            Path(self._path).unlink(missing_ok=True)
            self._path = None

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_stack(inputs: Sequence[FrameInput], *, prepare: Prepare | FrameSteps | None,
                scale: Sequence[float] | Callable[[npt.NDArray[np.float32]], float] | None,
                frame_stat: Callable[[npt.NDArray[np.float32]], Any] | None,
                memory_limit: int, threads: int,
                scratch_dir: str | os.PathLike[str] | None) -> Stack:
    """Stage 1: read every input once into a :class:`Stack`.

    ``scale`` is a sequence of multiplicative factors or a callable giving the
    factor of a prepared frame; ``frame_stat`` is called on each prepared,
    unscaled frame and its results are kept in order.

    Raises
    ------
    ShapeMismatchError
        The prepared frames differ in shape.
    CombineError, NightlogError
        See :func:`read_frame` and :func:`plan_memory`.
    """
    n = len(inputs)

    def prepare_of(i: int) -> Prepare | None:
        return prepare.at(i) if isinstance(prepare, FrameSteps) else prepare

    # Without a step that needs whole float32 frames, loaders that can hand over
    # the stored values keep them in memory (see :mod:`.stored_frame`).
    keep_stored = prepare is None and frame_stat is None and not callable(scale)
    first, header = _read(inputs[0], prepare_of(0), keep_stored)
    shape = (int(first.shape[0]), int(first.shape[1]))
    # A plain ``prepare`` is called in input order in this thread (callers may rely
    # on it); loaders alone, or with :class:`FrameSteps`, by ``threads`` workers.
    workers = 1 if prepare is not None and not isinstance(prepare, FrameSteps) else threads
    plan = plan_memory(n, shape, memory_limit, workers, prepare is not None)
    stack = Stack(shape=shape, n=n, plan=plan, header=header, scales=[1.0] * n,
                  frame_stats=[None] * n)
    keep_stored = keep_stored and plan.in_memory
    if isinstance(first, StoredFrame) and not keep_stored:
        first = as_float32(first)

    def ingest(i: int, frame: npt.NDArray[np.float32] | StoredFrame | None) -> None:
        if frame is None:
            frame = _read(inputs[i], prepare_of(i), keep_stored)[0]
        if frame.shape != shape:
            raise ShapeMismatchError(
                f"frame {i} has shape {frame.shape} after preparation, frame 0 has {shape}"
            )
        if frame_stat is not None:
            stack.frame_stats[i] = frame_stat(frame)
        factor = _factor(scale, i, frame)
        stack.scales[i] = factor
        if isinstance(frame, StoredFrame):
            assert stack._frames is not None
            stack._frames[i] = replace(frame, factor=factor)
            return
        if factor != 1.0:
            frame *= np.float32(factor)
        _store(stack, i, frame)

    try:
        if plan.in_memory:
            stack._frames = [None] * n
        else:
            fd, path = tempfile.mkstemp(prefix="nightlog-stack-", suffix=".f32",
                                        dir=scratch_dir)
            stack._fd, stack._path = fd, path
        ingest(0, first)
        del first
        if workers == 1:
            for i in range(1, n):
                ingest(i, None)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for start in range(1, n, workers):
                    # One window at a time bounds the frames held at once.
                    batch = [pool.submit(ingest, i, None)
                             for i in range(start, min(start + workers, n))]
                    for future in batch:
                        future.result()
        if frame_stat is None:
            stack.frame_stats = []
        return stack
    except BaseException:
        stack.close()
        raise


def _read(item: FrameInput, prepare: Prepare | None, keep_stored: bool
          ) -> tuple[npt.NDArray[np.float32] | StoredFrame, fits.Header]:
    """One input: as stored when allowed and its loader offers it, else as
    :func:`read_frame` reads it."""
    offer = getattr(item, "stored", None)
    if keep_stored and callable(offer) and not isinstance(item, np.ndarray | CCDData):
        image = offer()
        if image is not None:
            return stored_frame(image), fits.Header(image.header)
    return read_frame(item, prepare=prepare)


def _factor(scale: Sequence[float] | Callable[[npt.NDArray[np.float32]], float] | None,
            i: int, frame: npt.NDArray[np.float32] | StoredFrame) -> float:
    if scale is None:
        return 1.0
    if callable(scale):
        assert not isinstance(frame, StoredFrame)
        factor = float(scale(frame))
    else:
        factor = float(scale[i])
    if not np.isfinite(factor) or factor <= 0:
        raise CombineError(f"scale factor of frame {i} is {factor}; it must be finite and > 0")
    return factor


def _store(stack: Stack, i: int, frame: npt.NDArray[np.float32]) -> None:
    if stack._frames is not None:
        stack._frames[i] = _compact(frame)
        return
    assert stack._fd is not None
    ny, nx = stack.shape
    rows = stack.plan.band_rows
    for row0 in range(0, ny, rows):
        r1 = min(row0 + rows, ny)
        offset = stack._band_offset(row0) + i * (r1 - row0) * nx * 4
        _write_all(stack._fd, memoryview(frame[row0:r1].data).cast("B"), offset)
