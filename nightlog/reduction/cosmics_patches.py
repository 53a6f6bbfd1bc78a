"""A local function evaluated exactly on chosen pixels, run only on patches around them.

A function is *local within a margin* when its result at a pixel depends only on
its inputs within that many pixels (astroscrappy's filters, away from the frame's
edge). :func:`patchwise` runs it on small patches around the pixels whose result
is wanted, packed side by side into one mosaic for a single call, and keeps the
results only farther than the margin from a patch's edge, where they equal a
full-frame call's bit for bit. The frame's outer band, where astroscrappy's filters
treat the edge, is run as four strips of the frame itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["MIN_SIDE", "patchwise"]

MIN_SIDE = 24  # smallest side given to astroscrappy's filters (the 9-wide median's C
#                writes outside arrays much smaller than its window)
_FULL_FRAME_FRACTION = 0.7  # patches covering more than this: one full-frame call


def patchwise(func: Any, arrays: list[np.ndarray], fills: list[Any], core: np.ndarray,
               margin: int, seeds: np.ndarray | None = None, grow: int = 0
               ) -> tuple[np.ndarray, int]:
    """``func`` (local within ``margin`` pixels) evaluated exactly on ``core``.

    The frame's outer band is run as four strips of the frame itself (so the edge is
    treated as in a full-frame run); each group of inner core pixels as a patch with
    the margin around it, all packed into one mosaic for a single call. When the
    patches would cover most of the frame, one full-frame call. Returns the result
    (valid on ``core``) and the pixels given to ``func``.

    ``seeds`` (with ``core`` within ``grow`` pixels of them) names the groups
    instead: each group of seeds gives a box grown by ``grow`` pixels, all of whose
    core pixels are kept. A sparse set of seeds stays in small groups where its
    grown ``core`` would merge into a few boxes covering most of the frame.
    """
    ny, nx = core.shape
    inner = np.zeros((ny, nx), dtype=bool)
    inner[margin:ny - margin, margin:nx - margin] = True
    if seeds is None:
        labels = ndimage.label(core & inner, structure=np.ones((3, 3)))[0]
        boxes = ndimage.find_objects(labels)
        keeps = [labels[b] == number for number, b in enumerate(boxes, start=1)]
    else:
        labels = ndimage.label(seeds & inner, structure=np.ones((3, 3)))[0]
        boxes = [(slice(max(margin, b[0].start - grow), min(ny - margin, b[0].stop + grow)),
                  slice(max(margin, b[1].start - grow), min(nx - margin, b[1].stop + grow)))
                 for b in ndimage.find_objects(labels)]
        boxes = [b for b in boxes if b[0].stop > b[0].start and b[1].stop > b[1].start]
        keeps = [core[b] for b in boxes]
    area = sum((b[0].stop - b[0].start + 2 * margin) * (b[1].stop - b[1].start + 2 * margin)
               for b in boxes)
    # The strips keep the band the boxes do not reach: core pixels within the margin
    # of the edge, or (seeds outside the boxes' reach) within the margin and growth.
    band = margin + grow if seeds is not None else margin
    width = max(band + margin, MIN_SIDE)  # astroscrappy's filters need a few pixels
    strips = 2 * width * (nx + ny)
    if area + strips > _FULL_FRAME_FRACTION * ny * nx or min(ny, nx) < 4 * width:
        return np.asarray(func(*arrays)), ny * nx
    out: np.ndarray | None = None
    ran = 0
    for ys, xs, keep in (
            (slice(0, width), slice(None), (slice(0, band), slice(None))),
            (slice(ny - width, ny), slice(None), (slice(width - band, width), slice(None))),
            (slice(None), slice(0, width), (slice(None), slice(0, band))),
            (slice(None), slice(nx - width, nx), (slice(None), slice(width - band, width)))):
        if core[ys, xs][keep].any():
            result = np.asarray(func(*[np.ascontiguousarray(a[ys, xs]) for a in arrays]))
            if out is None:
                out = np.zeros((ny, nx), dtype=result.dtype)
            out[ys, xs][keep] = np.where(core[ys, xs][keep], result[keep], out[ys, xs][keep])
            ran += result.size
    if boxes:
        out, size = _mosaic(func, arrays, fills, margin, boxes, keeps, out)
        ran += size
    if out is None:
        # Nothing to run: only the result's type is wanted. astroscrappy's C filters
        # write past a patch smaller than MIN_SIDE (heap corruption), so probe with one.
        probe = [np.ascontiguousarray(a[:MIN_SIDE, :MIN_SIDE]) for a in arrays]
        out = np.zeros((ny, nx), dtype=np.asarray(func(*probe)).dtype)
    return out, ran


def _mosaic(func: Any, arrays: list[np.ndarray], fills: list[Any], margin: int,
            boxes: list[tuple[slice, slice]], keeps: list[np.ndarray],
            out: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Run ``func`` once on the patches (boxes with their margin) packed in shelves;
    copy each box's ``keeps`` pixels into ``out``; the mosaic's size."""
    patches = [(slice(b[0].start - margin, b[0].stop + margin),
                slice(b[1].start - margin, b[1].stop + margin)) for b in boxes]
    heights = [p[0].stop - p[0].start for p in patches]
    widths = [p[1].stop - p[1].start for p in patches]
    frame = arrays[0].shape
    side = max(min(2048, frame[1]), max(widths))
    places: list[tuple[int, int]] = [(0, 0)] * len(patches)
    y = x = shelf = 0
    for i in sorted(range(len(patches)), key=lambda k: -heights[k]):
        if x + widths[i] > side:
            y, x, shelf = y + shelf, 0, 0
        places[i] = (y, x)
        x += widths[i]
        shelf = max(shelf, heights[i])
    shape = (max(y + shelf, MIN_SIDE), side)
    packed = [np.full(shape, fill, dtype=a.dtype) for a, fill in zip(arrays, fills, strict=True)]
    for (py, px), (ys, xs), h, w in zip(places, patches, heights, widths, strict=True):
        for target, source in zip(packed, arrays, strict=True):
            target[py:py + h, px:px + w] = source[ys, xs]
    found = np.asarray(func(*packed))
    if out is None:
        out = np.zeros(frame, dtype=found.dtype)
    for (py, px), box, mine in zip(places, boxes, keeps, strict=True):
        h, w = box[0].stop - box[0].start, box[1].stop - box[1].start
        out[box][mine] = found[py + margin:py + margin + h, px + margin:px + margin + w][mine]
    return out, shape[0] * shape[1]
