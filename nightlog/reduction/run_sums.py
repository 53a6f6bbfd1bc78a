"""Each pixel's run of sorted values: its mean and variance from prefix sums.

The survivors of a pixel's rejection are always a contiguous run
``sorted[lo:hi]`` of its sorted values (:mod:`~nightlog.reduction.rejection`);
:class:`RunSums` holds the prefix sums that give any run's moments with two
gathers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from nightlog.reduction._sorted_columns import take

__all__ = ["RunSums", "same_value"]


class RunSums:
    """Prefix sums over the sorted values of each pixel and of their squares.

    The values are shifted by a per-pixel reference (the middle value) before
    summing, so ``mean(x**2) - mean(x)**2`` does not cancel catastrophically and
    float32 sums suffice: for integer ADU the shifted values, their squares and
    the sums of the values that survive clipping are exact integers below
    2**24, so the statistics equal float64 ones (those of ``ccdproc``).
    Moments are then formed in float64.
    """

    def __init__(self, x: npt.NDArray[np.float32], valid: npt.NDArray[np.intp] | int,
                 upto: int | None = None) -> None:
        # ``valid``: each pixel's count of finite values, or one count for all.
        # ``upto``: the sums of the first ``upto`` values at most are ever asked
        # for (a run ends at or before it), so only those are formed.
        n, p = x.shape
        upto = n if upto is None else min(max(upto, 0), n)
        if np.ndim(valid) == 0:
            count = int(valid)
            self.ref = np.array(x[min(max((count - 1) // 2, 0), n - 1)], dtype=np.float32)
            partial = count < n
        else:
            assert isinstance(valid, np.ndarray)
            self.ref = np.array(take(x, np.clip((valid - 1) // 2, 0, n - 1)),
                                dtype=np.float32)
            partial = valid.min(initial=n) < n
        self.ref[~np.isfinite(self.ref)] = 0.0
        self.s1 = np.empty((upto + 1, p), dtype=np.float32)
        self.s2 = np.empty((upto + 1, p), dtype=np.float32)
        self.s1[0] = self.s2[0] = 0.0
        d = np.empty(p, dtype=np.float32)
        for k in range(upto):
            np.subtract(x[k], self.ref, out=d)
            if partial:
                # Non-finite values sit at or beyond ``valid`` and are never in
                # [lo, hi), but must not turn the prefix sums after them to NaN.
                d[~np.isfinite(d)] = 0.0
            np.add(self.s1[k], d, out=self.s1[k + 1])
            np.multiply(d, d, out=d)
            np.add(self.s2[k], d, out=self.s2[k + 1])

    def moments(self, lo: npt.NDArray[np.intp] | int, hi: npt.NDArray[np.intp] | int,
                cols: npt.NDArray[np.intp] | None = None
                ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Mean and population variance of the run ``[lo, hi)`` of each pixel.

        ``lo`` and ``hi`` are per-pixel arrays, or two numbers for a run the same
        for every pixel. ``cols`` restricts the computation to a subset of pixels
        (``lo`` and ``hi`` are then arrays for that subset only).
        """
        if cols is None:
            s1, s2, ref = self.s1, self.s2, self.ref
        else:
            s1, s2, ref = self.s1[:, cols], self.s2[:, cols], self.ref[cols]
        n: Any
        if np.ndim(lo) == 0 and np.ndim(hi) == 0 and cols is None:
            start, stop = int(lo), int(hi)
            n = np.asarray(max(stop - start, 1)).astype(np.float64)
            m1 = s1[stop].astype(np.float64)
            m2 = s2[stop].astype(np.float64)
            # A run from the first value takes away the sums' zero row: nothing.
            if start:
                m1 -= s1[start]
                m2 -= s2[start]
        else:
            assert isinstance(lo, np.ndarray) and isinstance(hi, np.ndarray)
            n = same_value(np.maximum(hi - lo, 1)).astype(np.float64)
            first = lo.size and lo[0] == 0 and not lo.any()
            m1 = take(s1, hi).astype(np.float64)
            m2 = take(s2, hi).astype(np.float64)
            if not first:
                m1 -= take(s1, lo)
                m2 -= take(s2, lo)
        m1 /= n
        m2 /= n
        # ``max(m2 - m1², 0)`` and ``m1 + ref``, in place on the two new arrays.
        square = np.multiply(m1, m1)
        var = np.subtract(m2, square, out=m2)
        np.maximum(var, 0.0, out=var)
        return np.add(m1, ref, out=m1), var


def same_value(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``values``, or its one value (a 0-d array) when every element has it: an
    operation with it then gives the same results without an array of it.

    Parameters
    ----------
    values : ndarray
        Per-pixel numbers, any shape (a run's length, say).

    Returns
    -------
    ndarray
        ``values`` itself, or a 0-d array of its single value.
    """
    flat = values.reshape(-1)
    if flat.size and flat[0] == flat[-1] and flat.min() == flat.max():
        return np.asarray(flat[0])
    return values
