"""Missing calibrations as a policy, per camera and kind, and loud (docs/profiles.md).

Three simulated Aspen nights of one detector (one ``detector_seed``, a noise seed per
night), each with three flats per filter where the profile asks for five: a master
of one night is impossible. Each policy is run through the command line as an
observer would: ``calib build``, ``reduce``, ``status``, ``frames --problems``,
``match``, ``calib list`` and the night report.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from nightlog.calibration.missing import missing_policy, provisional_minimum
from nightlog.calibration.policy import policy_from_table
from nightlog.catalogue.models import Frame, FrameHold, Master, Product
from nightlog.errors import ConfigurationError, ProfileError
from nightlog.header.profiles.tables import profile_from_table
from nightlog.states import HoldState, MissingPolicy, ProductStatus
from nightlog.store.products import read_product
from tests.factories import archive_cli

A = dt.date(2018, 8, 22)
NIGHTS = tuple(A + dt.timedelta(days=i) for i in range(3))
FILTERS = ("g", "r")
N_SCIENCE = 2  # per night


@pytest.fixture(scope="module")
def three_nights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three nights of one detector: 5 biases, 5 darks per exposure time, 3 flats per
    filter, 2 science frames each."""
    from nightlog.simulate import simulate_night

    root = tmp_path_factory.mktemp("short-flats")
    for i, night in enumerate(NIGHTS):
        simulate_night(root / f"n{i}", camera="aspen", night=night, scale=0.04, seed=10 + i,
                       detector_seed=7, n_bias=5, n_dark=5, n_flat=3, n_science=N_SCIENCE)
    return root


def _archive(where: Path, raw: Path, monkeypatch: pytest.MonkeyPatch, profile: str
             ) -> Callable[..., str]:
    """An archive in ``where`` whose Aspen profile adds ``profile``, the nights
    ingested; returns the command line run there."""
    where.mkdir()
    shutil.copytree(raw, where / "raw")
    (where / "nightlog.toml").write_text(
        f'[archive]\nroot = "{where.as_posix()}"\n[instruments.aspen]\n{profile}')
    run = archive_cli(where, monkeypatch)
    run("ingest", str(where / "raw"))
    return run


def _session(where: Path) -> Session:
    return Session(create_engine(f"sqlite:///{(where / 'nightlog.sqlite').as_posix()}"))


