"""Sorting a stack's values pixel by pixel, and reading them back by rank.

The fast path of :mod:`nightlog.reduction.rejection`: a tile of ``N`` frames by
``P`` pixels is sorted along the frame axis once (a sorting network of whole-row
``minimum``/``maximum`` operations for small ``N``, numpy's sort otherwise), and
every later step reads values by per-pixel rank with :func:`take` (the network and
:func:`take` also serve :mod:`nightlog.reduction._neighbour_medians`). Private to the
core: these functions may overwrite their arguments.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["NETWORK_MAX_FRAMES", "batcher_pairs", "sort_columns", "take",
           "weighted_survivor_sums"]

#: Up to this many frames a vectorised sorting network beats numpy's sort.
NETWORK_MAX_FRAMES = 24


@functools.lru_cache(maxsize=64)
def batcher_pairs(n: int) -> tuple[tuple[int, int], ...]:
    """Compare-exchange pairs of Batcher's odd-even merge sort for ``n`` keys.

    Built for the next power of two; pairs reaching past ``n`` are dropped,
    which is exact because the missing keys behave as ``+inf`` padding.
    """
    size = 1
    while size < n:
        size *= 2
    pairs = []
    t = 1
    while t < size:
        k = t
        while k >= 1:
            for j in range(k % t, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * t) == (i + j + k) // (2 * t) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        t *= 2
    return tuple(pairs)


def sort_columns(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Sort a C-ordered ``(N, P)`` array along axis 0 (no NaN allowed).

    ``x`` may be overwritten; the sorted array is returned. For small ``N`` a
    sorting network of whole-row ``minimum``/``maximum`` operations is several
    times faster than numpy's per-pixel sort, which pays a call per column; the
    rows are swapped by reference, so each compare-exchange costs two passes.
    For larger ``N`` numpy sorts a transposed copy.
    """
    n = x.shape[0]
    if n <= NETWORK_MAX_FRAMES:
        rows = list(x)
        spare = np.empty_like(x[0])
        for a, b in batcher_pairs(n):
            np.minimum(rows[a], rows[b], out=spare)
            np.maximum(rows[a], rows[b], out=rows[b])
            rows[a], spare = spare, rows[a]
        return np.stack(rows)
    xt = np.array(x.T, order="C")
    xt.sort(axis=1)
    return np.ascontiguousarray(xt.T)


@functools.lru_cache(maxsize=8)
def _columns(n_pix: int) -> npt.NDArray[np.intp]:
    columns = np.arange(n_pix)
    columns.flags.writeable = False
    return columns


def take(values: npt.NDArray[Any], index: npt.NDArray[np.intp]) -> npt.NDArray[Any]:
    """``values[index[p], p]`` for every pixel ``p`` of a ``(K, P)`` array."""
    n_pix = values.shape[1]
    if n_pix and index[0] == index[-1] and index.min() == index.max():
        # Common case (a full or min/max-trimmed range): one row, no gather.
        row: npt.NDArray[Any] = values[int(index[0])]
        return row
    flat = index * n_pix
    flat += _columns(n_pix)
    taken: npt.NDArray[Any] = np.take(values.reshape(-1), flat)
    return taken


def _survivor_mask(tile: npt.NDArray[np.float32], x: npt.NDArray[np.float32],
                   lo: npt.NDArray[np.intp], hi: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
    """Frames whose value lies inside the surviving value range of each pixel.

    Sigma clipping rejects by value, so this is exact for it; after min/max
    rejection, values tied with a cut value are all kept here (their weights
    then all count).
    """
    n = np.maximum(hi - lo, 1)
    low = take(x, np.minimum(lo, x.shape[0] - 1))
    high = take(x, np.minimum(lo + n - 1, x.shape[0] - 1))
    return (tile >= low[None, :]) & (tile <= high[None, :]) & (hi > lo)[None, :]


def weighted_survivor_sums(tile: npt.NDArray[np.float32], weights: npt.NDArray[np.float64],
                   x: npt.NDArray[np.float32], lo: npt.NDArray[np.intp],
                   hi: npt.NDArray[np.intp]
                   ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Weighted sum of the survivors and the sum of their weights, per pixel."""
    keep = _survivor_mask(tile, x, lo, hi)
    w = np.where(keep, weights[:, None], 0.0)
    total = (w * np.where(keep, tile, 0.0)).sum(axis=0)
    return total, w.sum(axis=0)


def uniform_run_mad(x: npt.NDArray[np.float32], start: int, stop: int,
                    centre: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Median absolute deviation of the sorted run ``x[start:stop]`` of every pixel
    (the same run for all) about ``centre``, the run's median; float64.

    The deviations of the run's lower half (to its lower middle value) fall with
    the rank and those of its upper half rise, so each half is sorted already: the
    ``k``-th smallest deviation is ``min over i + j = k of max(A_i, B_j)`` of the
    two (the ``i`` smallest of one, the ``j`` smallest of the other), a few whole-row
    operations instead of sorting ``N`` deviations. Each deviation is the sorting
    path's own ``|x - centre|``, so the result is that of sorting them.
    """
    n = stop - start
    split = start + (n - 1) // 2
    lower = [np.abs(x[split - t] - centre) for t in range(split - start + 1)]
    upper = [np.abs(x[split + 1 + t] - centre) for t in range(stop - split - 1)]

    def smallest(k: int) -> npt.NDArray[np.float64]:
        best: npt.NDArray[np.float64] | None = None
        for i in range(max(0, k - len(upper)), min(k, len(lower)) + 1):
            j = k - i
            term = (upper[j - 1] if i == 0 else lower[i - 1] if j == 0
                    else np.maximum(lower[i - 1], upper[j - 1]))
            best = term.copy() if best is None else np.minimum(best, term, out=best)
        assert best is not None
        return best

    a = smallest((n - 1) // 2 + 1)
    return a if n % 2 else 0.5 * (a + smallest(n // 2 + 1))
