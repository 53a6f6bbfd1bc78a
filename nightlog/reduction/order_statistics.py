"""The exact median of a whole frame, with one selection instead of two.

``numpy.median`` of an even number of values asks ``numpy.partition`` for the
two middle ranks (and the last, to find NaN) at once; numpy's vectorised
selection serves one rank at a time only, so the request falls back to the
generic selection, several times slower on a frame of millions of float32
values (about 100 ms against 12 ms for 4 million). :func:`median` selects the
upper middle rank alone and takes the lower one as the largest value below it:
the same two values, averaged by the same ``numpy.mean`` in the same precision,
so the result is ``numpy.median``'s to the bit.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["median"]


def median(values: npt.ArrayLike, *, overwrite: bool = False,
           dtype: npt.DTypeLike = None) -> float:
    """The median of all values, equal to ``float(numpy.median(values))``.

    Parameters
    ----------
    values : array_like
        Any shape (flattened); not modified unless ``overwrite``.
    overwrite : bool, optional
        The caller hands over a contiguous array of its own (say a boolean
        selection of a frame's finite pixels): it is partitioned in place instead
        of copied. Default False.
    dtype : dtype, optional
        Precision of the mean of the two middle values: ``numpy.float64`` for
        float32 values gives ``numpy.median`` of the values converted to float64
        (the same order, without the converted copy). Default the values' own.

    Returns
    -------
    float
        The median; NaN when there is no value or any value is NaN (as
        ``numpy.median``).
    """
    array = np.asarray(values)
    flat = array.reshape(-1)
    n = flat.size
    if n == 0:
        return float("nan")
    k = n // 2
    if overwrite and flat.flags.c_contiguous and flat.flags.writeable:
        flat.partition(k)
        part = flat
    else:
        part = np.partition(flat, k)
    # NaN sorts last: after the partition any NaN is at rank k or above.
    if part.dtype.kind in "fc" and np.isnan(part[k:]).any():
        return float("nan")
    middle = part[k:k + 1] if n % 2 else np.stack([part[:k].max(), part[k]])
    return float(np.mean(middle if dtype is None else middle.astype(dtype)))
