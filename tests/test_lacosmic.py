"""astroscrappy's per-call leak, mended: same masks as the original, a process that
stays flat over many calls (a worker reduces hundreds of frames a night)."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nightlog.reduction.lacosmic import _single_passes, leak_free_astroscrappy


def _frame(seed: int, shape: tuple[int, int] = (300, 280)) -> np.ndarray:
    """Sky, cosmic-ray hits and a block of saturated pixels (which dilate5 grows)."""
    rng = np.random.default_rng(seed)
    data = rng.normal(1000.0, 12.0, shape).astype(np.float32)
    data[rng.integers(0, shape[0], 200), rng.integers(0, shape[1], 200)] += 4000.0
    data[40:47, 60:66] = 70000.0
    data[rng.integers(0, shape[0], 30), rng.integers(0, shape[1], 30)] = 70000.0
    return data


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mended_detection_equals_the_original_bit_for_bit(
        seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    astroscrappy = leak_free_astroscrappy()
    core = importlib.import_module("astroscrappy.astroscrappy")
    assert getattr(core.dilate5, "_nightlog_single_pass", False)
    original_dilate5 = core.dilate5.__wrapped__
    passes: list[int] = []

    def counting(data: np.ndarray, niter: int) -> np.ndarray:
        passes.append(niter)
        return original_dilate5(data, niter)

    # The mend, built over a counting original: detect_cosmics must go through it.
    monkeypatch.setattr(core, "dilate5", _single_passes(counting))
    data = _frame(seed)
    kwargs = {"satlevel": 60000.0, "niter": 2, "gain": 1.5, "readnoise": 9.0}
    mended = astroscrappy.detect_cosmics(data, **kwargs)
    assert passes == [1, 1], "the saturated-star dilation did not take the mended path"
    monkeypatch.setattr(core, "dilate5", original_dilate5)
    original = astroscrappy.detect_cosmics(data, **kwargs)
    np.testing.assert_array_equal(mended[0], original[0])
    np.testing.assert_array_equal(mended[1], original[1])
    assert mended[0].sum() > 0


@pytest.mark.parametrize("niter", [1, 2, 3])
def test_mended_dilation_equals_the_original(niter: int) -> None:
    leak_free_astroscrappy()
    core = importlib.import_module("astroscrappy.astroscrappy")
    rng = np.random.default_rng(niter)
    mask = rng.random((64, 70)) > 0.995
    np.testing.assert_array_equal(core.dilate5(mask, niter),
                                  core.dilate5.__wrapped__(mask, niter))


def test_installing_twice_wraps_once() -> None:
    leak_free_astroscrappy()
    leak_free_astroscrappy()
    core = importlib.import_module("astroscrappy.astroscrappy")
    assert not hasattr(core.dilate5.__wrapped__, "__wrapped__")


_GROWTH = textwrap.dedent("""
    import importlib, sys
    import numpy as np
    from nightlog.reduction.lacosmic import _single_passes, leak_free_astroscrappy
    if sys.argv[1] == "mended":
        astroscrappy = leak_free_astroscrappy()
    else:
        astroscrappy = importlib.import_module("astroscrappy")
    import os
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    data = np.random.default_rng(0).normal(1000, 10, (512, 1024)).astype(np.float32)
    for _ in range(2):
        astroscrappy.detect_cosmics(data, niter=1)
    start = rss()
    for _ in range(12):
        astroscrappy.detect_cosmics(data, niter=1)
    print(rss() - start)
""")


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_process_stays_flat_over_many_calls() -> None:
    """12 calls on a half-megapixel frame: the original grows 0.5 MiB a call (6 MiB),
    the mended one not."""
    def growth(which: str) -> int:
        out = subprocess.run([sys.executable, "-c", _GROWTH, which], check=True,
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
        return int(out.stdout.split()[-1])

    mended = growth("mended")
    assert mended < 1.5 * 2**20, f"mended detection still grows the process by {mended} B"
    if _version(importlib.metadata.version("astroscrappy")) <= (1, 3, 0):
        # The measurement sees the leak where it is known to be.
        assert growth("original") > 4.5 * 2**20


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())
