"""The detector measures itself, to the precision of the truth (issue #14).

A simulated night of the LFC and of the Aspen, reduced with a profile that gives
neither a read noise nor a gain: the master bias's noise against the simulator's
read noise / √N, the photon-transfer gain against its gain, and the uncertainty
plane of the reduced frames against the scatter of their sky.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import Engine, create_engine, select

from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Master, Product
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import run_reduce, science_frames
from nightlog.settings import load_settings
from nightlog.simulate import SimulationTruth, load_truth, simulate_night

_MAD_TO_SIGMA = 1.482602218505602
Night = tuple[Engine, Path, SimulationTruth]


def _profile_without_numbers(camera: str) -> str:
    """The built-in profile of ``camera`` as a site would copy it, its gain and read
    noise taken out (the LFC's GAIN keyword, 1.1 e⁻/ADU, is wrong by a factor two,
    so its gain is asked to be measured)."""
    text = files("nightlog.header.profiles").joinpath("builtin", f"{camera}.toml").read_text(
        encoding="utf-8")
    text = re.sub(r"^(gain|read_noise|description) = .*\n", "", text, flags=re.M)
    if camera == "lfc":
        text = 'gain = "measured"\n' + text
    return f"[instruments.{camera}_measured]\npriority = 10\n" + text


def masters_of_a_measured_night(where: Path, camera: str) -> tuple[Engine, Path, JobContext]:
    """A night of ``camera`` simulated into ``where / "raw"`` (scale 0.1, seed 3),
    ingested into an SQLite archive of its own with the profile of
    :func:`_profile_without_numbers`, and its masters built: the engine, the raw
    folder and the jobs' context."""
    raw = where / "raw"
    counts = {"n_bias": 5, "n_dark": 5, "n_flat": 5, "n_science": 3} if camera == "lfc" else {}
    simulate_night(raw, camera=camera, scale=0.1, seed=3, **counts)
    (where / "nightlog.toml").write_text(_profile_without_numbers(camera), encoding="utf-8")
    engine = create_engine(f"sqlite:///{where / 'catalogue.sqlite'}")
    upgrade(engine)
    settings = load_settings(env={}, cwd=where)
    run_ingest(engine, discover([raw], settings.ingest.patterns),
               IngestContext.from_settings(settings))
    jobs = JobContext.from_settings(settings)
    run_build(engine, jobs)
    return engine, raw, jobs


@pytest.fixture(scope="module", params=["lfc", "aspen"])
def night(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Night]:
    """A night of ``camera`` reduced (masters and science) with no gain and no read
    noise given, in an SQLite archive of its own."""
    camera = request.param
    where = tmp_path_factory.mktemp(camera)
    engine, raw, jobs = masters_of_a_measured_night(where, camera)
    with make_sessionmaker(engine)() as s:
        run_reduce(engine, jobs, science_frames(s))
    yield engine, where, load_truth(raw)
    engine.dispose()
    shutil.rmtree(where, ignore_errors=True)


def _masters(engine: Engine, kind: str) -> list[Master]:
    with make_sessionmaker(engine)() as s:
        return list(s.scalars(select(Master).where(Master.kind == kind)))


def test_the_master_bias_is_as_noisy_as_read_noise_over_root_n(night: Night) -> None:
    engine, _, truth = night
    (bias,) = _masters(engine, "bias")
    nx = truth.summary["image_columns"]
    with fits.open(bias.path) as hdul:
        data = np.asarray(hdul["PRIMARY"].data, dtype=np.float64)[:, :nx]
        sigma = np.asarray(hdul["UNCERT"].data, dtype=np.float64)[:, :nx]
        good = np.asarray(hdul["MASK"].data)[:, :nx] == 0
        n = hdul["PRIMARY"].header["NCOMBINE"]
    # The master less the simulator's bias structure; each row's median taken out (an
    # overscan level per row, and the Aspen's frame offsets, are common to a row).
    residual = data - truth.arrays["bias_adu"][:, :nx]
    residual -= np.median(residual, axis=1, keepdims=True)
    expected = truth.summary["read_noise_adu"] / np.sqrt(n)
    assert np.std(residual[good]) == pytest.approx(expected, rel=0.01)
    # And its uncertainty plane says so.
    assert np.median(sigma[good]) == pytest.approx(expected, rel=0.01)
    # The read noise measured on it, which the reduction used, is the truth's.
    assert bias.stats["read_noise_adu"] == pytest.approx(truth.summary["read_noise_adu"],
                                                         rel=0.01)


def test_the_photon_transfer_gain_is_the_truth(night: Night) -> None:
    engine, _, truth = night
    flats = _masters(engine, "flat")
    assert flats
    for flat in flats:
        assert flat.stats["gain_ptc"] == pytest.approx(truth.summary["gain_e_per_adu"],
                                                       rel=0.01)
    if truth.summary["camera"] == "aspen":
        # Twilight flats whose levels differ by a fifth still give it.
        levels = max((f.stats["gain_ptc_levels"] for f in flats), key=np.ptp)
        assert max(levels) / min(levels) > 1.15


def _sky_z(path: str) -> float:
    """Robust standard deviation of the differences of horizontally adjacent good
    pixels, each divided by its propagated uncertainty (the pixels' errors are
    independent): 1 when the uncertainty plane is honest. Differences cancel the
    sky and its gradient; the median absolute deviation ignores the differences
    across stars."""
    with fits.open(path) as hdul:
        data = np.asarray(hdul["PRIMARY"].data, dtype=np.float64)
        sigma = np.asarray(hdul["UNCERT"].data, dtype=np.float64)
        bits = np.asarray(hdul["MASK"].data)
    good = (bits == 0) & np.isfinite(data) & np.isfinite(sigma)
    pair = good[:, 1:] & good[:, :-1]
    z = ((data[:, 1:] - data[:, :-1]) / np.hypot(sigma[:, 1:], sigma[:, :-1]))[pair]
    return float(_MAD_TO_SIGMA * np.median(np.abs(z - np.median(z))))


def test_the_uncertainty_plane_is_honest_on_the_sky(night: Night) -> None:
    engine, _, _ = night
    with make_sessionmaker(engine)() as s:
        paths = [p.path for p in s.scalars(select(Product))]
    assert paths
    for path in paths:
        assert _sky_z(path) == pytest.approx(1.0, abs=0.01)
