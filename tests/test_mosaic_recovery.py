"""The simulated mosaic night (two CCDs of two amplifiers each, one MEF file per
exposure) through the public flow (ingest, master builds, reduction) under the
built-in ``mosaic_2x2`` profile, compared with the simulator's truth: one frame and
one product per CCD, masters per CCD and only ever matched to frames of their CCD,
no amplifier boundary step in either CCD's reduced sky, each amplifier's gain and
read noise recovered, the reduced sky at its noise floor; and a mosaic file
quarantined whole, recognised as a duplicate or moved as one file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

from nightlog.archive import Archive
from nightlog.catalogue.engine import create_engine, make_sessionmaker
from nightlog.catalogue.models import Frame
from nightlog.catalogue.quarantine import list_quarantined
from nightlog.catalogue.schema import upgrade
from nightlog.coordinator.ingest import IngestContext, run_ingest
from nightlog.settings import Settings, load_settings
from nightlog.simulate import simulate_night
from nightlog.states import IngestOutcome
from nightlog.store.products import read_product
from tests.amplifier_sky import (
    amplifier_stats,
    fixed_sources,
    noise_floor,
    products,
    robust_std,
    science,
    sky,
    without_plane,
)
from tests.factories import reduced_night

SCALE = 0.1


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("mosaic") / "sim"
    simulate_night(where, camera="mosaic", scale=SCALE, seed=5)
    return where


@pytest.fixture(scope="module")
def truth(raw: Path) -> dict[str, Any]:
    return json.loads((raw / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def night(raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # No configuration: the built-in profile alone reads the camera.
    return reduced_night(tmp_path_factory.mktemp("mosaic-night"), raw)


@pytest.fixture(scope="module")
def flat_response(raw: Path) -> np.ndarray:
    """The truth's pixel response (mean 1) on the detector plane of both CCDs."""
    with np.load(raw / "truth.npz") as arrays:
        return np.asarray(arrays["flat"], dtype=np.float64)


def _ccds(truth: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in truth["ccds"]}


def _amp(truth: dict[str, Any], name: str) -> int:
    """Index in the truth's amplifiers of the amplifier named ``'SCI,<extver>'``."""
    extver = int(name.split(",")[1])
    (index,) = [k for k, a in enumerate(truth["amplifiers"]) if a["extver"] == extver]
    return index


