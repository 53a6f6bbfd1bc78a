"""Exact medians of many small neighbourhoods at once, some of their pixels left out.

The second look after L.A.Cosmic (:mod:`nightlog.reduction.cosmics_sharpness`) needs
the median of 8, 16 or 24 pixels around each of up to a few hundred thousand pixels.
``numpy.median`` over an ``(n, 8)`` array pays a partition call per row; here the
values are gathered as a ``(k, n)`` array (one row per neighbour) and ordered by a
sorting network of whole-row ``minimum``/``maximum`` operations, pruned to the
comparisons that reach the ranks asked for. Left-out values become ``+inf``, which
sorts them after every finite value, so the median of the ``c`` values kept is read
at ranks ``(c − 1) // 2`` and ``c // 2``, averaged in the values' precision as
``numpy.median`` and ``numpy.nanmedian`` do: the result is theirs to the bit (for
finite values; NaN where nothing is kept). Private to the core: :func:`medians`
overwrites the values it is given.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from nightlog.reduction._sorted_columns import batcher_pairs, take

__all__ = ["medians", "neighbours"]

_SPLIT_AT = 1024  # neighbourhoods from which those with values left out go apart


def neighbours(pixels: npt.NDArray[np.intp], offsets: npt.NDArray[np.intp]
               ) -> npt.NDArray[np.intp]:
    """Flat indices ``pixels + offsets[j]`` as row ``j`` of a new ``(k, n)`` array,
    to gather a neighbourhood from a flattened frame with ``numpy.take``.

    Parameters
    ----------
    pixels : ndarray of int
        Flat indices of the ``n`` pixels.
    offsets : ndarray of int
        The ``k`` flat offsets of the neighbourhood.

    Returns
    -------
    ndarray of int
        ``(k, n)`` flat indices (the caller keeps them inside the frame).
    """
    return offsets[:, None] + pixels[None, :]


def medians(values: npt.NDArray[np.floating], excluded: npt.NDArray[np.bool_] | None
            ) -> tuple[npt.NDArray[np.floating], npt.NDArray[np.intp]]:
    """Median of each column of ``values`` without its ``excluded`` entries.

    Parameters
    ----------
    values : ndarray of float
        ``(k, n)``: the ``k`` finite values of each of ``n`` neighbourhoods (any
        unit); overwritten.
    excluded : ndarray of bool or None
        ``(k, n)``: values left out; None for none.

    Returns
    -------
    median : ndarray of float
        ``(n,)``, in ``values``' unit and dtype, equal to ``numpy.median`` of the
        kept values (NaN where none is kept).
    count : ndarray of int
        ``(n,)``: how many values each median is of.
    """
    k, n = values.shape
    if excluded is not None and n >= _SPLIT_AT:
        # Few neighbourhoods with values left out (most, away from bad and flagged
        # pixels, have none): those apart, the rest by the network for whole ones.
        some = np.flatnonzero(np.logical_or.reduce(excluded, axis=0))
        if some.size * 2 < n:
            part, part_count = medians(values[:, some], excluded[:, some])
            out, count = medians(values, None)
            out[some], count[some] = part, part_count
            return out, count
    full = excluded is None or not excluded.any()
    if excluded is None or full:
        count = np.full(n, k, dtype=np.intp)
        ranks = tuple(sorted({(k - 1) // 2, k // 2}))
    else:
        np.copyto(values, np.inf, where=excluded)
        count = k - np.count_nonzero(excluded, axis=0)
        present = np.flatnonzero(np.bincount(count, minlength=k + 1)[1:]) + 1
        ranks = tuple(sorted({int(r) for c in present for r in ((c - 1) // 2, c // 2)}))
        if not ranks:  # every value left out
            return np.full(n, np.nan, dtype=values.dtype), count
    rows = _select(values, ranks)
    if full:
        low, high = rows[(k - 1) // 2], rows[k // 2]
    else:
        position = np.zeros(k + 1, dtype=np.intp)
        position[list(ranks)] = np.arange(len(ranks))
        stacked = np.stack([rows[r] for r in ranks])
        low = take(stacked, position[np.maximum(count - 1, 0) // 2])
        high = take(stacked, position[count // 2])
    out = np.add(low, high)
    out *= out.dtype.type(0.5)
    if count.size and count.min() == 0:
        out[count == 0] = np.nan
    return out, count


def _select(values: npt.NDArray[np.floating], ranks: tuple[int, ...]
            ) -> list[npt.NDArray[np.floating]]:
    """Rows of ``values`` (overwritten) in which the rows at ``ranks`` hold each
    column's values of those ranks (the other rows: anything)."""
    rows = list(values)
    spare = np.empty_like(rows[0])
    for a, b, low, high in _network(len(rows), ranks):
        if low and high:
            np.minimum(rows[a], rows[b], out=spare)
            np.maximum(rows[a], rows[b], out=rows[b])
            rows[a], spare = spare, rows[a]
        elif low:
            np.minimum(rows[a], rows[b], out=rows[a])
        else:
            np.maximum(rows[a], rows[b], out=rows[b])
    return rows


@functools.lru_cache(maxsize=64)
def _network(k: int, ranks: tuple[int, ...]) -> tuple[tuple[int, int, bool, bool], ...]:
    """The compare-exchanges of Batcher's sort of ``k`` keys that reach ``ranks``,
    each with whether its minimum (to ``a``) and its maximum (to ``b``) is used."""
    needed = set(ranks)
    kept = []
    for a, b in reversed(batcher_pairs(k)):
        low, high = a in needed, b in needed
        if low or high:
            kept.append((a, b, low, high))
            needed |= {a, b}
    return tuple(reversed(kept))
