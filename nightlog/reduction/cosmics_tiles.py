"""The scheduled L.A.Cosmic on bands of the frame, one thread each.

L.A.Cosmic is local: an iteration's flags at a pixel depend on the image within
:func:`~nightlog.reduction.cosmics_step.reach` pixels, the grown bad-pixel and
saturated-star mask within 8 more, and the cleaning moves what an iteration sees
by 2 pixels. ``niter`` iterations therefore depend on the input within
:func:`overlap` rows. :func:`tiled_lacosmic` cuts the frame into horizontal bands,
each with that many rows of its neighbours around it, runs
:func:`~nightlog.reduction.cosmics_schedule.scheduled_lacosmic` on each band in
its own thread (astroscrappy's filters and numpy's arithmetic release the GIL;
each thread's OpenMP team is capped at one thread, so that bands × 1 never
exceeds the threads asked for) and keeps each band's own rows. The one global
quantity, astroscrappy's fallback for a flagged pixel with no good neighbour
(the frame's median good value), is computed once for the whole frame, when a
band first needs it. The result equals the single-band run bit for bit
(``tests/test_cosmics_tiles.py``).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from nightlog.reduction.cosmics_schedule import fallback_values, scheduled_lacosmic
from nightlog.reduction.cosmics_step import reach
from nightlog.threads import openmp_threads

__all__ = ["MIN_BAND_ROWS", "overlap", "tiled_lacosmic"]

#: Fewest own rows a band is given: thinner bands spend more on their overlaps
#: than the threads gain.
MIN_BAND_ROWS = 256

_MASK_REACH = 8  # the saturated-star mask (astroscrappy's update_mask) and its growth


def overlap(niter: int, sepmed: bool) -> int:
    """Rows of its neighbours a band needs around its own for exact results.

    Parameters
    ----------
    niter : int
        Iterations.
    sepmed : bool
        Separable medians (their reach is larger).

    Returns
    -------
    int
        Pixels: the mask's reach, plus per iteration the detection's reach and the
        cleaning's 2, with a margin of 8.
    """
    return 2 * _MASK_REACH + niter * (reach(sepmed) + 2) + 8


def tiled_lacosmic(data: np.ndarray, inmask: np.ndarray, invar: np.ndarray | None, *,
                   threads: int, gain: float, readnoise: float, satlevel: float,
                   sigclip: float, sigfrac: float, objlim: float, niter: int, sepmed: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~nightlog.reduction.cosmics_schedule.scheduled_lacosmic` on ``threads``
    bands of rows at once; same arguments, units and results.

    Parameters
    ----------
    data : ndarray
        Image in ADU.
    inmask : ndarray of bool
        Known bad pixels.
    invar : ndarray or None
        Variance in ADU² (``None``: astroscrappy's model).
    threads : int
        Bands run at once (≥ 1); fewer when the frame has fewer than
        ``threads`` × :data:`MIN_BAND_ROWS` rows. Each band's OpenMP team is one
        thread; a lone band's is ``threads``.
    gain, readnoise, satlevel, sigclip, sigfrac, objlim, niter, sepmed
        As :func:`~nightlog.reduction.cosmics_schedule.scheduled_lacosmic`
        (e-/ADU, e-, e-, and astroscrappy's thresholds).

    Returns
    -------
    crmask : ndarray of bool
        Cosmic-ray pixels.
    cleaned : ndarray of float32
        Image in ADU with flagged pixels replaced by the masked 5 × 5 mean.
    """
    keywords: dict[str, Any] = dict(gain=gain, readnoise=readnoise, satlevel=satlevel,
                                    sigclip=sigclip, sigfrac=sigfrac, objlim=objlim,
                                    niter=niter, sepmed=sepmed)
    ny = data.shape[0]
    bands = max(1, min(threads, ny // MIN_BAND_ROWS))
    if bands == 1:  # one band: astroscrappy's OpenMP team gets the threads
        with openmp_threads(threads):
            crmask, cleaned, _ = scheduled_lacosmic(data, inmask, invar, **keywords)
        return crmask, cleaned
    lock = threading.Lock()
    known: list[tuple[float, float]] = []

    def backgrounds() -> tuple[float, float]:
        with lock:
            if not known:
                known.append(fallback_values(data, inmask, invar, gain=gain,
                                             readnoise=readnoise, satlevel=satlevel,
                                             sepmed=sepmed))
            return known[0]

    edges = [round(i * ny / bands) for i in range(bands + 1)]
    rows = overlap(niter, sepmed)

    def band(i: int) -> tuple[np.ndarray, np.ndarray]:
        y0, y1 = max(0, edges[i] - rows), min(ny, edges[i + 1] + rows)
        with openmp_threads(1):
            crmask, cleaned, _ = scheduled_lacosmic(
                np.ascontiguousarray(data[y0:y1]), np.ascontiguousarray(inmask[y0:y1]),
                None if invar is None else np.ascontiguousarray(invar[y0:y1]),
                backgrounds=backgrounds, **keywords)
        keep = slice(edges[i] - y0, edges[i + 1] - y0)
        return crmask[keep], cleaned[keep]

    with ThreadPoolExecutor(max_workers=bands, thread_name_prefix="nightlog-cosmics") as pool:
        parts = list(pool.map(band, range(bands)))
    return (np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]).astype(np.float32, copy=False))
