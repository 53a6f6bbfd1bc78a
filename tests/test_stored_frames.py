"""A stack of files keeps their stored values and converts them tile by tile: the
combination is bit for bit the one of the float32 frames the loaders read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from nightlog.reduction.combine import ClipSpec, combine
from nightlog.reduction.stack import build_stack
from nightlog.reduction.stored_frame import StoredFrame
from nightlog.store.images import FrameFile

SHAPE = (90, 70)


def _frames(n: int, seed: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        frame = 1100.0 + rng.normal(0.0, 6.0, SHAPE)
        hits = rng.integers(0, frame.size, size=40)
        frame.flat[hits] += rng.uniform(300, 9000, size=hits.size)
        out.append(frame)
    return out


def _write(folder: Path, frames: list[np.ndarray], kind: str) -> list[FrameFile]:
    files = []
    for i, frame in enumerate(frames):
        path = folder / f"{kind}{i}.fits"
        if kind == "uint16":  # BZERO 32768, as cameras write
            hdul = fits.HDUList([fits.PrimaryHDU(np.round(frame).astype(np.uint16))])
        elif kind == "scaled":  # BSCALE, BZERO and BLANK pixels
            raw = np.round((frame - 1000.0) / 0.5).astype(np.int16)
            raw[i, :5] = -999
            hdu = fits.PrimaryHDU(raw)
            hdu.header["BSCALE"], hdu.header["BZERO"], hdu.header["BLANK"] = 0.5, 1000.0, -999
            hdul = fits.HDUList([hdu])
        elif kind == "float":
            hdul = fits.HDUList([fits.PrimaryHDU(frame.astype(np.float32))])
        else:  # tile-compressed: read through the loader's call
            hdul = fits.HDUList([fits.PrimaryHDU(),
                                 fits.CompImageHDU(np.round(frame).astype(np.int32))])
        hdul[0].header["FRAMENO"] = i
        hdul.writeto(path)
        files.append(FrameFile(str(path), 1 if kind == "compressed" else 0))
    return files


def _same(a, b) -> None:
    for name in ("data", "uncertainty", "count", "mask"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert [tuple(c) for c in a.header.cards] == [tuple(c) for c in b.header.cards]


@pytest.mark.parametrize("kind", ["uint16", "scaled", "float", "compressed"])
@pytest.mark.parametrize("options", [
    {"clip": ClipSpec(centre="mean", max_iters=1)},
    {"method": "median"},
    {"clip": ClipSpec(), "scale": [1.0, 0.9, 1.2, 1.1, 0.8, 1.05], "threads": 2},
    {"clip": ClipSpec(spread="mad"), "memory_limit": 600_000},  # staged in row bands
])
def test_files_combine_as_their_float32_frames(tmp_path: Path, kind: str,
                                               options: dict) -> None:
    files = _write(tmp_path, _frames(6), kind)
    read = [f() for f in files]  # what each loader's call gives
    from_files = combine(files, **options)
    from_frames = combine(read, **options)
    _same(from_files, from_frames)
    if kind == "scaled":
        assert from_files.count.min() < 6  # BLANK pixels took no part


def test_stack_keeps_16_bit_frames_as_stored_unless_a_step_needs_float32(
        tmp_path: Path) -> None:
    files = _write(tmp_path, _frames(4), "uint16")

    def kept(**options) -> list[bool]:
        defaults = {"prepare": None, "scale": None, "frame_stat": None,
                    "memory_limit": 2**30, "threads": 1, "scratch_dir": None}
        with build_stack(files, **(defaults | options)) as stack:
            assert stack._frames is not None
            return [isinstance(f, StoredFrame) for f in stack._frames]

    assert kept() == [True] * 4
    assert kept(scale=[1.0, 2.0, 1.0, 1.0]) == [True] * 4
    assert kept(frame_stat=np.median) == [False] * 4
    assert kept(prepare=lambda ccd: ccd) == [False] * 4
