"""Stack combination: against ccdproc, against hand-written numpy, and its properties."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.stats import sigma_clip
from hypothesis import given, settings
from hypothesis import strategies as st

from nightlog.errors import CombineError, ShapeMismatchError, UnreadableFileError
from nightlog.reduction.combine import ClipSpec, CombineResult, combine
from nightlog.store.images import FrameFile

ROOT = Path(__file__).resolve().parent.parent


def bias_stack(n: int, shape: tuple[int, int] = (60, 40), seed: int = 1,
               hits: int = 40) -> list[np.ndarray]:
    """Seeded integer-valued bias frames (level 1000, noise 5 ADU) with cosmic rays."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        frame = np.round(rng.normal(1000.0, 5.0, shape)).astype(np.float32)
        idx = rng.integers(0, frame.size, hits)
        frame.flat[idx] += rng.uniform(100, 5000, hits).round().astype(np.float32)
        frames.append(frame)
    return frames


def ccdproc_combine(frames: list[np.ndarray], **kwargs: object) -> CCDData:
    import ccdproc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ccdproc.combine([CCDData(f, unit="adu") for f in frames], **kwargs)


# --- differential tests against ccdproc -------------------------------------------------

@pytest.mark.parametrize(("centre", "func"), [("median", np.ma.median), ("mean", np.ma.mean)])
def test_average_sigma_clip_matches_ccdproc(centre: str, func: object) -> None:
    # ccdproc clips once (astropy sigma_clip with maxiters=1, std with ddof=0)
    # around sigma_clip_func; ClipSpec(max_iters=1) runs the same algorithm.
    frames = bias_stack(20)
    ref = ccdproc_combine(frames, method="average", sigma_clip=True, sigma_clip_low_thresh=3,
                          sigma_clip_high_thresh=3, sigma_clip_func=func,
                          sigma_clip_dev_func=np.ma.std)
    ours = combine(frames, clip=ClipSpec(low=3, high=3, centre=centre, spread="std",  # type: ignore[arg-type]
                                         max_iters=1))
    np.testing.assert_allclose(ours.data, ref.data, rtol=1e-5)
    # ccdproc's uncertainty is the same std (ddof=0) of the survivors / sqrt(n).
    np.testing.assert_allclose(ours.uncertainty, ref.uncertainty.array, rtol=1e-4, atol=1e-6)
    assert np.array_equal(ours.mask, ref.mask)


@pytest.mark.parametrize("method", ["median", "sum", "average"])
def test_plain_methods_match_ccdproc(method: str) -> None:
    frames = bias_stack(7, seed=3)
    ref = ccdproc_combine(frames, method=method)
    ours = combine(frames, method=method)  # type: ignore[arg-type]
    np.testing.assert_allclose(ours.data, ref.data, rtol=1e-5)
    if method != "median":  # ccdproc's median uncertainty is MAD-based, ours 1.2533 std/sqrt(n)
        np.testing.assert_allclose(ours.uncertainty, ref.uncertainty.array, rtol=1e-4)


def test_minmax_matches_ccdproc_clip_extrema() -> None:
    frames = bias_stack(9, seed=4)
    ref = ccdproc_combine(frames, method="average", clip_extrema=True, nlow=2, nhigh=3)
    ours = combine(frames, nlow=2, nhigh=3)
    np.testing.assert_allclose(ours.data, ref.data, rtol=1e-5)
    assert np.all(ours.count == 4)


def test_weights_match_ccdproc() -> None:
    frames = bias_stack(5, seed=5, hits=0)
    weights = [1.0, 2.0, 0.5, 3.0, 1.5]
    ref = ccdproc_combine(frames, method="average", weights=np.array(weights))
    ours = combine(frames, weights=weights)
    np.testing.assert_allclose(ours.data, ref.data, rtol=1e-5)


# --- hand-written numpy references (the lecture's recipe) --------------------------------

def test_iterated_clip_matches_lecture_sigma_clip() -> None:
    # Lecture: sigma_clip(stack, cenfunc='median', sigma=s, axis=0), then np.ma.mean;
    # astropy iterates until nothing changes (maxiters=None here).
    frames = bias_stack(12, seed=6)
    clipped = sigma_clip(np.array(frames, dtype=np.float64), cenfunc="median", stdfunc="std",
                         sigma=2.5, maxiters=None, axis=0)
    ours = combine(frames, clip=ClipSpec(low=2.5, high=2.5))
    np.testing.assert_allclose(ours.data, np.ma.mean(clipped, axis=0).data, rtol=1e-5)
    np.testing.assert_array_equal(ours.count, (~clipped.mask).sum(axis=0))