def _frames(night: Settings) -> list[Frame]:
    engine = create_engine(night.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            rows = list(session.query(Frame).order_by(Frame.id))
            session.expunge_all()
            return rows
    finally:
        engine.dispose()


def test_every_file_is_one_frame_per_ccd_and_none_quarantined(
        night: Settings, truth: dict[str, Any]) -> None:
    ccds = _ccds(truth)
    frames = _frames(night)
    assert len(frames) == len(ccds) * len(truth["files"])
    by_file: dict[str, list[Frame]] = {}
    for f in frames:
        by_file.setdefault(Path(f.path).name, []).append(f)
    assert set(by_file) == {e["name"] for e in truth["files"]}
    for name, rows in by_file.items():
        assert [f.ccd for f in rows] == list(ccds), name
        assert len({f.sha256 for f in rows}) == 1 and all(f.is_latest for f in rows)
        for f in rows:
            assert f.profile == "mosaic_2x2"
            assert (f.naxis2, f.naxis1) == tuple(ccds[f.ccd]["shape"])
            assert f.setup_key.endswith(f"|{f.ccd}")
            # Each frame assembles its own CCD's amplifiers alone.
            extvers = [int(a["name"].split(",")[1]) for a in f.amplifiers["amplifiers"]]
            assert extvers == ccds[f.ccd]["amplifiers"]
    engine = create_engine(night.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            assert list_quarantined(session) == []
    finally:
        engine.dispose()


def test_one_product_per_ccd_named_and_headed_by_its_ccd(
        night: Settings, truth: dict[str, Any]) -> None:
    with Archive(night) as archive:
        made = products(archive)
    want = {(e["name"], c) for e in science(truth) for c in _ccds(truth)}
    assert set(made) == want
    for (name, ccd), product in made.items():
        assert product.record["ccd"] == ccd
        assert f"_{ccd}_" in Path(product.path).name, product.path
        assert Path(product.path).name.startswith(Path(name).stem)
        header = read_product(product.path).ccd.header
        assert header["CCDNAME"] == ccd and header["NAMPS"] == 2


def test_masters_are_per_ccd_and_a_ccd_only_ever_matches_its_own(
        night: Settings, truth: dict[str, Any]) -> None:
    """Every master holds frames of one CCD; every product's masters (its provenance)
    and every master's inputs are of the product's CCD; ``match`` of a CCD2 frame
    chooses CCD2 masters and refuses CCD1's on the ``ccd`` rule."""
    frames = {f.id: f for f in _frames(night)}
    with Archive(night) as archive:
        masters = {int(m["id"]): m for m in archive.masters()}
        kinds = [str(m["kind"]) for m in masters.values()]
        assert kinds.count("bias") == 2 and kinds.count("flat") == 4
        ccd_of_master: dict[int, str] = {}
        for mid in masters:
            ccd_of_master[mid] = archive.master(mid).record["ccd"]
        made = products(archive)
        for (_name, ccd), product in made.items():
            tree = archive.provenance(product.id)
            assert tree.raw.ccd == ccd and frames[tree.raw.frame_id].ccd == ccd
            assert {m.role for m in tree.masters} == {"bias", "dark", "flat"}
            for m in tree.masters:
                assert ccd_of_master[m.id] == ccd
                assert {frames[i.frame_id].ccd for i in m.inputs} == {ccd}
        ccd2 = next(f for f in frames.values() if f.kind == "science" and f.ccd == "CCD2")
        report = archive.match(ccd2.id)
    for match in report.matches:
        assert ccd_of_master[int(match["chosen"])] == "CCD2"
        others = [c for c in match["candidates"] if ccd_of_master[int(c["master"])] == "CCD1"]
        assert others, match["kind"]
        for c in others:
            assert not c["usable"]
            assert any(r["rule"] == "group.ccd" and not r["passed"] for r in c["rules"])


@pytest.mark.parametrize("amp", [0, 1, 2, 3])
def test_each_amplifiers_gain_is_measured_on_its_ccds_flats_within_5_percent(
        night: Settings, truth: dict[str, Any], amp: int) -> None:
    """The photon-transfer gain the master flats of the amplifier's CCD (one per
    filter) record, against the simulator's e-/ADU."""
    want = truth["amplifiers"][amp]
    with Archive(night) as archive:
        flats = amplifier_stats(archive, "flat")
    seen = [a for stats in flats for a in stats if _amp(truth, a["name"]) == amp]
    assert len(seen) == 2  # one master flat per filter of this amplifier's CCD
    assert all(len(stats) == 2 for stats in flats)  # a CCD's two amplifiers
    for stats in seen:
        assert stats["source"].startswith("measured on two flats")
        assert stats["gain"] == pytest.approx(want["gain_e_per_adu"], rel=0.05)


@pytest.mark.parametrize("amp", [0, 1, 2, 3])
def test_each_amplifiers_read_noise_is_measured_on_its_ccds_biases_within_5_percent(
        night: Settings, truth: dict[str, Any], amp: int) -> None:
    want = truth["amplifiers"][amp]
    with Archive(night) as archive:
        biases = amplifier_stats(archive, "bias")
    (stats,) = [a for s in biases for a in s if _amp(truth, a["name"]) == amp]
    assert stats["source"] == "measured on two biases"
    assert stats["read_noise_adu"] == pytest.approx(want["read_noise_adu"], rel=0.05)
    assert stats["read_noise_e"] == pytest.approx(want["read_noise_e"], rel=0.05)


def test_no_amplifier_boundary_step_in_either_ccds_reduced_sky(
        night: Settings, truth: dict[str, Any]) -> None:
    """The boundary between each CCD's two amplifiers (the middle column), over all
    the night's reduced frames of that CCD: the mean step (each frame's the median
    of the per-pixel differences of the two columns either side) at most 2
    standard errors (1.2533 sigma / sqrt(n) per frame, combined by inverse variance)."""
    with Archive(night) as archive:
        made = products(archive)
    for ccd, where in _ccds(truth).items():
        steps = []
        for entry in science(truth):
            data = sky(made[(entry["name"], ccd)])
            mx = data.shape[1] // 2
            diff = data[:, mx] - data[:, mx - 1]
            diff = diff[np.isfinite(diff)]
            assert diff.size > 0.8 * where["shape"][0], ccd
            steps.append((float(np.median(diff)),
                          1.2533 * robust_std(diff) / np.sqrt(diff.size)))
        weights = np.array([1.0 / e**2 for _m, e in steps])
        mean = float(np.sum(weights * np.array([m for m, _e in steps])) / weights.sum())
        error = float(1.0 / np.sqrt(weights.sum()))
        assert abs(mean) <= 2.0 * error, (ccd, mean, error, steps)


def test_each_ccds_reduced_sky_is_within_5_percent_of_its_noise_floor(
        night: Settings, truth: dict[str, Any], flat_response: np.ndarray) -> None:
    """Per amplifier's half of each CCD's reduced frame: the robust standard
    deviation of the sky pixels, the gradient taken out, in units of the noise
    floor from the truth (the CCD's flat normalised over the CCD's own central
    box): at most 1.05, and not below 0.95. The pixels of the pointing's stars
    (above the floor in the median of the night's frames) are not sky: the wings
    of a bright one alone would take a block of this small frame to twice its floor."""
    with Archive(night) as archive:
        made = products(archive)
    ratios = []
    for ccd, where in _ccds(truth).items():
        response = flat_response[slice(*where["rows"]), slice(*where["cols"])]
        ny, nx = response.shape
        halves = (np.s_[:, : nx // 2], np.s_[:, nx // 2:])
        amps = [next(k for k, a in enumerate(truth["amplifiers"])
                     if a["ccd"] == ccd and _detector_cols(a["detsec"])[0] == start)
                for start in (0, nx // 2)]
        residuals = []
        for entry in science(truth):
            data = sky(made[(entry["name"], ccd)])
            assert data.shape == (ny, nx)
            res = np.empty_like(data)
            for amp, box in zip(amps, halves, strict=True):
                res[box] = (without_plane(data[box])
                            / noise_floor(truth, entry, amp, response)[box])
            residuals.append((entry["name"], res))
        stars = fixed_sources([r for _n, r in residuals])
        assert stars.mean() < 0.1, stars.mean()  # most of the frame is sky
        for name, res in residuals:
            for amp, box in zip(amps, halves, strict=True):
                pixels = res[box][~stars[box]]
                ratios.append((name, ccd, truth["amplifiers"][amp]["extver"],
                               round(robust_std(pixels), 4)))
    assert len(ratios) == 2 * 2 * len(science(truth))
    assert all(0.95 <= r <= 1.05 for *_w, r in ratios), [r for r in ratios
                                                         if not 0.95 <= r[-1] <= 1.05]


def _detector_cols(detsec: str) -> tuple[int, int]:
    """0-based start and stop of a DETSEC's columns."""
    x1, x2 = (int(v) for v in detsec.strip("[]").split(",")[0].split(":"))
    return min(x1, x2) - 1, max(x1, x2)


def _archive(folder: Path) -> Settings:
    settings = load_settings(env={}, cwd=folder)
    engine = create_engine(settings.database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return settings


def _ingest(settings: Settings, *paths: Path) -> list[Any]:
    engine = create_engine(settings.database_url)
    results: list[Any] = []
    try:
        run_ingest(engine, list(paths), IngestContext.from_settings(settings),
                   progress=results.append)
    finally:
        engine.dispose()
    return results


def test_a_mosaic_file_is_a_duplicate_moved_and_quarantined_as_one_file(
        raw: Path, truth: dict[str, Any], tmp_path: Path) -> None:
    settings = _archive(tmp_path)
    name = science(truth)[0]["name"]
    first = tmp_path / "a" / name
    first.parent.mkdir()
    shutil.copy(raw / name, first)
    (added,) = _ingest(settings, first)
    assert added.outcome == IngestOutcome.ADDED
    assert [f.ccd for f in added.frames] == list(_ccds(truth))

    copy = tmp_path / "b" / name
    copy.parent.mkdir()
    shutil.copy(first, copy)
    (dup,) = _ingest(settings, copy)
    assert dup.outcome == IngestOutcome.DUPLICATE and len(dup.frames) == 2

    copy.unlink()
    moved_to = tmp_path / "c" / name
    moved_to.parent.mkdir()
    first.rename(moved_to)
    (moved,) = _ingest(settings, moved_to)
    assert moved.outcome == IngestOutcome.MOVED
    rows = [f for f in _frames(settings) if f.is_latest]
    assert [(f.path, f.ccd) for f in rows] == [(str(moved_to), c) for c in _ccds(truth)]

    # CCD2's second amplifier claims CCD1's detector pixels: neither CCD is taken.
    bad = tmp_path / "d" / "bad.fits"
    bad.parent.mkdir()
    with fits.open(moved_to) as hdus:
        hdus[4].header["DETSEC"] = hdus[1].header["DETSEC"]
        hdus.writeto(bad)
    (refused,) = _ingest(settings, bad)
    assert refused.outcome == IngestOutcome.QUARANTINED and not refused.frames
    assert "CCD CCD2" in refused.reason or "CCD2" in refused.reason, refused.reason
    assert not [f for f in _frames(settings) if f.path == str(bad)]
