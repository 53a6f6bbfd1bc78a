"""IRAF's clipping rules users expect: ``avsigclip``, the noise model (``ccdclip``) in
each frame's own units, and ``nkeep``. Each is compared with a reference written
here, pixel by pixel in plain Python, from the ``imcombine`` help text:

* avsigclip: "sigma(column,line) = sqrt(gain(line) * signal(column,line))", the
  proportionality "computed independently for each output line by averaging the
  square of the residuals (at points having three or more input values) scaled by
  the median or mean", not recomputed after rejections; the mean excludes the low
  and high values at first;
* ccdclip: "sigma = ((rn / g) ** 2 + <I> / g) ** 1/2"; with scaled images "the
  median or average is scaled to that of the original image before computing the
  sigma and residuals";
* sigclip: "computes at each output pixel the median or average excluding the high
  and low values. The sigma is then computed about this estimate (without excluding
  the low and high values)" (with n - 1, as IRAF's icsclip); "after the first time
  the average includes all values";
* nkeep: "If there are fewer pixels retained than specified by this parameter the
  pixels with the smallest residuals in absolute value are added back ... they are
  all added back even if this means more than nkeep pixels are retained"; a
  negative value is the maximum number rejected.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nightlog.errors import CombineError
from nightlog.reduction.combine import combine
from nightlog.reduction.iraf_rejection import reject_by_frame
from nightlog.reduction.rejection import ClipSpec

GAIN = 2.0
READ_NOISE = 6.0
SHAPE = (12, 16)

Sigma = Callable[[float, int, dict[int, float]], float]


HITS: dict[int, list[tuple[int, int, int, float]]] = {}


def _stack(seed: int, electrons: list[float], cosmics: int = 12) -> list[np.ndarray]:
    """Flats in ADU: Poisson electrons and read noise, with cosmic rays (kept in
    ``HITS[seed]`` as frame, row, column, ADU)."""
    rng = np.random.default_rng(seed)
    frames = []
    HITS[seed] = []
    for n, e in enumerate(electrons):
        frame = (rng.poisson(e, SHAPE) + rng.normal(0.0, READ_NOISE, SHAPE)) / GAIN
        ys, xs = rng.integers(0, SHAPE[0], cosmics), rng.integers(0, SHAPE[1], cosmics)
        amp = rng.uniform(200.0, 3000.0, cosmics)
        frame[ys, xs] += amp
        HITS[seed] += [(n, int(y), int(x), float(a)) for y, x, a in zip(ys, xs, amp,
                                                                          strict=True)]
        frames.append(frame.astype(np.float32))
    return frames


def _centre(values: list[float], how: str, first: bool) -> float:
    if how == "median":
        return float(statistics.median(values))
    if first and len(values) >= 3:
        ordered = sorted(values)
        return sum(ordered[1:-1]) / (len(ordered) - 2)
    return sum(values) / len(values)


def _clip_pixel(values: dict[int, float], sigma: Sigma, *, how: str, low: float,
                high: float, nkeep: int | None, min_clip: int,
                max_iters: int | None = None) -> dict[int, float]:
    """The values of one pixel (frame -> value) that the clip keeps."""
    n0 = len(values)
    if nkeep is None:
        maxkeep = 0
    elif nkeep >= 0:
        maxkeep = min(n0, nkeep)
    else:
        maxkeep = max(0, n0 + nkeep)
    kept = dict(values)
    rejected: dict[int, float] = {}
    if n0 >= max(min_clip, maxkeep + 1):
        passes = 0
        while max_iters is None or passes < max_iters:
            c = _centre(list(kept.values()), how, first=passes == 0)
            passes += 1
            out = []
            for i, v in kept.items():
                s = sigma(c, i, kept)
                if s > 0 and not -low <= (v - c) / s <= high:
                    out.append((i, abs(v - c) / s))
            for i, r in out:
                del kept[i]
                rejected[i] = r
            if not out or len(kept) <= max(2, maxkeep):
                break
    while len(kept) < maxkeep and rejected:
        best = min(rejected.values())
        for i in [i for i, r in rejected.items() if r <= best + 1e-3]:
            kept[i] = values[i]
            del rejected[i]
    return kept


def _reference(frames: list[np.ndarray], factors: list[float],
               sigma_for: Callable[[int, int], Sigma], **clip: object
               ) -> tuple[np.ndarray, np.ndarray]:
    """Average of the kept values and their count, per pixel (frames scaled first)."""
    scaled = [f.astype(np.float64) * s for f, s in zip(frames, factors, strict=True)]
    mean = np.full(SHAPE, np.nan)
    count = np.zeros(SHAPE, dtype=int)
    for y in range(SHAPE[0]):
        for x in range(SHAPE[1]):
            values = {i: float(a[y, x]) for i, a in enumerate(scaled)}
            kept = _clip_pixel(values, sigma_for(y, x), **clip)  # type: ignore[arg-type]
            count[y, x] = len(kept)
            mean[y, x] = sum(kept.values()) / len(kept)
    return mean, count


def _avsig_k(frames: list[np.ndarray], factors: list[float], own: bool, how: str
             ) -> list[float]:
    """IRAF's average Poisson-scaled sigma of each line, before any rejection."""
    scaled = [f.astype(np.float64) * s for f, s in zip(frames, factors, strict=True)]
    out = []
    for y in range(SHAPE[0]):
        total, n = 0.0, 0
        for x in range(SHAPE[1]):
            values = [a[y, x] for a in scaled]
            c = _centre(values, how, first=True)
            for i, v in enumerate(values):
                f = factors[i] if own else 1.0
                total += ((v - c) / f) ** 2 / max(1.0, c / f)
                n += 1
        out.append(math.sqrt(total / (n - 1)))
    return out