def _robust_std(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def _flatness(path: str) -> float:
    """Sky scatter over the noise floor: the robust standard deviation of the product's
    pixels, a plane fitted to the sky and taken out (the sky's gradient), over the
    median of its uncertainty (the noise floor the reduction propagated). The plane is
    fitted to the sky alone: pixels more than 3 robust σ from it (the stars) are left
    out and the fit repeated, since a least-squares plane through the stars is pulled
    by them and leaves a residual gradient in the sky."""
    ccd = read_product(path).ccd
    data = np.asarray(ccd.data, dtype=np.float64)
    ny, nx = data.shape
    yy, xx = np.mgrid[:ny, :nx]
    finite = np.isfinite(data)
    sky = finite
    for _ in range(5):
        design = np.c_[np.ones(sky.sum()), yy[sky], xx[sky]]
        coef = np.linalg.lstsq(design, data[sky], rcond=None)[0]
        residual = data - (coef[0] + coef[1] * yy + coef[2] * xx)
        sky = finite & (np.abs(residual) < 3.0 * _robust_std(residual[finite]))
    return _robust_std(residual) / float(np.median(ccd.uncertainty.array))


def _science_products(where: Path) -> list[tuple[Frame, Product]]:
    with _session(where) as s:
        rows = s.execute(select(Frame, Product).join(Product, Product.frame_id == Frame.id)
                         .where(Frame.kind == "science",
                                Product.status == ProductStatus.CURRENT)).all()
        s.expunge_all()
        return [(f, p) for f, p in rows]


def _flat_masters(where: Path) -> list[Master]:
    with _session(where) as s:
        found = list(s.scalars(select(Master).where(Master.kind == "flat")
                               .order_by(Master.night, Master.filter)))
        s.expunge_all()
        return found


def test_fallback_nights_gives_multi_night_masters_that_reduce_flat_to_the_noise_floor(
        three_nights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _archive(tmp_path / "fb", three_nights, monkeypatch,
                   "fallback_nights = { flat = 1 }\n")
    built = run("calib", "build")
    assert "too-few" not in built
    assert built.count("multi-night") == len(NIGHTS) * len(FILTERS)
    masters = _flat_masters(tmp_path / "fb")
    assert len(masters) == len(NIGHTS) * len(FILTERS)
    # The first and last nights take their one neighbour, the middle night both.
    assert sorted({m.n_frames for m in masters}) == [6, 9]
    for m in masters:
        assert m.multi_night and not m.provisional
        header = fits.getheader(m.path)
        assert header["NLMULTI"] is True and header["NLPROV"] is False
        scatter = m.parameters["night_scatter"]
        assert len(scatter) >= 2 and all(v <= 1.5 for v in scatter.values()), scatter

    reduced = run("reduce", "--since", A.isoformat(), "--workers", "1")
    assert "reduction problem" not in reduced
    products = _science_products(tmp_path / "fb")
    assert len(products) == len(NIGHTS) * N_SCIENCE
    for frame, product in products:
        assert product.missing_steps == []
        flatness = _flatness(product.path)
        assert flatness <= 1.1, (frame.path, flatness)

    listed = run("calib", "list", "--kind", "flat")
    assert listed.count("multi-night") == len(masters)
    frame = products[0][0]
    assert re.search(r"flat: master \d+ \(multi-night\)", run("match", str(frame.id)))
    status = run("status", "--night", frame.night.isoformat())
    assert "reduction problems: none" in status


def test_without_a_policy_the_short_groups_and_the_frames_reduced_without_flat_are_problems(
        three_nights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    where = tmp_path / "none"
    run = _archive(where, three_nights, monkeypatch, "")
    built = json.loads(run("calib", "build", "--format", "json"))
    short = {(o["night"], o["group_key"].split("filter=")[1]): o for o in built["outcomes"]
             if o["status"] == "too-few"}
    assert set(short) == {(n.isoformat(), f) for n in NIGHTS for f in FILTERS}
    assert all(o["n_used"] == 3 and "3 of 5" in o["reason"] for o in short.values())
    table = run("calib", "build")  # nothing built: the same groups, said again
    assert table.count("too-few") == len(NIGHTS) * len(FILTERS)
    for filt in FILTERS:
        assert table.count(f"filter {filt}: 2 more flat frame(s): 3 of 5") == len(NIGHTS)
    assert "6 group(s) with too few frames" in table

    reduced = run("reduce", "--since", A.isoformat(), "--workers", "1")
    n = len(NIGHTS) * N_SCIENCE
    assert f"{n} frame(s) with a reduction problem: reduced-without {n}" in reduced
    assert reduced.count("reduced without flat: no flat master") == n
    for _frame, product in _science_products(where):
        assert product.missing_steps == ["flat"]
        assert "no flat master" in product.parameters["missing_reasons"]["flat"]

    night = NIGHTS[1].isoformat()
    assert f"reduction problems: reduced-without {N_SCIENCE}" in run("status", "--night", night)
    problems = run("frames", "--problems", "--night", night, "--format", "csv")
    lines = problems.strip().splitlines()
    assert lines[0] == "id,night,ut,filter,state,steps,reason"
    assert len(lines) == 1 + N_SCIENCE
    assert all(",reduced-without,flat," in line for line in lines[1:])
    page = Path(run("report", "--night", night).strip().splitlines()[-1]).read_text()
    assert f"<b>{N_SCIENCE}</b>reduction problems" in page
    for frame, _product in _science_products(where):
        if frame.night == NIGHTS[1]:
            assert f"science frame {frame.id}: reduced without flat" in page


def test_hold_keeps_the_frames_waiting_until_a_master_arrives(
        three_nights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    where = tmp_path / "hold"
    run = _archive(where, three_nights, monkeypatch, 'missing = { flat = "hold" }\n')
    n = len(NIGHTS) * N_SCIENCE
    reduced = run("reduce", "--since", A.isoformat(), "--workers", "1")
    assert f"{n} frame(s) with a reduction problem: held {n}" in reduced
    assert not _science_products(where)
    night = NIGHTS[0].isoformat()
    assert f"reduction problems: held {N_SCIENCE}" in run("status", "--night", night)
    problems = run("frames", "--problems", "--night", night, "--format", "json")
    assert problems.count('"state": "held"') == N_SCIENCE
    with _session(where) as s:
        assert {h.state for h in s.scalars(select(FrameHold))} == {HoldState.HELD}

    # The flats that were missing arrive: here, the profile lets the neighbouring
    # nights complete them. A plain reduce (the latest night) picks up the frames held
    # on the other nights too, builds their nights' masters and reduces them.
    config = where / "nightlog.toml"
    config.write_text(config.read_text() + "fallback_nights = { flat = 1 }\n")
    again = run("reduce", "--workers", "1")
    assert f"{n - N_SCIENCE} frame(s) of other nights held for a master were tried again" \
        in again
    assert "reduction problem" not in again
    assert len(_science_products(where)) == n
    with _session(where) as s:
        assert all(h.resolved_at is not None for h in s.scalars(select(FrameHold)))
    assert "reduction problems: none" in run("status", "--night", night)


def test_fail_stops_the_frames_and_says_why(
        three_nights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    where = tmp_path / "fail"
    run = _archive(where, three_nights, monkeypatch, 'missing = { flat = "fail" }\n')
    n = len(NIGHTS) * N_SCIENCE
    reduced = run("reduce", "--since", A.isoformat(), "--workers", "1")
    assert f"{n} frame(s) with a reduction problem: stopped {n}" in reduced
    assert reduced.count("stopped: flat: no flat master") == n
    assert not _science_products(where)
    night = NIGHTS[2].isoformat()
    assert f"reduction problems: stopped {N_SCIENCE}" in run("status", "--night", night)
    # A stopped frame waits for a decision, not for a master: never tried again alone.
    assert "tried again" not in run("reduce", "--workers", "1")


def test_provisional_masters_carry_their_larger_uncertainty_into_the_products(
        three_nights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The same nights with 9-frame masters (fallback_nights), for comparison; then the
    # archive of provisional masters (the command line runs in the last one made).
    full = _archive(tmp_path / "full", three_nights, monkeypatch,
                    "fallback_nights = { flat = 1 }\n")
    full("reduce", "--since", A.isoformat(), "--workers", "1")
    run = _archive(tmp_path / "prov", three_nights, monkeypatch,
                   "provisional_min_frames = { flat = 3 }\n")
    built = run("calib", "build")
    assert built.count("provisional") == len(NIGHTS) * len(FILTERS)
    run("reduce", "--since", A.isoformat(), "--workers", "1")

    provisional = {(m.night, m.filter): m for m in _flat_masters(tmp_path / "prov")}
    combined = {(m.night, m.filter): m for m in _flat_masters(tmp_path / "full")}
    middle = (NIGHTS[1], "r")  # the middle night's multi-night master: 9 frames
    p, c = provisional[middle], combined[middle]
    assert p.provisional and not p.multi_night and p.n_frames == 3 and c.n_frames == 9
    assert fits.getheader(p.path)["NLPROV"] is True
    # A master of 3 frames is up to sqrt(9 / 3) times as uncertain as one of 9; less
    # in its recorded uncertainty, a per-pixel scatter of the stack, which 3 values
    # (one of them often clipped) underestimate more than 9 do.
    ratio = (np.median(read_product(p.path).ccd.uncertainty.array)
             / np.median(read_product(c.path).ccd.uncertainty.array))
    assert 1.2 < ratio < 1.1 * np.sqrt(3), ratio
    assert "provisional" in run("calib", "list")
    assert "reduction problem" not in run("reduce", "--workers", "1")

    # The products reduced with it carry the flat's uncertainty. A flat-fielded pixel
    # out = D / F has the variance var(D) / F**2 + out**2 * var(F) / F**2 (F the flat
    # normalised to its mean): var(D), the same raw frame's before the flat, is got
    # from the product of the 9-frame master; the product of the provisional one must
    # then be what that propagation of the provisional master's uncertainty gives.
    def normalised(ccd: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        values = np.asarray(ccd.data, dtype=np.float64)
        good = np.isfinite(values) & ~np.asarray(ccd.mask, dtype=bool)
        mean = values[good].mean()
        return values / mean, np.asarray(ccd.uncertainty.array, np.float64) / mean, good

    f_p, s_p, good_p = normalised(read_product(p.path).ccd)
    f_c, s_c, good_c = normalised(read_product(c.path).ccd)
    with_full = {f.path.split("/raw/")[1]: prod for f, prod in _science_products(tmp_path / "full")}
    checked = 0
    for frame, product in _science_products(tmp_path / "prov"):
        if frame.night != NIGHTS[1] or frame.filter != "r":
            continue
        mine = read_product(product.path).ccd
        other = read_product(with_full[frame.path.split("/raw/")[1]].path).ccd
        out_p, out_c = (np.asarray(x.data, np.float64) for x in (mine, other))
        var_p, var_c = (np.asarray(x.uncertainty.array, np.float64) ** 2 for x in (mine, other))
        before_flat = (var_c - out_c ** 2 * s_c ** 2 / f_c ** 2) * f_c ** 2
        flat_term = out_p ** 2 * s_p ** 2 / f_p ** 2
        clean = good_p & good_c & (mine.flags == 0) & (other.flags == 0)
        assert clean.mean() > 0.9
        predicted = before_flat / f_p ** 2 + flat_term
        assert np.allclose(var_p[clean], predicted[clean], rtol=1e-3)
        # ... and its flat's part is the larger for the fewer frames.
        ratio_terms = np.median(flat_term[clean] / (out_c ** 2 * s_c ** 2 / f_c ** 2)[clean])
        assert ratio_terms > 1.2 ** 2, ratio_terms
        checked += 1
    assert checked == N_SCIENCE


def test_nights_of_an_unsteady_detector_are_not_combined(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two nights whose flat fields differ (another detector_seed: the pattern of the
    pixels' response changed) give no multi-night master, and say why."""
    from nightlog.simulate import simulate_night

    raw = tmp_path / "nights"
    for i, night in enumerate(NIGHTS[:2]):
        simulate_night(raw / f"n{i}", camera="aspen", night=night, scale=0.04, seed=20 + i,
                       detector_seed=30 + i, n_bias=5, n_dark=5, n_flat=3, n_science=1)
    run = _archive(tmp_path / "unsteady", raw, monkeypatch, "fallback_nights = { flat = 1 }\n")
    built = json.loads(run("calib", "build", "--format", "json"))["outcomes"]
    flats = [o for o in built if o["kind"] == "flat"]
    assert {o["status"] for o in built if o["kind"] != "flat"} == {"built"}
    assert len(flats) == 2 * len(FILTERS)
    assert all(o["status"] == "skipped" and "not stable across nights" in o["reason"]
               for o in flats), flats
    assert not _flat_masters(tmp_path / "unsteady")


def _profile(**extra: Any) -> Any:
    return profile_from_table("cam", {"match": {"INSTRUME": "Cam"}, **extra})


def test_the_profile_decides_per_kind_and_the_site_is_the_default() -> None:
    site = policy_from_table({"on_missing": {"bias": "stop", "dark": "hold"}})
    plain = _profile()
    assert missing_policy(plain, site, "bias") is MissingPolicy.FAIL  # the old word
    assert missing_policy(plain, site, "dark") is MissingPolicy.HOLD
    assert missing_policy(plain, site, "flat") is MissingPolicy.REDUCE_WITHOUT  # 'skip'
    own = _profile(missing={"bias": "reduce-without", "flat": "fail"},
                   min_frames={"flat": 5}, provisional_min_frames={"flat": 3, "bias": 7})
    assert missing_policy(own, site, "bias") is MissingPolicy.REDUCE_WITHOUT
    assert missing_policy(own, site, "flat") is MissingPolicy.FAIL
    assert missing_policy(own, site, "dark") is MissingPolicy.HOLD
    assert provisional_minimum(own, "flat") == 3
    assert provisional_minimum(own, "bias") is None  # not below min_frames: no flag
    assert provisional_minimum(own, "dark") is None


@pytest.mark.parametrize(("key", "value", "words"), [
    ("missing", {"flat": "skip"}, "'skip'; known: reduce-without, hold, fail"),
    ("missing", {"science": "hold"}, "unknown frame kind 'science'"),
    ("fallback_nights", {"flat": -1}, "fallback_nights.flat"),
    ("provisional_min_frames", {"flat": 0}, "provisional_min_frames.flat"),
])
def test_a_bad_policy_in_a_profile_is_refused_with_its_key(key: str, value: Any,
                                                           words: str) -> None:
    with pytest.raises(ProfileError, match=re.escape(words)):
        _profile(**{key: value})


def test_a_bad_site_on_missing_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="reduce-without"):
        policy_from_table({"on_missing": {"flat": "later"}})
