"""Frames kept in a stack as stored: the file's values and their scaling.

A frame loader may offer its frame's values as stored (for 16-bit data, the
integers before ``BSCALE``/``BZERO``) through a ``stored()`` method returning a
:class:`StoredImage`, or ``None`` when it cannot. When a stack needs neither a
``prepare`` step nor anything measured on whole frames, it keeps those values
(two bytes a pixel for 16-bit data instead of four) and converts each tile to
float32 as it is combined, with the float32 operations the reader applies to a
whole frame: ``float32(raw) * BSCALE + BZERO``, ``BLANK`` to NaN, then the
frame's scale factor. The tiles hold the very values the float32 frames would
hold; the stack is half the size and no whole frame is converted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias

import numpy as np
import numpy.typing as npt
from astropy.io import fits

from nightlog.errors import CombineError

__all__ = ["StackRow", "StoredFrame", "StoredImage", "as_float32", "gather_tile",
           "stored_frame"]


class StoredImage(Protocol):
    """What a loader's ``stored()`` returns: a frame's values as stored.

    Attributes
    ----------
    raw : ndarray, 2-D
        The stored values (any numeric dtype, any byte order), a new array.
    bscale, bzero : float
        Physical value (ADU) = ``raw * bscale + bzero``.
    blank : int or None
        Stored value of pixels without data (integer data only).
    header : astropy.io.fits.Header
        The frame's header without ``BSCALE``, ``BZERO`` and ``BLANK``.
    """

    raw: np.ndarray
    bscale: float
    bzero: float
    blank: int | None
    header: fits.Header


@dataclass(frozen=True, slots=True)
class StoredFrame:
    """One frame of a stack as stored, flattened, with its scale factor."""

    raw: np.ndarray
    shape: tuple[int, int]
    bscale: float
    bzero: float
    blank: int | None
    factor: float = 1.0

    @property
    def size(self) -> int:
        """Pixels of the frame."""
        return int(self.raw.size)

    def to_float32(self, start: int, stop: int, out: npt.NDArray[np.float32]) -> None:
        """Write the physical, scaled float32 values of flat pixels ``start:stop``
        into ``out`` (ADU times the scale factor; NaN for ``BLANK``)."""
        part = self.raw[start:stop]
        if self.bscale == 1.0 and self.bzero != 0.0:
            # Converted to float32 and offset in one pass (the same two float32 steps).
            np.add(part, np.float32(self.bzero), out=out, dtype=np.float32,
                   casting="unsafe")
        else:
            np.copyto(out, part, casting="unsafe")
            if self.bscale != 1.0:
                out *= np.float32(self.bscale)
            if self.bzero != 0.0:
                out += np.float32(self.bzero)
        if self.blank is not None:
            out[part == self.blank] = np.nan
        if self.factor != 1.0:
            out *= np.float32(self.factor)


#: A frame's flat pixels in a band: float32 values, or a frame as stored.
StackRow: TypeAlias = np.ndarray | StoredFrame


def stored_frame(image: StoredImage) -> StoredFrame:
    """The stack's frame of a loader's :class:`StoredImage` (its own C-ordered copy
    of ``raw`` only when ``raw`` is not one already).

    Raises
    ------
    CombineError
        ``raw`` is not a 2-D numeric image.
    """
    raw = image.raw
    if not isinstance(raw, np.ndarray) or raw.ndim != 2 or raw.dtype.kind not in "iuf":
        shape = getattr(raw, "shape", None)
        raise CombineError(f"only 2-D numeric images can be combined, got {shape}")
    if not raw.flags.c_contiguous or (raw.base is not None
                                      and getattr(raw.base, "nbytes", 0) > raw.nbytes):
        raw = np.array(raw, order="C", copy=True)
    blank = image.blank if raw.dtype.kind in "iu" else None
    return StoredFrame(raw=raw.reshape(-1), shape=(int(raw.shape[0]), int(raw.shape[1])),
                       bscale=float(image.bscale), bzero=float(image.bzero),
                       blank=None if blank is None else int(blank))


def as_float32(frame: StoredFrame) -> npt.NDArray[np.float32]:
    """The whole frame as a new 2-D float32 array (what the loader's call gives,
    times the scale factor)."""
    out = np.empty(frame.shape, dtype=np.float32)
    frame.to_float32(0, frame.size, out.reshape(-1))
    return out


def gather_tile(rows: Sequence[StackRow], start: int, stop: int) -> npt.NDArray[np.float32]:
    """A new ``(N, stop - start)`` float32 array of flat pixels ``start:stop`` of
    each row (the tile's own: the kernel may sort it in place)."""
    out = np.empty((len(rows), stop - start), dtype=np.float32)
    for i, row in enumerate(rows):
        if isinstance(row, StoredFrame):
            row.to_float32(start, stop, out[i])
        else:
            out[i] = row[start:stop]
    return out