@pytest.mark.parametrize("how", ["median", "mean"])
def test_avsigclip_matches_the_help_text(how: str) -> None:
    frames = _stack(1, [20_000.0] * 7)
    k = _avsig_k(frames, [1.0] * 7, own=False, how=how)

    def sigma_for(y: int, x: int) -> Sigma:
        return lambda c, i, kept: k[y] * math.sqrt(max(1.0, c))

    expected, count = _reference(frames, [1.0] * 7, sigma_for, how=how, low=3.0,
                                 high=3.0, nkeep=None, min_clip=3)
    clip = ClipSpec(low=3.0, high=3.0, spread="avsigclip", centre=how)  # type: ignore[arg-type]
    result = combine(frames, method="average", clip=clip)
    np.testing.assert_array_equal(result.count, count)
    np.testing.assert_allclose(result.data, expected, rtol=2e-7)
    # The bright cosmic rays are gone (IRAF's k, measured with them in, is inflated
    # by them: the faint ones can stay). No pixel lost more than three values.
    bright = [(y, x) for _, y, x, a in HITS[1] if a > 2000.0]
    assert bright
    survivors = [frames[i][y, x] for i, y, x, a in HITS[1] if a > 2000.0]
    assert all(abs(result.data[y, x] - v) > 500 for (y, x), v in zip(bright, survivors,
                                                                      strict=True))
    assert count.min() >= 4


def test_avsigclip_in_each_frames_own_units() -> None:
    electrons = [30_000.0, 24_000.0, 18_000.0, 14_000.0, 11_000.0, 9_000.0]
    frames = _stack(2, electrons)
    factors = [GAIN / e for e in electrons]  # each flat normalised to 1
    k = _avsig_k(frames, factors, own=True, how="median")

    def sigma_for(y: int, x: int) -> Sigma:
        return lambda c, i, kept: k[y] * factors[i] * math.sqrt(max(1.0, c / factors[i]))

    expected, count = _reference(frames, factors, sigma_for, how="median", low=3.0,
                                 high=3.0, nkeep=None, min_clip=3)
    clip = ClipSpec(low=3.0, high=3.0, spread="avsigclip", frame_scales=True)
    result = combine(frames, method="average", clip=clip, scale=factors)
    np.testing.assert_array_equal(result.count, count)
    np.testing.assert_allclose(result.data, expected, rtol=2e-7)


def test_ccdclip_with_each_frames_own_scale() -> None:
    electrons = [30_000.0, 22_000.0, 16_000.0, 12_000.0, 9_000.0, 7_000.0, 5_000.0]
    frames = _stack(3, electrons)
    factors = [GAIN / e for e in electrons]

    def sigma_for(y: int, x: int) -> Sigma:
        def sigma(c: float, i: int, kept: dict[int, float]) -> float:
            level = max(c / factors[i], 0.0)  # the frame's own ADU
            return factors[i] * math.sqrt((READ_NOISE / GAIN) ** 2 + level / GAIN)
        return sigma

    expected, count = _reference(frames, factors, sigma_for, how="median", low=3.0,
                                 high=3.0, nkeep=None, min_clip=2)
    clip = ClipSpec(low=3.0, high=3.0, spread="noise", read_noise=READ_NOISE, gain=GAIN,
                    frame_scales=True)
    result = combine(frames, method="average", clip=clip, scale=factors)
    np.testing.assert_array_equal(result.count, count)
    np.testing.assert_allclose(result.data, expected, rtol=2e-7)
    # The mean scale instead (the fast path's rule) misjudges frames far from it:
    # at 5 000 e- against the mean level its sigma is 30 % too large.
    mean_scale = combine(frames, method="average", scale=factors, clip=ClipSpec(
        low=3.0, high=3.0, spread="noise", read_noise=READ_NOISE, gain=GAIN))
    assert not np.array_equal(mean_scale.count, count)


