"""Where the cosmic-ray second look looks, found with as few passes over the frame as
can be.

:func:`nightlog.reduction.cosmics_sharpness.refine_cosmic_rays` computes its
statistics at candidate pixels only; this module finds them:

* :func:`usable_pixels` -- the pixels it may judge (at least 3 inside the frame, not
  bad, at most one bad pixel in their 5 × 5 box), from the list of bad pixels;
* :func:`seed_candidates` -- the pixels whose excess over their 3 × 3 minimum (an
  upper bound of the excess over the neighbours' median) passes a seed's threshold
  against the least noise a seed can have there, in strips of rows that stay in the
  processor's cache;
* :func:`flagged_groups` -- the connected groups (8-neighbours) of the flagged
  pixels, from their list, without a labelled image of the frame;
* :func:`bad_neighbours` -- the bad pixels of a neighbourhood, gathered only where
  the 5 × 5 box holds one.

All take and give flat indices into a C-ordered frame.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LEAST_FLOOR", "bad_neighbours", "flagged_groups", "seed_candidates",
           "usable_pixels"]

#: The least ``σ_q / σ`` of a seed, a median of at most 8 neighbours: √(1 + π/16).
LEAST_FLOOR = float(np.sqrt(1 + np.pi / 16))
_STRIP = 32  # rows of the frame at a time in the full-frame pass


def usable_pixels(bad: np.ndarray, ny: int, nx: int, five: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Where the second look may judge a pixel, and the bad pixels around each.

    Parameters
    ----------
    bad : ndarray of bool
        Bad pixels, flat (``ny × nx``).
    ny, nx : int
        The frame's shape (pixels).
    five : ndarray of int
        Flat offsets of the 5 × 5 box.

    Returns
    -------
    usable : ndarray of bool
        Flat: at least 3 pixels inside the frame, not bad, at most one bad pixel in
        the 5 × 5 box.
    count : ndarray of uint8
        Flat: bad pixels in each 5 × 5 box (exact at least 2 pixels inside).
    """
    size = ny * nx
    lying = np.flatnonzero(bad)
    if lying.size * five.size <= size // 4:
        count = np.zeros(size, dtype=np.uint8)
        for offset in five:  # each pass hits distinct pixels
            hit = lying + offset
            count[hit[(hit >= 0) & (hit < size)]] += 1
    else:
        b = bad.reshape(ny, nx).view(np.uint8)
        rows = b[:-4] + b[1:-3] + b[2:-2] + b[3:-1] + b[4:]
        box = np.zeros((ny, nx), dtype=np.uint8)
        box[2:-2, 2:-2] = (rows[:, :-4] + rows[:, 1:-3] + rows[:, 2:-2] + rows[:, 3:-1]
                           + rows[:, 4:])
        count = box.reshape(-1)
    usable = np.zeros((ny, nx), dtype=bool)
    usable[3:-3, 3:-3] = count.reshape(ny, nx)[3:-3, 3:-3] < 2
    usable[3:-3, 3:-3] &= ~bad.reshape(ny, nx)[3:-3, 3:-3]
    return usable.reshape(-1), count


def bad_neighbours(bad: np.ndarray, count: np.ndarray, pixels: np.ndarray,
                   index: np.ndarray) -> np.ndarray | None:
    """The bad pixels at ``index``, a ``(k, n)`` neighbourhood of ``pixels`` inside
    their 5 × 5 boxes (``count`` from :func:`usable_pixels`); None if there is none."""
    rows = count[pixels] > 0
    if not rows.any():
        return None
    out = np.zeros(index.shape, dtype=bool)
    out[:, rows] = np.take(bad, index[:, rows])
    return out


def seed_candidates(d: np.ndarray, v: np.ndarray, usable: np.ndarray, threshold: float
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Usable pixels where a seed of ``threshold`` σ may be.

    Parameters
    ----------
    d, v : ndarray of float32
        The frame (ADU) and its variance (ADU²), ``(ny, nx)``.
    usable : ndarray of bool
        From :func:`usable_pixels`, ``(ny, nx)``.
    threshold : float
        The seed threshold (σ).

    Returns
    -------
    pixels : ndarray of int
        Flat indices of the usable pixels whose excess over their 3 × 3 minimum
        passes ``threshold`` × :data:`LEAST_FLOOR` × the square root of the least
        variance of their 3 × 3 box (float32 slack).
    least : ndarray of float32
        That bound at ``pixels`` (ADU).
    """
    ny, nx = d.shape
    factor = np.float32(threshold * LEAST_FLOOR * (1 - 1e-3))
    found, noise = [], []
    for top in range(1, ny - 1, _STRIP):
        bottom = min(top + _STRIP, ny - 1)
        least = _minimum3(v[top - 1:bottom + 1])
        np.sqrt(least, out=least)
        least *= factor
        excess = _minimum3(d[top - 1:bottom + 1])
        np.subtract(d[top:bottom, 1:-1], excess, out=excess)
        passing = excess > least
        passing &= usable[top:bottom, 1:-1]
        where = np.flatnonzero(passing)
        noise.append(least.reshape(-1)[where])
        rows, cols = np.divmod(where, nx - 2)
        found.append((rows + top) * nx + cols + 1)
    return np.concatenate(found), np.concatenate(noise)


def flagged_groups(flags: np.ndarray, nx: int) -> np.ndarray:
    """A label of each flagged pixel's connected group (8-neighbours).

    Parameters
    ----------
    flags : ndarray of int
        Flat indices of the flagged pixels, ascending.
    nx : int
        The frame's width (pixels).

    Returns
    -------
    ndarray of int
        One label per flagged pixel, equal within a group, distinct between groups.
    """
    size = flags.size
    if not size:
        return np.zeros(0, dtype=np.intp)
    cols = flags % nx
    heads, tails = [], []
    for dy, dx in ((0, 1), (1, -1), (1, 0), (1, 1)):
        target = flags + (dy * nx + dx)
        at = np.minimum(np.searchsorted(flags, target), size - 1)
        link = flags[at] == target
        if dx:
            link &= cols < nx - 1 if dx > 0 else cols > 0
        heads.append(np.flatnonzero(link))
        tails.append(at[link])
    a, b = np.concatenate(heads), np.concatenate(tails)
    # Union by the smaller root, then pointer jumping, until every link agrees.
    label = np.arange(size)
    while True:
        root_a, root_b = label[a], label[b]
        differ = root_a != root_b
        if not differ.any():
            return label
        np.minimum.at(label, np.maximum(root_a[differ], root_b[differ]),
                      np.minimum(root_a[differ], root_b[differ]))
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped


def _minimum3(values: np.ndarray) -> np.ndarray:
    """Minimum over each 3 × 3 box inside the frame: ``(ny − 2, nx − 2)``."""
    rows = np.minimum(values[:-2], values[1:-1])
    np.minimum(rows, values[2:], out=rows)
    out: np.ndarray = np.minimum(rows[:, :-2], rows[:, 1:-1])
    np.minimum(out, rows[:, 2:], out=out)
    return out
