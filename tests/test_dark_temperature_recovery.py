"""Darks across temperature, end to end on simulated Aspen nights whose dark current
doubles every 6.3 K (the simulator's truth): the doubling temperature fitted on the
archive's master darks recovers the truth within its uncertainty and shows in
``calib history``; a science frame at a set temperature no master dark has gets the
dark nearest in temperature scaled to it, the match and the product say so, and the
dark it subtracts departs from the true dark current by less than the noise.
SQLite and PostgreSQL.

The nights: master-dark nights at -20, -15, -10, -5 and 0 °C (biases, darks, flats),
then a science night at -12 °C (biases and flats, no dark) and one at -30 °C.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.nddata import CCDData
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from nightlog.calibration.dark_temperature import DoublingFit, temperature_fits
from nightlog.calibration.match_report import explain_match
from nightlog.catalogue.engine import make_sessionmaker
from nightlog.catalogue.models import Frame, Master, Product, ProductMaster
from nightlog.cli.app import app
from nightlog.coordinator.context import JobContext
from nightlog.coordinator.masters import run_build
from nightlog.coordinator.reduce import run_reduce

A = dt.date(2018, 8, 22)
DARK_TEMPS = (-20.0, -15.0, -10.0, -5.0, 0.0)
SCIENCE_TEMP, COLD_TEMP = -12.0, -30.0
SEED = 11  # one camera: the same detector every night


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nightlog.simulate import simulate_night

    root = tmp_path_factory.mktemp("aspen-temperatures")
    for i, temp in enumerate(DARK_TEMPS):
        simulate_night(root / f"dark{i}", camera="aspen", night=A + dt.timedelta(days=i),
                       scale=0.04, seed=SEED, n_bias=5, n_dark=5, n_flat=5, n_science=0,
                       set_temp=temp)
    simulate_night(root / "science", camera="aspen", night=A + dt.timedelta(days=5),
                   scale=0.04, seed=SEED, n_bias=5, n_dark=0, n_flat=5, n_science=1,
                   set_temp=SCIENCE_TEMP)
    simulate_night(root / "cold", camera="aspen", night=A + dt.timedelta(days=6),
                   scale=0.04, seed=SEED, n_bias=5, n_dark=0, n_flat=5, n_science=1,
                   set_temp=COLD_TEMP)
    return root


def _context(folder: Path, profile_keys: str) -> JobContext:
    from nightlog.settings import load_settings

    folder.mkdir(exist_ok=True)
    (folder / "nightlog.toml").write_text(f"[instruments.aspen]\n{profile_keys}\n")
    return JobContext.from_settings(load_settings(env={}, cwd=folder))


@pytest.fixture
def archive(catalogue_engine: Engine, nights: Path, tmp_path: Path
            ) -> Iterator[tuple[Engine, JobContext, Path]]:
    """The nights ingested and their masters built, in an archive whose Aspen profile
    scales darks by the fitted doubling temperature."""
    from nightlog.coordinator.ingest import IngestContext, discover, run_ingest
    from nightlog.settings import load_settings

    raw = tmp_path / "raw"
    shutil.copytree(nights, raw)
    ctx = _context(tmp_path, 'dark_temperature_scaling = "fitted"')
    settings = load_settings(env={}, cwd=tmp_path)
    summary = run_ingest(catalogue_engine, discover([raw], settings.ingest.patterns),
                         IngestContext.from_settings(settings))
    assert summary.counts.get("quarantined", 0) == 0, summary
    built = run_build(catalogue_engine, ctx)
    assert sum(o.kind == "dark" and o.status == "built" for o in built) == len(DARK_TEMPS)
    yield catalogue_engine, ctx, tmp_path


def _truth(nights: Path, name: str) -> tuple[dict[str, Any], Any]:
    return (json.loads((nights / name / "truth.json").read_text()),
            np.load(nights / name / "truth.npz"))


def _science(engine: Engine, temp: float) -> int:
    with make_sessionmaker(engine)() as s:
        return next(f.id for f in s.scalars(select(Frame).where(Frame.kind == "science"))
                    if f.set_temp is not None and abs(f.set_temp - temp) < 0.5)


def _cli(folder: Path, url: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    monkeypatch.chdir(folder)
    monkeypatch.delenv("NIGHTLOG_CONFIG", raising=False)
    monkeypatch.setenv("NIGHTLOG_DATABASE_URL", url)
    monkeypatch.setenv("COLUMNS", "250")
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_fitted_doubling_temperature_recovers_the_truth_and_is_in_the_history(
        archive: tuple[Engine, JobContext, Path], nights: Path, catalogue_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine, _ctx, folder = archive
    truth, _ = _truth(nights, "dark0")
    true_doubling = truth["dark_doubling_k"]
    with make_sessionmaker(engine)() as s:
        darks = list(s.scalars(select(Master).where(Master.kind == "dark")))
        (fit,) = temperature_fits(darks).values()
    assert isinstance(fit, DoublingFit), fit
    assert sorted(p.set_temp for p in fit.points) == list(DARK_TEMPS)
    assert fit.doubling_err is not None and fit.doubling_err < 0.2 * fit.doubling_k
    # Two sigma: the stated uncertainty is checked against repeated fits in
    # tests/test_dark_temperature.py; one archive is one draw.
    assert abs(fit.doubling_k - true_doubling) <= 2 * fit.doubling_err, fit

    rows = json.loads(_cli(folder, catalogue_url, monkeypatch, "calib", "history",
                           "--type", "dark", "--format", "json"))
    assert sorted(r["set_temp"] for r in rows) == list(DARK_TEMPS)
    for r in rows:
        assert r["doubling_k"] == pytest.approx(fit.doubling_k)
        assert r["doubling_k_err"] == pytest.approx(fit.doubling_err)
        assert r["doubling_n"] == len(DARK_TEMPS)
    table = _cli(folder, catalogue_url, monkeypatch, "calib", "history", "--type", "dark")
    assert f"doubling {fit.doubling_k:.3g} ± {fit.doubling_err:.2g} K, fitted on 5 masters" \
        in " ".join(table.split())
    text = _cli(folder, catalogue_url, monkeypatch, "calib", "history", "--type", "dark",
                "--format", "csv")
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == len(DARK_TEMPS)

    import matplotlib.image

    plot = folder / "darks.png"
    _cli(folder, catalogue_url, monkeypatch, "calib", "history", "--type", "dark",
         "--plot", str(plot))
    metrics = [m for m in ("dark_rate", "dark_current", "hot_pixels")
               if any(r[m] is not None for r in rows)]
    # 1 in for titles, 2.4 in per metric panel and one more for the fit, at 100 dpi.
    assert matplotlib.image.imread(plot).shape[:2] == (100 + 240 * (len(metrics) + 1), 1000)
    assert [float(r["doubling_k"]) for r in parsed] == pytest.approx([fit.doubling_k] * 5)


def test_science_frame_gets_the_nearest_dark_scaled_within_the_noise(
        archive: tuple[Engine, JobContext, Path], nights: Path, catalogue_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    engine, ctx, folder = archive
    frame_id = _science(engine, SCIENCE_TEMP)
    with make_sessionmaker(engine)() as s:
        report = explain_match(s, ctx, str(frame_id))
    dark = next(m for m in report.matches if m["kind"] == "dark")
    scaled = dark["temperature"]
    assert scaled is not None, dark["reason"]
    assert (scaled["from_set_temp"], scaled["to_set_temp"]) == (-10.0, SCIENCE_TEMP)
    doubling = scaled["fit"]["doubling_k"]
    assert scaled["factor"] == pytest.approx(2 ** ((SCIENCE_TEMP + 10.0) / doubling))
    assert (f"dark from master {dark['chosen']} at -10 °C scaled ×{scaled['factor']:.3g}"
            in dark["how"]) and "fitted on 5 masters" in dark["how"]
    # Every candidate failed the set temperature alone: none was within tolerance.
    assert all(not c["usable"] for c in dark["candidates"])
    shown = _cli(folder, catalogue_url, monkeypatch, "match", str(frame_id))
    assert "scaled ×" in shown and "to -12 °C" in shown

    (outcome,) = run_reduce(engine, ctx, [frame_id])
    assert outcome.status == "reduced", outcome
    with make_sessionmaker(engine)() as s:
        product = s.get(Product, outcome.product_id)
        assert product is not None
        links = {pm.role: s.get(Master, pm.master_id) for pm in s.scalars(
            select(ProductMaster).where(ProductMaster.product_id == product.id))}
        params, path = product.parameters, product.path
        dark_path, flat_path = links["dark"].path, links["flat"].path  # type: ignore[union-attr]
        assert links["dark"].id == dark["chosen"]  # type: ignore[union-attr]
    assert params["science"]["dark_temperature"]["factor"] == pytest.approx(scaled["factor"])
    step = next(st for st in params["steps"] if st["name"] == "dark")
    assert step["parameters"]["temperature_factor"] == pytest.approx(scaled["factor"])
    assert "from -10 C to -12 C" in step["summary"]["how"]
    reduced = CCDData.read(path, hdu_uncertainty="UNCERT", hdu_mask="MASK")
    assert reduced.header["DARKTSCL"] == pytest.approx(scaled["factor"], rel=1e-5)
    history = "".join(reduced.header["HISTORY"])  # astropy splits long lines over cards
    assert (f"Dark linear; scaled x{scaled['factor']:.4g} from -10 C to -12 C (master "
            f"{dark['chosen']}, doubling") in history and "fitted on 5 masters" in history

    # The dark subtracted against the truth, in the product's units (flat-fielded ADU).
    truth, arrays = _truth(nights, "science")
    exposure = next(float(f["darktime"]) for f in truth["files"] if f["kind"] == "science")
    true_dark = np.asarray(arrays["dark_current_e"], dtype=np.float64) / truth["gain_e_per_adu"]
    window = (slice(0, true_dark.shape[0]), slice(0, true_dark.shape[1]))
    master_dark = np.asarray(CCDData.read(dark_path, hdu_uncertainty="UNCERT",
                                          hdu_mask="MASK").data, dtype=np.float64)[window]
    flat = np.asarray(CCDData.read(flat_path, hdu_mask="MASK",
                                   hdu_uncertainty="UNCERT").data, dtype=np.float64)[window]
    sigma = np.asarray(reduced.uncertainty.array, dtype=np.float64)[window]
    residual = (scaled["factor"] * master_dark - true_dark) * exposure / flat
    unscaled = (master_dark - true_dark) * exposure / flat
    # Pixels whose 300 s darks at -10 °C stayed below saturation (the hottest did not).
    at_source = true_dark / scaled["factor"]
    fine = np.isfinite(sigma) & (at_source * 300.0 + truth["bias_level_adu"] < 60000.0)
    assert fine.mean() > 0.999
    warm = fine & (true_dark * exposure > 5 * sigma)  # dark current well above the noise
    assert warm.sum() > 50
    assert np.sqrt(np.mean((residual[warm] / sigma[warm]) ** 2)) < 1.0
    assert np.sqrt(np.mean((unscaled[warm] / sigma[warm]) ** 2)) > 1.5  # scaling mattered
    assert np.sqrt(np.mean((residual[fine] / sigma[fine]) ** 2)) < 1.0
    assert abs(np.mean(residual[fine])) < np.median(sigma[fine])


def test_off_refuses_the_profile_figure_scales_and_a_fit_never_extrapolates(
        archive: tuple[Engine, JobContext, Path]) -> None:
    engine, fitted, folder = archive
    off = _context(folder / "off", "")
    given = _context(folder / "given", 'dark_temperature_scaling = "profile"\n'
                     "dark_doubling_temperature = 6.0\ndark_doubling_temperature_err = 0.3")
    science, cold = _science(engine, SCIENCE_TEMP), _science(engine, COLD_TEMP)

    def dark_of(ctx: JobContext, frame_id: int) -> dict[str, Any]:
        with make_sessionmaker(engine)() as s:
            report = explain_match(s, ctx, str(frame_id))
        return next(m for m in report.matches if m["kind"] == "dark")

    refused = dark_of(off, science)
    assert refused["chosen"] is None and refused["temperature"] is None
    assert "group.set_temp (5)" in refused["reason"]

    by_profile = dark_of(given, science)["temperature"]
    assert by_profile["factor"] == pytest.approx(2 ** (-2.0 / 6.0))
    assert by_profile["fit"]["source"] == "profile"
    assert "doubling 6 ± 0.3 K, given by the profile" in dark_of(given, science)["how"]
    # The profile's figure is a law, not a fit over a range: -30 °C from the -20 °C dark.
    cold_given = dark_of(given, cold)["temperature"]
    assert (cold_given["from_set_temp"], cold_given["factor"]) == (
        -20.0, pytest.approx(2 ** (-10.0 / 6.0)))

    beyond = dark_of(fitted, cold)
    assert beyond["chosen"] is None
    assert "outside the -20 to 0 °C" in beyond["reason"] and "extrapolated" in beyond["reason"]