@pytest.mark.parametrize(("how", "own"), [("median", False), ("mean", False),
                                          ("median", True)])
def test_sigclip_matches_the_help_text(how: str, own: bool) -> None:
    # Scaled frames of fading levels for the frames' own units, else one level.
    electrons = ([26_000.0, 22_000.0, 19_000.0, 16_000.0, 14_000.0, 12_000.0, 10_000.0,
                  9_000.0, 8_000.0, 7_000.0] if own else [20_000.0] * 10)
    frames = _stack(5, electrons)
    factors = [GAIN / e for e in electrons] if own else [1.0] * len(electrons)

    def weight(c: float, i: int) -> float:
        # The Poisson factor of frame i's own units (1 without frame scales).
        return factors[i] * math.sqrt(max(1.0, c / factors[i])) if own else 1.0

    def sigma_for(y: int, x: int) -> Sigma:
        def sigma(c: float, i: int, kept: dict[int, float]) -> float:
            total = sum(((v - c) / weight(c, j)) ** 2 for j, v in kept.items())
            return math.sqrt(total / (len(kept) - 1)) * weight(c, i)
        return sigma

    # With ten values one outlier is at most sqrt(9) = 3 sigma from the median: clip
    # at 2.5.
    expected, count = _reference(frames, factors, sigma_for, how=how, low=2.5, high=2.5,
                                 nkeep=None, min_clip=3)
    clip = ClipSpec(low=2.5, high=2.5, spread="sigclip", centre=how,  # type: ignore[arg-type]
                    frame_scales=own)
    result = combine(frames, method="average", clip=clip, scale=factors)
    np.testing.assert_array_equal(result.count, count)
    np.testing.assert_allclose(result.data, expected, rtol=2e-7)
    assert count.min() < len(electrons)  # something was clipped


@pytest.mark.parametrize("nkeep", [5, -1])
def test_nkeep_gives_back_the_smallest_residuals(nkeep: int) -> None:
    frames = _stack(4, [20_000.0] * 7, cosmics=30)

    def sigma_for(y: int, x: int) -> Sigma:
        def sigma(c: float, i: int, kept: dict[int, float]) -> float:
            values = list(kept.values())
            mean = sum(values) / len(values)
            return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        return sigma

    # A tight 1-sigma clip rejects many good values: nkeep holds them back.
    expected, count = _reference(frames, [1.0] * 7, sigma_for, how="median", low=1.0,
                                 high=1.0, nkeep=nkeep, min_clip=3)
    clip = ClipSpec(low=1.0, high=1.0, spread="std", nkeep=nkeep)
    result = combine(frames, method="average", clip=clip)
    np.testing.assert_array_equal(result.count, count)
    np.testing.assert_allclose(result.data, expected, rtol=2e-7)
    assert result.count.min() >= (5 if nkeep > 0 else 6)
    plain = combine(frames, method="average", clip=ClipSpec(low=1.0, high=1.0))
    assert plain.count.min() < result.count.min()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 9), nkeep=st.integers(-4, 9), seed=st.integers(0, 2**16))
def test_nkeep_bounds_what_the_clip_takes(n: int, nkeep: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    tile = rng.normal(100.0, 10.0, (n, 40)).astype(np.float32)
    tile[rng.random(tile.shape) < 0.1] = np.nan  # masked values
    valid = np.isfinite(tile).sum(axis=0)
    keep = reject_by_frame(tile, ClipSpec(low=0.5, high=0.5, spread="mad", nkeep=nkeep))
    kept = keep.sum(axis=0)
    assert not (keep & ~np.isfinite(tile)).any()  # masked values never come back
    if nkeep >= 0:
        assert np.all(kept >= np.minimum(valid, nkeep))
    else:
        assert np.all(valid - kept <= -nkeep)


def test_bad_options_are_refused() -> None:
    with pytest.raises(CombineError, match="frame_scales"):
        ClipSpec(spread="mad", frame_scales=True)
    with pytest.raises(CombineError, match="nkeep"):
        ClipSpec(nkeep=1.5)  # type: ignore[arg-type]
    with pytest.raises(CombineError, match="whole lines"):
        reject_by_frame(np.ones((3, 10), np.float32), ClipSpec(spread="avsigclip"),
                        line_length=4)
    assert not ClipSpec().by_frame and ClipSpec(nkeep=0).by_frame
