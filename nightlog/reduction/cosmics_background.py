"""Cosmic rays off stars: each pixel tested against a smooth model of the background.

Off stars the background of a reduced frame is smooth: the sky after flat division
(flat to a fraction of a per cent), so its level can be measured on many pixels at
once and its own noise is negligible. The second look
(:mod:`nightlog.reduction.cosmics_sharpness`) judges each pixel by medians of a few
pixels around it, noisy tests that miss faint whole hits and faint pixels of found
ones. Here:

1. **the mesh** -- the median of every other pixel of each ``_CELL`` × ``_CELL``
   cell (a star, a hot pixel or a hit moves it by a fraction of its own small noise),
   interpolated bilinearly between the cells' centres (held constant beyond the
   outermost centres) to the background ``B`` of every pixel (ADU);
2. **the residual** -- ``z = (d − B) / √V`` (σ) with ``V`` the propagated variance
   (ADU²), so that the vignetted corners' larger noise is no hit;
3. **where the mesh holds** -- the sum of ``z`` (clipped to ``±_CLIP``, so that a
   hit's own pixels count little; flagged and bad pixels counted as zero) over the
   2 × 2 blocks of ``_BLOCK`` × ``_BLOCK`` pixels around each inner block corner;
   where that window's sum exceeds ``_STRUCTURE`` σ of its own noise (a star, its
   wings, a galaxy, a gradient the mesh does not follow), its 4 blocks keep the
   verdict they came with (the star model's and the second look's), and so do the
   pixels past the frame's last whole block;
4. **seeds** -- unflagged pixels where the mesh holds with
   ``z > seed_sigma − _SEED_EASING`` that are points: the median of their 8
   neighbours' ``z`` under ``_POINT`` of their own plus 1 (a faint star's peak has
   neighbours at about 0.6 of it); and pairs of 8-adjacent pixels above
   ``grow_sigma`` where the mesh holds whose summed ``z`` over √2 exceeds
   ``seed_sigma + _PAIR_MARGIN``, points by the median of both pixels' neighbours
   (a hit's charge split over two pixels, neither passing alone);
5. **growth** -- flagged pixels (seeds and what came before) grow into 8-neighbours
   where the mesh holds with ``z > grow_sigma``, until none joins.

Nothing is given back; bad pixels are never flagged and the frame's outermost pixels
keep their verdict. Everything is vectorised; the frame is read a few times.
"""

from __future__ import annotations

import numpy as np

from nightlog.reduction._row_blocks import BLOCK_ROWS

__all__ = ["background_mesh", "refine_on_background"]

_CELL = 64  # side of a mesh cell (pixels)
_BLOCK = 4  # side of a block of the structure test (pixels)
_CLIP = 1.5  # residuals clipped to ± this in the structure test (σ)
_STRUCTURE = 3.0  # a window's clipped sum above this many σ of its noise: structure
_POINT = 0.25  # a seed's neighbours' median holds at most this fraction of its residual
_SEED_EASING = 0.25  # seeds here pass seed_sigma less this (σ)
_PAIR_MARGIN = 0.5  # a pair's summed residual over √2 passes seed_sigma plus this (σ)
_MAX_ROUNDS = 16  # growth rounds
_FAR = np.float32(1e30)  # where left-out pixels go in a cell's median


def _clipped_variance(clip: float) -> float:
    """Variance of a standard normal value clipped to ± ``clip``."""
    x = np.linspace(-8.0, 8.0, 16001)
    density = np.exp(-x**2 / 2) / np.sqrt(2 * np.pi)
    return float(np.sum(np.minimum(x**2, clip**2) * density) * (x[1] - x[0]))