def test_mad_clip_matches_hand_numpy() -> None:
    frames = bias_stack(8, seed=7)
    stack = np.array(frames, dtype=np.float64)
    med = np.median(stack, axis=0)
    sigma = 1.482602218505602 * np.median(np.abs(stack - med), axis=0)
    keep = (stack >= med - 3 * sigma) & (stack <= med + 3 * sigma)
    expected = (stack * keep).sum(axis=0) / keep.sum(axis=0)
    ours = combine(frames, clip=ClipSpec(spread="mad", max_iters=1))
    np.testing.assert_allclose(ours.data, expected, rtol=1e-5)
    np.testing.assert_array_equal(ours.count, keep.sum(axis=0))


def test_noise_model_clip_matches_hand_numpy() -> None:
    frames = bias_stack(6, seed=8)
    rn, gain = 10.0, 2.0  # electrons, e-/ADU: sigma = sqrt(25 + level/2) ADU
    stack = np.array(frames, dtype=np.float64)
    med = np.median(stack, axis=0)
    sigma = np.sqrt((rn / gain) ** 2 + np.maximum(med, 0) / gain)
    keep = np.abs(stack - med) <= 3 * sigma
    ours = combine(frames, clip=ClipSpec(spread="noise", read_noise=rn, gain=gain, max_iters=1))
    np.testing.assert_allclose(ours.data, (stack * keep).sum(0) / keep.sum(0), rtol=1e-5)


def test_median_uncertainty_and_sum_uncertainty_are_documented_factors() -> None:
    frames = bias_stack(9, seed=9, hits=0)
    stack = np.array(frames, dtype=np.float64)
    std = stack.std(axis=0)
    med = combine(frames, method="median")
    np.testing.assert_allclose(med.uncertainty, 1.2533141 * std / 3.0, rtol=1e-5)
    total = combine(frames, method="sum")
    np.testing.assert_allclose(total.uncertainty, std * 3.0, rtol=1e-5)


# --- small stacks: the 5-frame outlier -----------------------------------------------------

def five_biases_with_hit() -> tuple[list[np.ndarray], tuple[slice, slice]]:
    rng = np.random.default_rng(11)
    frames = [np.round(rng.normal(1000.0, 5.0, (40, 40))).astype(np.float32) for _ in range(5)]
    hit = (slice(10, 13), slice(20, 23))
    frames[2][hit] += 3000.0
    return frames, hit


def test_std_clip_cannot_reject_one_outlier_in_five() -> None:
    # With N=5 and ddof=0 the largest possible |z| is (N-1)/sqrt(N) = 1.79 < 3.
    frames, hit = five_biases_with_hit()
    ours = combine(frames, clip=ClipSpec(spread="std"))
    assert np.all(ours.count[hit] == 5)
    assert np.all(ours.data[hit] > 1500)
    z = (5 - 1) / np.sqrt(5)
    assert z < 1.8


@pytest.mark.parametrize("clip", [ClipSpec(spread="mad"), ClipSpec(spread="mad", max_iters=1),
                                  ClipSpec(spread="noise", read_noise=10.0, gain=2.0)])
def test_robust_and_noise_clip_reject_one_outlier_in_five(clip: ClipSpec) -> None:
    frames, hit = five_biases_with_hit()
    ours = combine(frames, clip=clip)
    # The +3000 ADU value of frame 2 is gone: what is left is a clean bias level.
    assert np.all(ours.count[hit] <= 4)
    assert np.all(np.abs(ours.data[hit] - 1000.0) < 15.0)
    if clip.spread == "noise":
        # The noise model does not shrink with the sample: only the hit goes.
        assert np.all(ours.count[hit] == 4)
        clean = np.mean([f[hit] for i, f in enumerate(frames) if i != 2], axis=0)
        np.testing.assert_allclose(ours.data[hit], clean, rtol=1e-6)
        assert np.all(ours.count[20:, :] == 5)


# --- masks, NaN, all rejected ------------------------------------------------------------

def test_pixel_with_nothing_left_is_masked() -> None:
    frames = bias_stack(4, hits=0)
    for f in frames:
        f[5, 7] = np.nan
    ccds = [CCDData(f, unit="adu", mask=np.zeros(f.shape, bool)) for f in frames]
    for c in ccds:
        c.mask[1, 2] = True
    result = combine(ccds)
    for pix in ((5, 7), (1, 2)):
        assert result.mask[pix] and result.count[pix] == 0 and np.isnan(result.data[pix])
    assert result.mask.sum() == 2
    assert np.all(result.count[~result.mask] == 4)


def test_masked_pixel_of_one_frame_is_left_out() -> None:
    frames = bias_stack(3, hits=0)
    mask = np.zeros(frames[0].shape, bool)
    mask[3, 3] = True
    ccds = [CCDData(frames[0], unit="adu", mask=mask)] + [CCDData(f, unit="adu")
                                                           for f in frames[1:]]
    result = combine(ccds)
    assert result.count[3, 3] == 2
    assert result.data[3, 3] == pytest.approx((frames[1][3, 3] + frames[2][3, 3]) / 2)


