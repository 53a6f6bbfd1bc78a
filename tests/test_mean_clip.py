"""Sigma clipping about the mean without sorting, against float64 hand references.

The fast path (:mod:`nightlog.reduction.mean_clip`) must keep exactly the values
that ``ccdproc``'s float64 arithmetic keeps, and agree with the general sorted
engine of :mod:`nightlog.reduction.rejection` on every survivor count.
"""

from __future__ import annotations

import numpy as np
import pytest

from nightlog.reduction import rejection
from nightlog.reduction.combine import ClipSpec, combine
from nightlog.reduction.mean_clip import clip_about_mean, mean_clip_applies


def _stack(n: int, p: int = 4000, seed: int = 7, step: float = 1 / 64) -> np.ndarray:
    """ADU in steps of ``step`` (exact in float32 and in their differences), with
    cosmic-ray-like outliers, a few NaN and an infinity.

    Steps finer than 1 ADU make a bound falling exactly on a value (where two
    exact formulas for the spread may round to either side) improbable.
    """
    rng = np.random.default_rng(seed)
    x = (np.round((1140 + rng.normal(0, 5.5, (n, p))) / step) * step).astype(np.float32)
    hits = rng.integers(0, x.size, x.size // 100)
    x.flat[hits] += rng.uniform(200, 20000, hits.size).round().astype(np.float32)
    x.flat[rng.integers(0, x.size, 20)] = np.nan
    x[0, 5] = np.inf
    x[:, 7] = np.nan  # a pixel with no value at all
    return x


def _hand(x: np.ndarray, clip: ClipSpec, method: str
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The clip by its definition, in float64, one pixel at a time."""
    data, unc, count = [], [], []
    for column in x.T.astype(np.float64):
        keep = np.isfinite(column)
        for _ in range(clip.max_iters or 100):
            v = column[keep]
            if not v.size:
                break
            mean, std = v.mean(), v.std()
            if clip.spread == "noise":
                assert clip.gain is not None and clip.read_noise is not None
                std = np.sqrt((clip.read_noise / clip.gain) ** 2 + max(mean, 0) / clip.gain)
            new = keep.copy()
            if clip.low is not None:
                new &= column >= mean - clip.low * std
            if clip.high is not None:
                new &= column <= mean + clip.high * std
            if np.array_equal(new, keep):
                break
            keep = new
        v = column[keep]
        n = v.size
        if n == 0:
            data.append(np.nan), unc.append(np.nan), count.append(0)
            continue
        if method == "average":
            data.append(v.mean()), unc.append(v.std() / np.sqrt(n))
        else:
            data.append(v.sum()), unc.append(v.std() * np.sqrt(n))
        count.append(n)
    return (np.array(data, np.float32), np.array(unc, np.float32), np.array(count))


CLIPS = [
    ClipSpec(centre="mean", spread="std", max_iters=1),
    ClipSpec(centre="mean", spread="std", low=2.0, high=2.5),
    ClipSpec(centre="mean", spread="std", low=None, high=1.5),
    ClipSpec(centre="mean", spread="noise", read_noise=11.0, gain=2.0),
]


@pytest.mark.parametrize("n", [3, 6, 20, 50])
@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("method", ["average", "sum"])
def test_equals_float64_definition(n: int, clip: ClipSpec, method: str) -> None:
    x = _stack(n)
    before = x.copy()
    data, unc, count = clip_about_mean(x, clip, method=method)
    want_data, want_unc, want_count = _hand(x, clip, method)
    np.testing.assert_array_equal(count, want_count)
    np.testing.assert_array_equal(data, want_data)
    np.testing.assert_allclose(unc, want_unc, rtol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(x, before)  # input untouched


@pytest.mark.parametrize("clip", CLIPS)
def test_same_survivors_as_sorted_engine(clip: ClipSpec, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    x = _stack(12, seed=3)
    fast = rejection.combine_tile(x, method="average", clip=clip, nlow=0, nhigh=0,
                                  weights=None)
    monkeypatch.setattr(rejection, "mean_clip_applies", lambda *a, **k: False)
    slow = rejection.combine_tile(x, method="average", clip=clip, nlow=0, nhigh=0,
                                  weights=None)
    np.testing.assert_array_equal(fast.count, slow.count)
    np.testing.assert_allclose(fast.data, slow.data, rtol=1e-6, equal_nan=True)


def test_applies_only_where_nothing_needs_sorting() -> None:
    mean = ClipSpec(centre="mean")
    assert mean_clip_applies(mean, method="average", nlow=0, nhigh=0, weighted=False)
    assert not mean_clip_applies(ClipSpec(), method="average", nlow=0, nhigh=0,
                                 weighted=False)  # median centre
    assert not mean_clip_applies(ClipSpec(centre="mean", spread="mad"), method="average",
                                 nlow=0, nhigh=0, weighted=False)
    assert not mean_clip_applies(mean, method="median", nlow=0, nhigh=0, weighted=False)
    assert not mean_clip_applies(mean, method="average", nlow=0, nhigh=1, weighted=False)
    assert not mean_clip_applies(mean, method="average", nlow=0, nhigh=0, weighted=True)


def test_prepare_returning_the_callers_pixels_leaves_them_untouched() -> None:
    frames = [np.full((20, 30), 100.0 + i, dtype=np.float32) for i in range(4)]
    copies = [f.copy() for f in frames]
    result = combine(frames, prepare=lambda ccd: ccd, scale=[2.0, 2.0, 2.0, 2.0])
    for frame, copy in zip(frames, copies, strict=True):
        np.testing.assert_array_equal(frame, copy)
    np.testing.assert_allclose(result.data, 2.0 * 101.5)