def _levels(data: np.ndarray, skip: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Median of every other pixel of each cell (``skip`` left out), and the cells'
    sides (the last cells of each axis also hold the rows and columns beyond)."""
    ny, nx = data.shape
    cy, cx = max(1, ny // _CELL), max(1, nx // _CELL)
    hy, hx = min(_CELL, ny), min(_CELL, nx)
    sample = np.array(data[:cy * hy:2, :cx * hx:2], dtype=np.float32)
    left_out = np.flatnonzero(skip[:cy * hy:2, :cx * hx:2])
    typical = np.float32(np.median(sample))
    # Moved to the cells' far ends alternately: the median does not see them.
    sample.flat[left_out[::2]] = _FAR
    sample.flat[left_out[1::2]] = -_FAR
    sy, sx = sample.shape[0] // cy, sample.shape[1] // cx
    cells = sample[:cy * sy, :cx * sx].reshape(cy, sy, cx, sx).transpose(0, 2, 1, 3)
    level = np.median(cells.reshape(cy, cx, -1), axis=2).astype(np.float32)
    rows, cols = np.divmod(left_out, sample.shape[1])
    inside = (rows < cy * sy) & (cols < cx * sx)
    out_count = np.bincount((rows[inside] // sy) * cx + cols[inside] // sx,
                            minlength=cy * cx).reshape(cy, cx)
    lost = 2 * out_count >= sy * sx
    if lost.any():  # cells mostly left out: the other cells' level
        level[lost] = np.median(level[~lost]) if (~lost).any() else typical
    return level, hy, hx


def _interpolator(level: np.ndarray, hy: int, hx: int, shape: tuple[int, int]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The mesh along each cell row at every column, and each image row's two cell rows
    and weight: bilinear between the cells' centres, constant beyond the outermost."""
    ny, nx = shape
    cy, cx = level.shape
    centres_x = (np.arange(cx) + 0.5) * hx - 0.5
    columns = np.empty((cy, nx), dtype=np.float32)
    for row in range(cy):
        columns[row] = np.interp(np.arange(nx), centres_x, level[row])
    position = np.clip((np.arange(ny) - ((hy - 1) / 2)) / hy, 0, cy - 1)
    low = np.minimum(position.astype(np.int64), max(cy - 2, 0))
    high = np.minimum(low + 1, cy - 1)
    weight = (position - low).astype(np.float32)
    return columns, low, high, weight


def background_mesh(data: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """The smooth background of a frame (module docstring, step 1).

    Parameters
    ----------
    data : ndarray
        Reduced frame, sky not subtracted (ADU).
    bad : ndarray of bool
        Pixels left out of the cells' medians (known bad, flagged).

    Returns
    -------
    ndarray of float32
        The background (ADU) at every pixel, the frame's shape.
    """
    d = np.asarray(data, dtype=np.float32)
    columns, low, high, weight = _interpolator(*_levels(d, np.asarray(bad, dtype=bool)),
                                               d.shape)
    w = weight[:, None]
    out: np.ndarray = columns[low] * (1 - w) + columns[high] * w
    return out


def _residual(d: np.ndarray, v: np.ndarray, skip: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """``(d − B) / √V`` (module docstring, step 2) and each ``_BLOCK`` × ``_BLOCK``
    block's sum of it clipped to ± ``_CLIP``, ``skip`` counted as zero (step 3), a band
    of rows at a time (the rows past the last whole block have no sums)."""
    ny, nx = d.shape
    columns, low, high, weight = _interpolator(*_levels(d, skip), d.shape)
    z = np.empty(d.shape, dtype=np.float32)
    by, bx = ny // _BLOCK, nx // _BLOCK
    sums = np.zeros((by, bx), dtype=np.float32)
    step = BLOCK_ROWS - BLOCK_ROWS % _BLOCK
    for start in range(0, ny, step):
        rows = slice(start, start + step)
        w = weight[rows, None]
        band = z[rows]
        np.multiply(columns[high[rows]] - columns[low[rows]], w, out=band)
        band += columns[low[rows]]
        np.subtract(d[rows], band, out=band)
        band /= np.sqrt(v[rows])
        whole = min(band.shape[0], by * _BLOCK - start) // _BLOCK * _BLOCK
        if whole <= 0:
            continue
        clipped = np.clip(band[:whole, :bx * _BLOCK], -_CLIP, _CLIP)
        np.copyto(clipped, np.float32(0), where=skip[start:start + whole, :bx * _BLOCK])
        row_sums = clipped[0::_BLOCK].copy()
        for k in range(1, _BLOCK):
            row_sums += clipped[k::_BLOCK]
        target = sums[start // _BLOCK:(start + whole) // _BLOCK]
        for k in range(_BLOCK):
            target += row_sums[:, k::_BLOCK]
    return z, sums


def _mesh_holds(sums: np.ndarray) -> np.ndarray:
    """Whether the mesh holds on each block (module docstring, step 3), from the blocks'
    clipped sums; one more row and column of blocks (past the frame's last whole
    block), which do not hold."""
    by, bx = sums.shape
    # Windows of 2 × 2 blocks, one per inner block corner; one with structure
    # taints its 4 blocks.
    windows = sums[:-1, :-1] + sums[1:, :-1] + sums[:-1, 1:] + sums[1:, 1:]
    structure = windows > _STRUCTURE * 2 * _BLOCK * np.sqrt(_clipped_variance(_CLIP))
    tainted = np.zeros((by, bx), dtype=bool)
    for dy in (0, 1):
        for dx in (0, 1):
            tainted[dy:dy + by - 1, dx:dx + bx - 1] |= structure
    holds = np.zeros((by + 1, bx + 1), dtype=bool)
    holds[:by, :bx] = ~tainted
    return holds


def refine_on_background(data: np.ndarray, variance: np.ndarray, bad: np.ndarray,
                         flagged: np.ndarray, *, seed_sigma: float, grow_sigma: float
                         ) -> np.ndarray:
    """Find the hits on the smooth background the previous tests missed.

    Parameters
    ----------
    data : ndarray
        Reduced frame, sky not subtracted (ADU).
    variance : ndarray
        Its variance (ADU²), finite and positive.
    bad : ndarray of bool
        Known bad pixels: never flagged, left out of the mesh.
    flagged : ndarray of bool
        The cosmic-ray pixels found so far (kept: nothing is given back).
    seed_sigma : float
        Threshold (σ of the noise) of a new hit's pixel over the background, less
        ``_SEED_EASING`` here (the mesh's own noise is negligible); two adjacent
        pixels seed together above it plus ``_PAIR_MARGIN`` (their summed ``z``
        over √2).
    grow_sigma : float
        Threshold (σ) of a flagged pixel's neighbour over the background.

    Returns
    -------
    ndarray of bool
        The cosmic-ray mask (a new array; the inputs are untouched).
    """
    d = np.asarray(data, dtype=np.float32)
    v = np.asarray(variance, dtype=np.float32)
    bad = np.asarray(bad, dtype=bool)
    out = np.array(flagged, dtype=bool)
    ny, nx = d.shape
    if ny < 2 * _BLOCK + 2 or nx < 2 * _BLOCK + 2:
        return out
    skip = bad | out
    z, sums = _residual(d, v, skip)
    block_holds = _mesh_holds(sums)

    def testable(pixels: np.ndarray) -> np.ndarray:
        # Where the mesh holds, not bad, not flagged, and not on the frame's outermost
        # pixels (every pixel tested has its 8 neighbours inside the frame).
        rows, cols = np.divmod(pixels, nx)
        inside = (rows >= 1) & (rows < ny - 1) & (cols >= 1) & (cols < nx - 1)
        chosen: np.ndarray = pixels[inside & block_holds[rows // _BLOCK, cols // _BLOCK]
                                    & ~skip.flat[pixels]]
        return chosen

    ring = np.array([dy * nx + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
    candidates = np.flatnonzero(z > grow_sigma)
    grow = testable(candidates)
    seeds = grow[z.flat[grow] > seed_sigma - _SEED_EASING]
    if seeds.size:
        around = z.flat[seeds[:, None] + ring[None, :]]
        point = np.median(around, axis=1) < _POINT * z.flat[seeds] + 1
        out.flat[seeds[point]] = True
    grow = grow[~out.flat[grow]]
    _pair_seeds(z, grow, ring, out, seed_sigma + _PAIR_MARGIN)
    grow = grow[~out.flat[grow]]
    for _ in range(_MAX_ROUNDS):
        if not grow.size:
            break
        joins = out.flat[grow[:, None] + ring[None, :]].any(axis=1)
        if not joins.any():
            break
        out.flat[grow[joins]] = True
        grow = grow[~joins]
    return out


def _pair_seeds(z: np.ndarray, grow: np.ndarray, ring: np.ndarray, out: np.ndarray,
                threshold: float) -> None:
    """Flag in ``out`` the pairs of 8-adjacent testable pixels ``grow`` (sorted flat
    indices) whose summed residual over √2 exceeds ``threshold`` (σ) and that are a
    point (module docstring, step 4): the median of both pixels' 8 neighbours' ``z``
    under ``_POINT`` of the pair's mean plus 1."""
    if not grow.size:
        return
    for offset in (1, ring[5], ring[6], ring[7]):  # right, below left, below, below right
        other = grow + offset
        both = grow[np.minimum(np.searchsorted(grow, other), grow.size - 1)] == other
        first, second = grow[both], other[both]
        mean = (z.flat[first] + z.flat[second]) / 2
        passes = mean * np.sqrt(2) > threshold
        first, second, mean = first[passes], second[passes], mean[passes]
        if not first.size:
            continue
        around = np.concatenate([z.flat[first[:, None] + ring[None, :]],
                                 z.flat[second[:, None] + ring[None, :]]], axis=1)
        point = np.median(around, axis=1) < _POINT * mean + 1
        out.flat[first[point]] = True
        out.flat[second[point]] = True