# --- property tests -------------------------------------------------------------------------

frames_strategy = st.integers(2, 9).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, 2**31 - 1)))


@settings(max_examples=30, deadline=None)
@given(frames_strategy, st.sampled_from(["average", "median", "sum"]))
def test_identical_frames_give_the_frame(params: tuple[int, int], method: str) -> None:
    n, seed = params
    frame = np.random.default_rng(seed).normal(100, 20, (7, 5)).astype(np.float32)
    result = combine([frame] * n, method=method, clip=ClipSpec())  # type: ignore[arg-type]
    expected = frame * n if method == "sum" else frame
    np.testing.assert_allclose(result.data, expected, rtol=1e-6)
    assert np.all(result.count == n)
    np.testing.assert_allclose(result.uncertainty, 0, atol=1e-3)


@settings(max_examples=30, deadline=None)
@given(frames_strategy, st.randoms(use_true_random=False))
def test_permutation_invariance(params: tuple[int, int], rnd: object) -> None:
    n, seed = params
    frames = bias_stack(n, shape=(6, 5), seed=seed, hits=3)
    shuffled = list(frames)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a = combine(frames, clip=ClipSpec(spread="mad"), nlow=1 if n > 2 else 0)
    b = combine(shuffled, clip=ClipSpec(spread="mad"), nlow=1 if n > 2 else 0)
    np.testing.assert_allclose(a.data, b.data, rtol=1e-6)
    np.testing.assert_array_equal(a.count, b.count)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 4).map(lambda k: 2 * k + 1), st.integers(0, 2**31 - 1))
def test_median_of_odd_stack_is_hand_median(n: int, seed: int) -> None:
    frames = [np.random.default_rng(seed + i).normal(0, 50, (5, 6)).astype(np.float32)
              for i in range(n)]
    result = combine(frames, method="median")
    np.testing.assert_array_equal(result.data, np.median(np.array(frames), axis=0))
    assert np.all(result.count == n)


@settings(max_examples=20, deadline=None)
@given(frames_strategy)
def test_inputs_are_not_modified(params: tuple[int, int]) -> None:
    n, seed = params
    frames = bias_stack(n, shape=(6, 5), seed=seed, hits=2)
    ccds = [CCDData(f.copy(), unit="adu", mask=np.zeros(f.shape, bool)) for f in frames]
    copies = [f.copy() for f in frames]
    combine(frames, clip=ClipSpec(), scale=[2.0] * n)
    combine(ccds, scale="median", method="median")
    for f, c, ccd in zip(frames, copies, ccds, strict=True):
        np.testing.assert_array_equal(f, c)
        np.testing.assert_array_equal(ccd.data, c)
        assert not ccd.mask.any()


# --- files, prepare, scratch ----------------------------------------------------------------

def write_files(folder: Path, frames: list[np.ndarray], extname: str | None = None
                ) -> list[FrameFile]:
    """The frames written as FITS files, as the store's loaders of them."""
    paths = []
    for i, frame in enumerate(frames):
        data = frame.astype(np.uint16)
        if extname:
            hdul = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, name=extname)])
        else:
            hdul = fits.HDUList([fits.PrimaryHDU(data)])
        hdul[0].header["FRAMENO"] = i
        path = folder / f"f{i}.fits"
        hdul.writeto(path)
        paths.append(path)
    return [FrameFile(str(p), extname or 0) for p in paths]


def test_files_with_prepare_read_once_and_scratch_equals_memory(tmp_path: Path) -> None:
    frames = bias_stack(6, shape=(200, 60), seed=12)
    paths = write_files(tmp_path, frames, extname="SCI")
    calls: list[int] = []

    def prepare(ccd: CCDData) -> CCDData:
        calls.append(1)
        return CCDData(ccd.data[:, 2:] - 100.0, unit=ccd.unit, meta=ccd.meta)

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    in_memory = combine(paths, prepare=prepare, clip=ClipSpec())
    assert len(calls) == 6
    banded = combine(paths, prepare=prepare, clip=ClipSpec(), threads=2,
                     memory_limit=400_000, scratch_dir=scratch)
    assert len(calls) == 12
    assert list(scratch.iterdir()) == []
    np.testing.assert_array_equal(in_memory.data, banded.data)
    expected = combine([f[:, 2:] - 100.0 for f in frames], clip=ClipSpec())
    np.testing.assert_allclose(in_memory.data, expected.data, rtol=1e-6)
    assert in_memory.data.shape == (200, 58)
    assert in_memory.header["NCOMBINE"] == 6


