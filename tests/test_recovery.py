"""Recovery of the simulated detector's truth by the masters nightlog builds.

The simulator writes the truth it used (read noise, gain, dark current, flat
pattern) beside the frames; these tests build masters the way the pipeline does
and check each figure comes back within a stated tolerance.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import Engine, select

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Master
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.masters import run_build
from nightlog.reduction.master_options import CombineOptions
from nightlog.reduction.masters import make_master_bias
from nightlog.reduction.preparation import Preparation
from nightlog.reduction.rejection import ClipSpec
from nightlog.simulate import load_truth, simulate_night
from nightlog.store.images import FrameFile
from nightlog.store.products import read_product


@pytest.fixture(scope="module")
def ten_biases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("biases") / "raw"
    simulate_night(out, camera="lfc", scale=0.2, seed=5, n_bias=10, n_dark=0, n_flat=0,
                   n_science=0)
    return out


def _noise_of_a_master(raw: Path, options: CombineOptions) -> tuple[float, float]:
    """Noise of a 5-frame master, from the difference of two independent masters,
    beside the truth's read noise / sqrt(5). No overscan step, so that only the
    combination is measured (the overscan's own row noise is another matter)."""
    s = load_truth(raw).summary
    files = [raw / f["name"] for f in s["files"] if f["kind"] == "bias"]
    prep = Preparation(overscan=None, skip_columns=0, trim=fits.getheader(files[0])["DATASEC"])
    frames = [FrameFile(str(f)) for f in files]
    m1 = make_master_bias(frames[:5], prepare=prep, options=options).ccd.data
    m2 = make_master_bias(frames[5:], prepare=prep, options=options).ccd.data
    measured = float(np.std((m1 - m2)[10:-10, 10:-10]) / math.sqrt(2))
    return measured, s["read_noise_adu"] / math.sqrt(5)


def test_master_bias_noise_is_read_noise_over_root_n(ten_biases: Path) -> None:
    s = load_truth(ten_biases).summary
    noise_clip = ClipSpec(low=3.0, high=3.0, centre="median", spread="noise",
                          read_noise=s["read_noise_e"], gain=s["gain_e_per_adu"], max_iters=1)
    measured, expected = _noise_of_a_master(ten_biases, CombineOptions(clip=noise_clip))
    assert measured == pytest.approx(expected, rel=0.10)
    # The robust clip of the stack's own MAD is what the pipeline falls back to
    # without a noise model: with five frames it throws good values away.
    mad, _ = _noise_of_a_master(ten_biases, CombineOptions())
    assert mad > measured


def _built(archive: tuple[Engine, JobContext]) -> dict[str, list[Master]]:
    engine, ctx = archive
    run_build(engine, ctx)
    with make_sessionmaker(engine)() as s:
        out: dict[str, list[Master]] = {}
        for m in s.scalars(select(Master).order_by(Master.id)):
            out.setdefault(m.kind, []).append(m)
        s.expunge_all()
    return out


def test_pipeline_masters_recover_the_detector(archive: tuple[Engine, JobContext],
                                               lfc_night: Path) -> None:
    truth = load_truth(lfc_night)
    s = truth.summary
    masters = _built(archive)
    (bias,) = masters["bias"]
    # Read noise from a pair of biases (lecture), and the clip the pipeline chose.
    assert bias.stats["read_noise_adu"] == pytest.approx(s["read_noise_adu"], rel=0.10)
    assert "noise model" in bias.parameters["combine"]
    # Gain from a pair of flats of each filter.
    for flat in masters["flat"]:
        assert flat.stats["gain_from_flats"] == pytest.approx(s["gain_e_per_adu"], rel=0.10)
    # The dark rate of typical pixels.
    (dark,) = masters["dark"]
    rate = read_product(dark.path).ccd.data
    hot = truth.hot_pixel_mask()[:, :s["image_columns"]]
    assert rate.shape == hot.shape
    assert float(np.median(rate[~hot])) == pytest.approx(s["dark_current_adu_per_s"],
                                                         abs=0.02)
    # The flat pattern, up to the normalisation, within the photon noise of the
    # flats combined (dead pixels, set to 1 in the master by design, left out).
    dead = truth.dead_pixel_mask()[:, :s["image_columns"]]
    pattern = truth.arrays["flat"]
    for flat in masters["flat"]:
        signal = [f["signal_e"] for f in s["files"]
                  if f["kind"] == "flat" and f["filter"] == flat.filter]
        expected = 1.0 / math.sqrt(len(signal) * float(np.mean(signal)))
        data = read_product(flat.path).ccd.data
        inner = np.zeros_like(dead)
        inner[10:-10, 10:-10] = True
        ratio = data[inner & ~dead] / pattern[inner & ~dead]
        ratio /= np.median(ratio)
        spread = 1.4826 * float(np.median(np.abs(ratio - 1.0)))
        assert spread < 1.25 * expected, (flat.filter, spread, expected)
