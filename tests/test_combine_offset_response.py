"""A combination's slope for an offset common to every frame (a master bias's error).

With frames of one scale and a rejection that moves with a common shift the slope
is the scale itself (the bias-share module says so); the combination then does not
combine the shifted frames. These tests hold it to the measured slope: the
difference of two independent combinations of the frames shifted by ``±δ``.
"""

from __future__ import annotations

import numpy as np
import pytest

from nightlog.reduction.combine import ClipSpec, combine, shift_invariant


def _darks(n: int, seed: int = 3) -> list[np.ndarray]:
    """Bias-subtracted darks with hot pixels, cosmic rays and a few NaN."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        frame = rng.normal(3.0, 5.0, (48, 64)).astype(np.float32)
        frame.flat[rng.integers(0, frame.size, 30)] += 3000.0
        frame.flat[rng.integers(0, frame.size, 5)] = np.nan
        frames.append(frame)
    frames[0][:2, :3] = np.nan
    frames[1][:2, :3] = np.nan
    frames[2][:2, :3] = np.nan
    return frames


def _measured(frames: list[np.ndarray], scales: list[float], delta: float,
              **options: object) -> np.ndarray:
    up = combine([f + np.float32(delta) for f in frames], scale=scales, **options)
    down = combine([f - np.float32(delta) for f in frames], scale=scales, **options)
    return (up.data.astype(np.float64) - down.data) / (2.0 * delta * np.mean(scales))


CLIPS = [
    ({"nhigh": 1}, None),
    ({}, ClipSpec(spread="mad")),
    ({"nlow": 1, "nhigh": 1}, ClipSpec(spread="std", max_iters=1)),
    ({}, ClipSpec(spread="std", centre="mean")),
    ({}, ClipSpec(spread="sigclip")),
    ({}, ClipSpec(spread="noise", read_noise=10.0, gain=2.0, light=False)),
]


@pytest.mark.parametrize(("minmax", "clip"), CLIPS)
@pytest.mark.parametrize("method", ["average", "median", "sum"])
def test_one_scale_gives_the_measured_slope(minmax: dict[str, int], clip: ClipSpec | None,
                                            method: str) -> None:
    frames = _darks(3 if minmax.get("nlow") is None else 4)
    scales = [1.0 / 300.0] * len(frames)
    assert shift_invariant(clip)
    result = combine(frames, method=method, clip=clip, scale=scales, offset_response=2.5,
                     **minmax)
    assert result.offset_response is not None
    measured = _measured(frames, scales, 2.5, method=method, clip=clip, **minmax)
    np.testing.assert_array_equal(np.isnan(result.offset_response), result.count == 0)
    got = result.offset_response / np.float32(scales[0])
    expected = np.where(result.count == 0, np.nan,
                        result.count.astype(np.float64) if method == "sum" else 1.0)
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # The shifted combinations agree within float32 rounding of the values.
    np.testing.assert_allclose(got, measured, rtol=0, atol=2e-3 * (
        result.count.max() if method == "sum" else 1), equal_nan=True)


@pytest.mark.parametrize("clip", [ClipSpec(spread="noise", read_noise=10.0, gain=2.0),
                                  ClipSpec(spread="avsigclip"),
                                  ClipSpec(spread="sigclip", frame_scales=True)])
def test_level_dependent_clips_are_measured(clip: ClipSpec) -> None:
    """A clip whose spread grows with the level is not shift invariant: its slope
    is the measured one, not the scale."""
    assert not shift_invariant(clip)
    frames = [f + np.float32(200.0) for f in _darks(5)]
    scales = [1.0] * 5
    result = combine(frames, clip=clip, scale=scales, offset_response=40.0)
    assert result.offset_response is not None
    measured = _measured(frames, scales, 40.0, clip=clip)
    np.testing.assert_allclose(result.offset_response, measured, rtol=0, atol=1e-5,
                               equal_nan=True)


def test_mixed_scales_are_measured() -> None:
    """Darks of several exposures: the slope is each pixel's measured one, which the
    clip makes differ from the mean scale."""
    frames = _darks(5)
    scales = [1.0 / 30.0, 1.0 / 30.0, 1.0 / 300.0, 1.0 / 300.0, 1.0 / 300.0]
    clip = ClipSpec(spread="mad")
    result = combine(frames, clip=clip, scale=scales, offset_response=2.5)
    assert result.offset_response is not None
    shifted_up = combine([f + np.float32(2.5) for f in frames], clip=clip, scale=scales)
    shifted_down = combine([f - np.float32(2.5) for f in frames], clip=clip, scale=scales)
    slope = (shifted_up.data - shifted_down.data) / np.float32(5.0)
    np.testing.assert_allclose(result.offset_response, slope, rtol=0, atol=1e-4,
                               equal_nan=True)
    assert np.nanstd(result.offset_response) > 0