def test_scratch_file_removed_on_error(tmp_path: Path) -> None:
    frames = bias_stack(5, shape=(40, 30))
    frames[3] = frames[3][:, :20]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with pytest.raises(ShapeMismatchError):
        combine(frames, memory_limit=40_000, scratch_dir=scratch)
    assert list(scratch.iterdir()) == []


def test_result_to_ccddata_and_header_copied(tmp_path: Path) -> None:
    paths = write_files(tmp_path, bias_stack(3, hits=0))
    result = combine(paths)
    assert isinstance(result, CombineResult)
    ccd = result.to_ccddata("adu")
    assert ccd.header["FRAMENO"] == 0
    assert ccd.uncertainty.uncertainty_type == "std"
    assert ccd.mask.dtype == bool and not ccd.mask.any()
    assert result.data.dtype == np.float32 and result.count.dtype == np.uint16


def test_scale_by_region_median_and_explicit(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    base = rng.normal(1.0, 0.01, (40, 40)).astype(np.float32)
    levels = [1000.0, 2000.0, 4000.0]
    frames = [base * lv for lv in levels]
    result = combine(frames, scale="median", scale_region="[11:30,11:30]")
    np.testing.assert_allclose(result.scales, [1 / (lv * np.median(base[10:30, 10:30]))
                                               for lv in levels], rtol=1e-5)
    np.testing.assert_allclose(result.data, base / np.median(base[10:30, 10:30]), rtol=1e-5)
    explicit = combine(frames, scale=[1 / lv for lv in levels])
    np.testing.assert_allclose(explicit.data, base, rtol=1e-5)


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"method": "mean"}, CombineError),
    ({"nlow": 2, "nhigh": 1}, CombineError),
    ({"weights": [1.0, 2.0]}, CombineError),
    ({"weights": [1.0, 1.0, 1.0], "method": "median"}, CombineError),
    ({"scale": [1.0, 0.0, 1.0]}, CombineError),
    ({"memory_limit": 1000}, CombineError),
])
def test_bad_options_raise(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        combine(bias_stack(3), **kwargs)  # type: ignore[arg-type]


def test_bad_inputs_raise(tmp_path: Path) -> None:
    with pytest.raises(CombineError):
        combine([])
    with pytest.raises(ShapeMismatchError):
        combine([np.zeros((3, 3)), np.zeros((3, 4))])
    with pytest.raises(UnreadableFileError):  # raised by the store's loader
        combine([FrameFile(str(tmp_path / "missing.fits"))])
    with pytest.raises(CombineError):  # a path is no input: the core reads no file
        combine([tmp_path / "missing.fits"])  # type: ignore[list-item]
    with pytest.raises(CombineError):
        ClipSpec(spread="noise")


# --- memory limit, measured in a fresh process -------------------------------------------

_MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    from nightlog.reduction.combine import ClipSpec, combine
    from nightlog.store.images import FrameFile
    def rss():
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize()
    files = [FrameFile(p) for p in sys.argv[2:]]
    baseline = rss()
    result = combine(files, clip=ClipSpec(), memory_limit=int(sys.argv[1]),
                     scratch_dir=sys.argv[2].rsplit("/", 1)[0])
    # VmHWM, not ru_maxrss: the latter survives exec and starts at the parent's size.
    with open("/proc/self/status") as fh:
        peak = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM"))
    print(json.dumps({"growth": peak - baseline, "count": int(result.count.min())}))
""")


@pytest.mark.slow
def test_peak_memory_stays_within_limit(tmp_path: Path) -> None:
    limit = 64 * 2**20
    rng = np.random.default_rng(14)
    paths = []
    for i in range(64):  # 64 frames x 4 MiB float32 = 256 MiB, four times the limit
        data = rng.normal(1000, 5, (1024, 1024)).astype(np.uint16)
        path = tmp_path / f"m{i}.fits"
        fits.PrimaryHDU(data).writeto(path)
        paths.append(str(path))
    done = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(limit), *paths],
                          capture_output=True, text=True, check=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["count"] >= 50
    assert report["growth"] <= 1.2 * limit, report
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".fits"] == []


def test_threaded_decoding_keeps_frame_order(tmp_path: Path) -> None:
    frames = [f * (i + 1) for i, f in enumerate(bias_stack(5, shape=(30, 20), hits=0))]
    paths = write_files(tmp_path, frames)
    one = combine(paths, scale="median", frame_stat=lambda f: float(np.median(f)))
    two = combine(paths, scale="median", frame_stat=lambda f: float(np.median(f)), threads=2)
    assert one.frame_stats == two.frame_stats == [float(np.median(f)) for f in frames]
    assert one.scales == two.scales
    np.testing.assert_array_equal(one.data, two.data)
